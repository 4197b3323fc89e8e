package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"earl/shards/audio"
)

// tools mel on the real MMAU clip (32 kHz PCM16): numpy loads the file with
// the padded shape, and the values are earl's library pipeline's, bit for
// bit, so the .npy is a faithful window for parity checks.
func TestMelWritesNumpyLoadableFeatures(t *testing.T) {
	wav := "../../shared/testdata/mmau/mmau_sample.wav"
	if _, err := os.Stat(wav); err != nil {
		t.Fatalf("real MMAU clip missing (%v): ../shared/testdata must sit beside the repository", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tools")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	clip, err := audio.Decode(wav)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		family audio.Family
		valid  bool
	}{{audio.Qwen2Audio, false}, {audio.Qwen25Omni, true}} {
		npyPath := filepath.Join(dir, "out.npy")
		args := []string{"mel", wav, "--family", string(c.family), "--npy", npyPath}
		if c.valid {
			args = append(args, "--valid")
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("tools %v: %v\n%s", args, err, out)
		}
		cfg, _ := audio.ConfigFor(c.family)
		e, _ := audio.NewExtractor(cfg)
		m := e.Compute(audio.Resample(clip.Samples, clip.SampleRate, 16000))
		want, frames := m.Padded(), m.TotalFrames
		if c.valid {
			want, frames = m.Valid(), m.ValidFrames
		}
		out, err := exec.Command("/usr/bin/python3", "-c", `
import sys, numpy as np
a = np.load(sys.argv[1])
print(a.dtype, a.shape[0], a.shape[1])
for i in (0, 1, 777, a.size // 2, a.size - 1): print(repr(float(a.ravel()[i])))
`, npyPath).CombinedOutput()
		if err != nil {
			t.Fatalf("numpy: %v\n%s(run `make deps`)", err, out)
		}
		lines := strings.Fields(string(out))
		if got := strings.Join(lines[:3], " "); got != fmt.Sprintf("float32 128 %d", frames) {
			t.Fatalf("%s: numpy sees %s, want float32 128 %d", c.family, got, frames)
		}
		for k, i := range []int{0, 1, 777, len(want) / 2, len(want) - 1} {
			v, _ := strconv.ParseFloat(lines[3+k], 64)
			if float32(v) != want[i] || math.IsNaN(v) {
				t.Errorf("%s: value %d = %v, earl %v", c.family, i, v, want[i])
			}
		}
	}
}
