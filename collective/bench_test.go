package collective

import (
	"fmt"
	"testing"

	"earl/kernels/cpu"
)

// The reduction loop on a cache-resident piece (recvPiece), unrolled
// (add32) against the plain loop.
func BenchmarkAdd32(b *testing.B) {
	n := recvPiece / 4
	dst, src := make([]float32, n), make([]float32, n)
	b.Run("add32", func(b *testing.B) {
		b.SetBytes(int64(4 * n))
		for b.Loop() {
			add32(dst, dst, src)
		}
	})
	b.Run("unrolled-go", func(b *testing.B) {
		b.SetBytes(int64(4 * n))
		for b.Loop() {
			add32Go(dst, dst, src)
		}
	})
	b.Run("plain", func(b *testing.B) {
		b.SetBytes(int64(4 * n))
		for b.Loop() {
			for i := range dst {
				dst[i] += src[i]
			}
		}
	})
}

// The cost of putting floats on the wire through binary.LittleEndian
// (the big-endian path) rather than as they lie in memory.
func BenchmarkWireCodec(b *testing.B) {
	n := 1 << 20
	src, dst := bytesOf32(make([]float32, n/4)), bytesOf32(make([]float32, n/4))
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(n))
		for b.Loop() {
			toWire(dst, src, 4)
		}
	})
	b.Run("decode-in-place", func(b *testing.B) {
		b.SetBytes(int64(n))
		for b.Loop() {
			fromWire(dst, dst, 4)
		}
	})
}

// All-reduce between 2 and 4 ranks in this process on each transport,
// and on TCP with the explicit little-endian encoding of the big-endian
// path. Bytes/s is the bus bandwidth (nccl-tests: algbw · 2(n-1)/n).
func BenchmarkAllReduceTCP(b *testing.B) {
	for _, size := range []int{2, 4} {
		for _, tr := range transports {
			comms := dialJob(b, size, tr.opt)
			for _, n := range []int{1 << 10, 1 << 16, 1 << 22} {
				for _, enc := range []bool{false, true} {
					if enc && tr.name != "tcp" {
						continue
					}
					name := fmt.Sprintf("ranks%d/%s/%dKiB", size, tr.name, 4*n>>10)
					if enc {
						name += "/encoded"
					}
					b.Run(name, func(b *testing.B) {
						saved := encodeWire
						encodeWire = enc
						defer func() { encodeWire = saved }()
						xs := make([]float32, size*n)
						b.SetBytes(int64(4*n) * int64(2*(size-1)) / int64(size))
						iters := b.N
						b.ResetTimer()
						mustAll(b, each(comms, func(c Comm) error {
							x := cpu.Wrap(xs[c.Rank()*n : (c.Rank()+1)*n])
							for range iters {
								if err := c.AllReduce(x, Sum); err != nil {
									return err
								}
							}
							return nil
						}))
					})
				}
			}
		}
	}
}
