// Package cpu is earl's reference kernels.Device: buffers are Go slices,
// matrix products go to OpenBLAS's cblas_sgemm through cgo (one call per
// core's slab of a product, never one per row), and everything else is
// plain Go, one function per op in llm.c's style, split across cores where
// the work is large.
//
// # Threads
//
// The model calls ops one after another from one goroutine, so an op has
// the whole machine to itself, and Go owns all of it: each Device runs
// GOMAXPROCS-1 helper goroutines beside the caller, and OpenBLAS is set to
// one thread (openblas_set_num_threads(1), process-wide). A matrix product
// is cut into one slab per goroutine, each slab one single-threaded
// cblas_sgemm call (see gemm); the Go loops split rows or columns the same
// way; attention and the log-softmax run their sgemm calls inside each
// goroutine's share of the work, next to the Go loops over the same rows.
//
// Letting OpenBLAS run its own threads is as fast for a lone product, but
// they spin for about 0.1 s after every call, which halves the speed of
// the Go loops between products (measured: SwiGLU on (1024, 1408) takes
// 3.0 ms on two goroutines, 5.3 ms right after an sgemm with two OpenBLAS
// threads).
//
// # Determinism
//
// The same inputs give bit-identical outputs run to run (DESIGN.md rule
// 5) for a given GOMAXPROCS. Work is split into ranges that depend only on
// the sizes and GOMAXPROCS, every reduction (a row's sum, a weight
// gradient's sum over rows) runs in a fixed order inside one range, and
// items handed out dynamically (attention's heads) never share outputs.
// A different GOMAXPROCS may change the last bits of sgemm results, as
// OpenBLAS's own thread count would.
//
// # Views
//
// A view must hold at least the values its shape needs; ops use its first
// ones. An optional argument (a bias, a gradient that is not wanted) is
// skipped when its view has N == 0. A Device is not safe for concurrent
// use: like a CUDA stream, it runs one op at a time, and it keeps each op's
// arguments and scratch in itself so that ops allocate nothing.
package cpu

import (
	"fmt"
	"runtime"

	"earl/kernels"
)

// Device is the CPU implementation of kernels.Device.
type Device struct {
	pool *pool
	// ws is scratch the interface does not pass in (attention scores,
	// per-part decode scores); it grows to the largest call and stays.
	ws []float32
	// ropeInv caches the inverse frequencies of the last RoPE call's theta
	// and head size.
	ropeInv ropeTable
	jobs    jobs
}

// jobs holds the arguments of each op's parallel part (see runner).
type jobs struct {
	gemm      gemmJob
	sum       colSumJob
	transpose transposeJob
	embedBack embedBackJob
	rmsFwd    rmsFwdJob
	rmsBack   rmsBackJob
	rmsDW     rmsDWJob
	lnFwd     lnFwdJob
	lnBack    lnBackJob
	lnDW      lnDWJob
	rope      ropeJob
	attn      attnJob
	decode    decodeJob
	swiglu    swigluJob
	gelu      geluJob
	im2col    im2colJob
	col2im    col2imJob
	rowSum    rowSumJob
	pool      poolJob
	lsm       logSoftmaxJob
	lsmBack   logSoftmaxBackJob
}

var _ kernels.Device = (*Device)(nil)

// New returns a CPU device using GOMAXPROCS cores. It sets OpenBLAS to
// one thread for the whole process (see Threads above).
func New() *Device { return newDevice(runtime.GOMAXPROCS(0)) }

// newDevice returns a device splitting its work into parts ranges.
func newDevice(parts int) *Device {
	setBLASThreads(1)
	d := &Device{pool: newPool(parts)}
	// The helpers reference only the pool, so an unreachable Device can be
	// collected; this then ends its helpers.
	runtime.AddCleanup(d, func(p *pool) { p.stop() }, d.pool)
	return d
}

// Name names the device and its BLAS, e.g. "cpu (2 goroutines; OpenBLAS
// 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64)".
func (d *Device) Name() string {
	return fmt.Sprintf("cpu (%d goroutines; %s)", d.pool.parts, blasConfig())
}

// buffer is the CPU's kernels.Buf: a Go slice. Free sets it to nil, so a
// view used after its buffer is freed panics instead of reading stale data.
type buffer struct{ f []float32 }

func (b *buffer) Len() int { return len(b.f) }

// Host implements kernels.HostBuf.
func (b *buffer) Host() []float32 { return b.f }

// ibuffer is the CPU's kernels.IBuf.
type ibuffer struct{ i []int32 }

func (b *ibuffer) Len() int { return len(b.i) }

// Wrap returns a view of s, which the device then uses in place: a host
// slice (a memory-mapped weight file, a test's data) becomes a device
// tensor without a copy.
func Wrap(s []float32) kernels.T { return kernels.T{B: &buffer{s}, N: len(s)} }

// WrapInts returns a view of s, used in place.
func WrapInts(s []int32) kernels.I { return kernels.I{B: &ibuffer{s}, N: len(s)} }

// Floats returns the slice of values t covers, for host-side work on a
// CPU tensor; nil for an empty view. It panics if t belongs to another
// device.
func Floats(t kernels.T) []float32 {
	if t.N == 0 {
		return nil
	}
	b, ok := t.B.(*buffer)
	if !ok {
		panic(fmt.Sprintf("cpu: view of a %T, not a cpu buffer", t.B))
	}
	if b.f == nil {
		panic("cpu: view of a freed buffer")
	}
	return b.f[t.Off : t.Off+t.N : t.Off+t.N]
}

// Ints returns the slice of values i covers; nil for an empty view.
func Ints(i kernels.I) []int32 {
	if i.N == 0 {
		return nil
	}
	b, ok := i.B.(*ibuffer)
	if !ok {
		panic(fmt.Sprintf("cpu: view of a %T, not a cpu int buffer", i.B))
	}
	if b.i == nil {
		panic("cpu: view of a freed buffer")
	}
	return b.i[i.Off : i.Off+i.N : i.Off+i.N]
}

// need returns the first n values of t; op and arg name the call in the
// panic when t is shorter.
func need(t kernels.T, n int, op, arg string) []float32 {
	if n < 0 || t.N < n {
		panic(fmt.Sprintf("cpu: %s: %s has %d values, need %d", op, arg, t.N, n))
	}
	if n == 0 {
		return nil
	}
	return Floats(t)[:n]
}

// opt is need for an optional argument: nil when t is empty.
func opt(t kernels.T, n int, op, arg string) []float32 {
	if t.N == 0 {
		return nil
	}
	return need(t, n, op, arg)
}

// needInts is need for int views.
func needInts(i kernels.I, n int, op, arg string) []int32 {
	if n < 0 || i.N < n {
		panic(fmt.Sprintf("cpu: %s: %s has %d values, need %d", op, arg, i.N, n))
	}
	if n == 0 {
		return nil
	}
	return Ints(i)[:n]
}

// sameLen panics unless b has as many values as a (the shapeless
// elementwise ops).
func sameLen(op string, a, b kernels.T) {
	if a.N != b.N {
		panic(fmt.Sprintf("cpu: %s: views of %d and %d values", op, a.N, b.N))
	}
}

// scratch returns n values of the device's workspace, growing it (the only
// allocation an op makes, once, at the largest size the model uses).
func (d *Device) scratch(n int) []float32 {
	if len(d.ws) < n {
		d.ws = make([]float32, n)
	}
	return d.ws[:n]
}

// Alloc returns n zeroed values.
func (d *Device) Alloc(n int) kernels.T { return Wrap(make([]float32, n)) }

// AllocInt returns n zeroed int32 values.
func (d *Device) AllocInt(n int) kernels.I { return WrapInts(make([]int32, n)) }

// Free releases t's whole buffer to the garbage collector; views of it
// panic afterwards.
func (d *Device) Free(t kernels.T) {
	if b, ok := t.B.(*buffer); ok {
		b.f = nil
	}
}

// FreeInt releases i's whole buffer.
func (d *Device) FreeInt(i kernels.I) {
	if b, ok := i.B.(*ibuffer); ok {
		b.i = nil
	}
}

// Upload copies src into dst; they have the same length.
func (d *Device) Upload(dst kernels.T, src []float32) {
	if dst.N != len(src) {
		panic(fmt.Sprintf("cpu: Upload: %d values into a view of %d", len(src), dst.N))
	}
	copy(Floats(dst), src)
}

// Download copies src into dst; they have the same length.
func (d *Device) Download(dst []float32, src kernels.T) {
	if src.N != len(dst) {
		panic(fmt.Sprintf("cpu: Download: a view of %d values into %d", src.N, len(dst)))
	}
	copy(dst, Floats(src))
}

// UploadInt copies src into dst; they have the same length.
func (d *Device) UploadInt(dst kernels.I, src []int32) {
	if dst.N != len(src) {
		panic(fmt.Sprintf("cpu: UploadInt: %d values into a view of %d", len(src), dst.N))
	}
	copy(Ints(dst), src)
}

// DownloadInt copies src into dst; they have the same length.
func (d *Device) DownloadInt(dst []int32, src kernels.I) {
	if src.N != len(dst) {
		panic(fmt.Sprintf("cpu: DownloadInt: a view of %d values into %d", src.N, len(dst)))
	}
	copy(dst, Ints(src))
}

// Sync returns at once: every op has finished when it returns.
func (d *Device) Sync() {}

// Zero sets x to 0.
func (d *Device) Zero(x kernels.T) { clear(Floats(x)) }

// Copy copies src into dst (same length).
func (d *Device) Copy(dst, src kernels.T) {
	sameLen("Copy", dst, src)
	copy(Floats(dst), Floats(src))
}

// Add sets out = a + b (all the same length; out may be a or b).
//
// The elementwise ops stay on one goroutine: they are bound by memory
// bandwidth, which one core nearly saturates here.
func (d *Device) Add(out, a, b kernels.T) {
	sameLen("Add", out, a)
	sameLen("Add", out, b)
	o, x, y := Floats(out), Floats(a), Floats(b)
	x, y = x[:len(o)], y[:len(o)]
	for i := range o {
		o[i] = x[i] + y[i]
	}
}

// Axpy sets y += alpha * x.
func (d *Device) Axpy(y kernels.T, alpha float32, x kernels.T) {
	sameLen("Axpy", y, x)
	axpy(Floats(y), alpha, Floats(x))
}

// Scale sets x *= alpha.
func (d *Device) Scale(x kernels.T, alpha float32) {
	v := Floats(x)
	for i := range v {
		v[i] *= alpha
	}
}
