//go:build !purego

package audio

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly kernel: it needs both AVX2 (8-lane vectors)
// and FMA, which every x86-64 CPU since Haswell / Zen 1 has.
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// dotAccel is the assembly kernel dot uses on this CPU, or nil when it falls
// back to dotGeneric; tests compare the two.
var dotAccel = func() func(x, h []float32) float32 {
	if useAVX2 {
		return dotAVX2
	}
	return nil
}()

// dotAVX2 is the AVX2+FMA float32 dot product of x and h[:len(x)] in
// dot_amd64.s; len(h) must be at least len(x).
//
//go:noescape
func dotAVX2(x, h []float32) float32

// dot returns Σ x[i]·h[i] over len(x), which must not exceed len(h). On
// amd64 with AVX2+FMA it runs the assembly kernel: on 192 taps (Zen 4) it
// takes 8 ns against 15 ns for gonum's SSE Sdot and 51 ns for the Go loop,
// which is what brings a 10-s 44.1 kHz clip to 16 kHz under 3 ms.
func dot(x, h []float32) float32 {
	if useAVX2 {
		return dotAVX2(x, h[:len(x)]) // the slice expression checks the length the kernel relies on
	}
	return dotGeneric(x, h)
}
