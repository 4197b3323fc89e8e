package ckpt

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// testdata/read_earl.py, written from docs/checkpoints.md with numpy and
// the zstd command, reads our files bit for bit: the documented format is
// the one written. Skipped without the zstd command.
func TestPythonReadsContainer(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("%s missing: run `make deps`", py)
	}
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Fatalf("the zstd command is missing: run `make deps` (Debian package zstd)")
	}
	dir := t.TempDir()
	w, lora := ckValues(100_003, 4, 0.02), ckValues(1001, 5, 0.001)
	if err := SaveWeights(dir, []Buffer{{Name: "weights", Values: w}, {Name: "empty", Values: []float32{}}}, SaveOptions{BlockBytes: 40000}); err != nil {
		t.Fatal(err)
	}
	if err := SaveShards(dir, 0, []Shard{{Buffer: "lora", Len: 1001, Master: lora, M: w[:1001], V: w[5000:6001]}}, SaveOptions{BlockBytes: 400, NoShuffle: true, Level: 3}); err != nil {
		t.Fatal(err)
	}
	hash := func(v []float32) string {
		b := make([]byte, 4*len(v))
		putLE(b, v)
		return fmt.Sprintf("%x", sha256.Sum256(b))
	}
	for file, want := range map[string]string{
		WeightsFileName:  fmt.Sprintf("weights values 100003 %s\nempty values 0 %s\n", hash(w), hash(nil)),
		OptimFileName(0): fmt.Sprintf("lora master 1001 %s\nlora m 1001 %s\nlora v 1001 %s\n", hash(lora), hash(w[:1001]), hash(w[5000:6001])),
	} {
		out, err := exec.Command(py, "testdata/read_earl.py", filepath.Join(dir, file)).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s(run `make deps` for python3-numpy)", file, err, out)
		}
		if string(out) != want {
			t.Errorf("%s: python read\n%s\nwant\n%s", file, out, want)
		}
	}
}
