// Package kerneltest is the conformance suite every kernels.Device must
// pass, as gonum's blas/testblas is for BLAS implementations: a device's
// own test calls
//
//	kerneltest.Run(t, dev)
//
// Each op is checked against the math, not against another device:
//
//   - forward outputs against a float64 reference written here as plain
//     loops, on random inputs of odd sizes (7 rows, 13 channels, 3 query
//     heads on 1 kv head of size 6, packed sequences of lengths 5, 1, 0
//     and 11, a vocabulary of 37, chunks that do not divide the rows);
//   - gradients against central finite differences of that float64
//     reference, for L = sum(g * out) with random g;
//   - the accumulate contract: a backward called twice onto random
//     gradient contents leaves contents + 2 * gradient;
//   - empty (N == 0) optional gradients are skipped: the others come out
//     the same, and nothing is written through the empty view;
//   - the properties the model relies on: causal masking, grouped-query
//     head mapping, sequences that do not see each other, RoPE at large
//     positions, decoding from a KV cache equal to the full forward.
//
// Errors are measured against the scale of the expected values:
// max_i |got_i - want_i| / max_i |want_i| (see checkClose). The bounds,
// the tolerance constants below, leave room for float32 rounding (about
// 6e-8 per operation) times the sums involved; a wrong formula misses
// them by orders of magnitude. Ops that only move values (copies,
// gathers, transposes, the KV cache) must be exact, as must outputs that
// may not depend on an input at all (masked keys, other sequences).
// Run with -v to see every check's error beside its bound.
package kerneltest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"earl/kernels"
)

// Tolerances, relative to the scale of the expected values.
const (
	// tolFwd is for forward ops against the float64 reference: float32
	// rounding through sums of up to a few hundred terms and float32
	// transcendental functions; the CPU device stays under 3e-7.
	tolFwd = 5e-6
	// tolGrad is for float32 gradients against float64 central
	// differences, which are themselves good to about 1e-9; the CPU
	// device stays under 2e-6.
	tolGrad = 1e-4
	// tolAcc is for the accumulate contract: contents + 2 * gradient
	// against what the device gave from zeros, one float32 rounding per
	// addition.
	tolAcc = 1e-6
)

// Run runs every conformance check on d, each op a subtest.
func Run(t *testing.T, d kernels.Device) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*env)
	}{
		{"Memory", testMemory},
		{"Elementwise", testElementwise},
		{"Gemm", testGemm},
		{"Transpose", testTranspose},
		{"GatherScatterRows", testGatherScatter},
		{"Embedding", testEmbedding},
		{"Linear", testLinear},
		{"RMSNorm", testRMSNorm},
		{"LayerNorm", testLayerNorm},
		{"RoPE", testRoPE},
		{"Attention", testAttention},
		{"AttentionLong", testAttentionLong},
		{"AttentionMasks", testAttentionMasks},
		{"SwiGLU", testSwiGLU},
		{"GELU", testGELU},
		{"Conv1d", testConv1d},
		{"AvgPool", testAvgPool},
		{"KVCacheDecode", testDecode},
		{"TokenLogProbs", testTokenLogProbs},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(&env{T: t, d: d, rng: rand.New(rand.NewPCG(uint64(i)+1, 0x6561726c))})
		})
	}
}

// env is one subtest's device and random source.
type env struct {
	*testing.T
	d   kernels.Device
	rng *rand.Rand
}

// randn returns n standard normal values, rounded to float32 so that the
// device and the float64 reference see the same numbers.
func (e *env) randn(n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(float32(e.rng.NormFloat64()))
	}
	return x
}

// uniform returns n values in [lo, hi), rounded to float32.
func (e *env) uniform(n int, lo, hi float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(float32(lo + (hi-lo)*e.rng.Float64()))
	}
	return x
}

// up allocates a device tensor holding x; down reads one back.
func (e *env) up(x []float64) kernels.T {
	t := e.d.Alloc(len(x))
	e.set(t, x)
	return t
}

func (e *env) set(t kernels.T, x []float64) {
	f := make([]float32, len(x))
	for i, v := range x {
		f[i] = float32(v)
	}
	e.d.Upload(t, f)
}

func (e *env) down(t kernels.T) []float64 {
	f := make([]float32, t.N)
	e.d.Download(f, t)
	x := make([]float64, len(f))
	for i, v := range f {
		x[i] = float64(v)
	}
	return x
}

func (e *env) upInts(x []int32) kernels.I {
	i := e.d.AllocInt(len(x))
	e.d.UploadInt(i, x)
	return i
}

// checkClose fails the test when max|got - want| > tol * max|want| (or
// tol itself when want is all zeros), naming the worst element.
func (e *env) checkClose(what string, got, want []float64, tol float64) {
	e.Helper()
	if len(got) != len(want) {
		e.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	if scale == 0 {
		scale = 1
	}
	worst, at := 0.0, -1
	for i := range got {
		d := math.Abs(got[i] - want[i])
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
			if math.IsNaN(d) {
				break
			}
		}
	}
	rel := worst / scale
	e.Logf("%s: error %.2g (bound %.1g)", what, rel, tol)
	if rel > tol || math.IsNaN(rel) {
		e.Errorf("%s: error %.3g of scale %.3g (bound %.1g): [%d] = %.9g, want %.9g",
			what, rel, scale, tol, at, got[at], want[at])
	}
}

// checkSame fails unless got and want are identical (bitwise as float32).
func (e *env) checkSame(what string, got, want []float64) {
	e.Helper()
	for i := range want {
		if got[i] != want[i] && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
			e.Errorf("%s: [%d] = %.9g, want %.9g (exactly)", what, i, got[i], want[i])
			return
		}
	}
}

// numGrad returns dL/dx by central differences for L = loss(), which reads
// x: each x_i moves by h = 1e-6 * max(1, |x_i|), in float64, so the
// truncation error is about h^2 and the rounding error about 1e-16 / h.
// idx selects the elements (nil: all); the result has one value per
// selected element.
func numGrad(x []float64, idx []int, loss func() float64) []float64 {
	if idx == nil {
		idx = make([]int, len(x))
		for i := range idx {
			idx[i] = i
		}
	}
	g := make([]float64, len(idx))
	for k, i := range idx {
		old := x[i]
		h := 1e-6 * max(1, math.Abs(old))
		x[i] = old + h
		lp := loss()
		x[i] = old - h
		lm := loss()
		x[i] = old
		g[k] = (lp - lm) / (2 * h)
	}
	return g
}

// dotf is sum(g * y), the random linear functional the gradients are of.
func dotf(g, y []float64) float64 {
	s := 0.0
	for i := range g {
		s += g[i] * y[i]
	}
	return s
}

// grad is one gradient output of a backward op under test.
type grad struct {
	name string
	n    int       // its length
	want []float64 // finite differences of the reference
	tol  float64   // bound against want (tolGrad unless the op needs more)
}

// checkBackward runs the checks every backward op shares. call runs the
// backward into the given gradient views, in grads' order.
//
//  1. From zeroed gradients: each against its finite differences.
//  2. Accumulate: from random contents r, called twice, each must be
//     r + 2 * (result of 1).
//  3. Each gradient in turn passed empty (N == 0, but pointing into a
//     buffer of sentinels): the others must come out as in 1 and the
//     sentinels untouched; then all of them empty at once.
func (e *env) checkBackward(op string, grads []grad, call func(g []kernels.T)) {
	e.Helper()
	views := make([]kernels.T, len(grads))
	for i, g := range grads {
		views[i] = e.d.Alloc(g.n)
	}
	call(views)
	first := make([][]float64, len(grads))
	for i, g := range grads {
		first[i] = e.down(views[i])
		tol := g.tol
		if tol == 0 {
			tol = tolGrad
		}
		e.checkClose(fmt.Sprintf("%s %s vs finite differences", op, g.name), first[i], g.want, tol)
	}

	init := make([][]float64, len(grads))
	for i := range grads {
		init[i] = e.randn(grads[i].n)
		e.set(views[i], init[i])
	}
	call(views)
	call(views)
	for i, g := range grads {
		want := make([]float64, g.n)
		for k := range want {
			want[k] = init[i][k] + 2*first[i][k]
		}
		e.checkClose(fmt.Sprintf("%s %s: twice onto random contents", op, g.name), e.down(views[i]), want, tolAcc)
	}

	sentinel := e.up(e.randn(8))
	sent := e.down(sentinel)
	empty := kernels.T{B: sentinel.B, Off: sentinel.Off + 3, N: 0}
	for skip := range grads {
		vs := make([]kernels.T, len(grads))
		for i := range grads {
			if i == skip {
				vs[i] = empty
				continue
			}
			vs[i] = views[i]
			e.d.Zero(vs[i])
		}
		call(vs)
		for i, g := range grads {
			if i != skip {
				e.checkClose(fmt.Sprintf("%s %s with %s empty", op, g.name, grads[skip].name), e.down(vs[i]), first[i], tolAcc)
			}
		}
		e.checkSame(fmt.Sprintf("%s with %s empty: the buffer behind the empty view", op, grads[skip].name), e.down(sentinel), sent)
	}
	none := make([]kernels.T, len(grads))
	for i := range none {
		none[i] = empty
	}
	call(none)
	e.checkSame(op+" with every gradient empty: the buffer behind the empty views", e.down(sentinel), sent)
	for _, v := range views {
		e.d.Free(v)
	}
	e.d.Free(sentinel)
}
