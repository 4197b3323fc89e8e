package ckpt

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Benchmarks behind the codec's design (planecodec.go); tools bench ckpt
// measures the whole save and load.

// benchPlanes is an 8 MiB block of N(0, 0.02) weights or |N(0, 1e-8)|
// second moments, shuffled.
func benchPlanes(second bool) ([]byte, int) {
	n := 2 << 20
	v := ckValues(n, 1, 0.02)
	if second {
		r := rand.New(rand.NewPCG(1, 2))
		for i := range v {
			v[i] = float32(math.Abs(1e-8 * r.NormFloat64()))
		}
	}
	raw := make([]byte, 4*n)
	shuffle4(raw, v)
	return raw, n
}

// BenchmarkPlanes compresses each byte plane of a block with klauspost's
// zstd encoder (fastest and default levels) and with the literal-only
// frames of levels 1-2, reporting speed and the compressed fraction.
func BenchmarkPlanes(b *testing.B) {
	for _, second := range []bool{false, true} {
		raw, n := benchPlanes(second)
		data := map[bool]string{false: "weights", true: "adam-v"}[second]
		coders := []struct {
			name string
			enc  func(dst, p []byte) []byte
		}{
			{"literal", func(dst, p []byte) []byte { return newBlockEncoder(nil).encode(dst, p, 1) }},
		}
		for _, lvl := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault} {
			z, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1))
			coders = append(coders, struct {
				name string
				enc  func(dst, p []byte) []byte
			}{"zstd-" + lvl.String(), func(dst, p []byte) []byte { return z.EncodeAll(p, dst) }})
		}
		for _, c := range coders {
			for k := range 4 {
				p := raw[k*n : (k+1)*n]
				b.Run(data+"/"+c.name+"/plane"+string(rune('0'+k)), func(b *testing.B) {
					out := c.enc(nil, p)
					b.SetBytes(int64(n))
					for b.Loop() {
						out = c.enc(out[:0], p)
					}
					b.ReportMetric(float64(len(out))/float64(n), "size/raw")
				})
			}
		}
	}
}

func BenchmarkShuffle(b *testing.B) {
	v := ckValues(2<<20, 1, 0.02)
	raw := make([]byte, 4*len(v))
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		shuffle4(raw, v)
	}
}

func BenchmarkUnshuffle(b *testing.B) {
	v := ckValues(2<<20, 1, 0.02)
	raw := make([]byte, 4*len(v))
	shuffle4(raw, v)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		unshuffle4(v, raw, len(v), 0)
	}
}

func BenchmarkSaveWeights(b *testing.B) {
	v := ckValues(16<<20, 1, 0.02)
	dir := b.TempDir()
	b.SetBytes(int64(4 * len(v)))
	for b.Loop() {
		if err := SaveWeights(dir, []Buffer{{Name: "w", Values: v}}, SaveOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadWeights(b *testing.B) {
	v := ckValues(16<<20, 1, 0.02)
	dir := b.TempDir()
	if err := SaveWeights(dir, []Buffer{{Name: "w", Values: v}}, SaveOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(4 * len(v)))
	for b.Loop() {
		if _, err := LoadWeights(dir); err != nil {
			b.Fatal(err)
		}
	}
}
