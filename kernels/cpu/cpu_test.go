package cpu_test

import (
	"testing"

	"earl/kernels/cpu"
	"earl/kernels/kerneltest"
)

func TestConformance(t *testing.T) {
	kerneltest.Run(t, cpu.New())
}
