package ckpt

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The reference zstd tool reads a checkpoint file as a zstd stream: it
// checks every frame (`zstd -t`) and decompresses to the raw blocks —
// the byte planes of each block, back to back — which unshuffle to the
// saved values. This checks the literal-only frames against an encoder-
// independent decoder (Debian's zstd, which make deps installs).
func TestZstdToolReadsContainer(t *testing.T) {
	bin, err := exec.LookPath("zstd")
	if err != nil {
		t.Fatalf("the zstd command is missing: run `make deps` (Debian package zstd)")
	}
	// Weight-like values, constant runs (RLE), zeros and a short last
	// block, at a level with and one without the LZ encoder, shuffled and not.
	vals := ckValues(300_001, 4, 0.02)
	for i := 1000; i < 200_000; i++ {
		vals[i] = 1
	}
	for _, opt := range []SaveOptions{{BlockBytes: 1 << 20}, {Level: 7, BlockBytes: 1 << 20}, {NoShuffle: true, BlockBytes: 1 << 19}} {
		dir := t.TempDir()
		if err := SaveWeights(dir, []Buffer{{Name: "w", Values: vals}}, opt); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, WeightsFileName)
		if out, err := exec.Command(bin, "-q", "-t", p).CombinedOutput(); err != nil {
			t.Fatalf("%+v: zstd -t: %v\n%s", opt, err, out)
		}
		raw, err := exec.Command(bin, "-q", "-d", "-c", p).Output()
		if err != nil {
			t.Fatalf("%+v: zstd -d: %v", opt, err)
		}
		want := make([]byte, 0, 4*len(vals))
		elems := opt.BlockBytes / 4
		for off := 0; off < len(vals); off += elems {
			b := vals[off:min(off+elems, len(vals))]
			buf := make([]byte, 4*len(b))
			if opt.NoShuffle {
				putLE(buf, b)
			} else {
				shuffle4(buf, b)
			}
			want = append(want, buf...)
		}
		if !bytes.Equal(raw, want) {
			t.Fatalf("%+v: zstd -d gives %d bytes, not the %d raw block bytes", opt, len(raw), len(want))
		}
		st, _ := os.Stat(p)
		t.Logf("%+v: %d bytes for %d values (ratio %.3f); zstd -t and -d agree", opt, st.Size(), len(vals), float64(4*len(vals))/float64(st.Size()))
	}
}
