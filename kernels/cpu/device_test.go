package cpu

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"earl/kernels"
)

// TestExpf checks expf against math.Exp on a sweep of float32 inputs:
// never more than one unit in the last place off, and rarely that.
func TestExpf(t *testing.T) {
	off := 0
	n := 0
	for x := float32(-110); x < 90; x = math.Nextafter32(x, 100) + 1e-4*float32(math.Abs(float64(x))) {
		n++
		got, want := expf(x), float32(math.Exp(float64(x)))
		if got == want {
			continue
		}
		off++
		if d := int64(math.Float32bits(got)) - int64(math.Float32bits(want)); d > 1 || d < -1 || math.IsInf(float64(got), 0) != math.IsInf(float64(want), 0) {
			t.Fatalf("expf(%v) = %v, want %v", x, got, want)
		}
	}
	if off > n/1000 {
		t.Errorf("expf: %d of %d values off by one ulp", off, n)
	}
	if v := expf(float32(math.NaN())); v == v {
		t.Errorf("expf(NaN) = %v", v)
	}
	if v := expf(float32(math.Inf(-1))); v != 0 {
		t.Errorf("expf(-Inf) = %v", v)
	}
	if v := expf(float32(math.Inf(1))); !math.IsInf(float64(v), 1) {
		t.Errorf("expf(+Inf) = %v", v)
	}
}

// workload is a few ops at sizes that split across goroutines and reach
// several attention blocks; it returns every output.
type workload struct {
	d                          *Device
	x, w, q, k, v, g, hs, head kernels.T
	tgt                        kernels.I
	seqs                       kernels.Seqs
	a                          kernels.Attn
	n, c, v_                   int
}

func newWorkload(d *Device, seed uint64) *workload {
	rng := rand.New(rand.NewPCG(seed, 1))
	randT := func(n int) kernels.T {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return Wrap(s)
	}
	const n, c, V = 600, 128, 1000
	a := kernels.Attn{Heads: 4, KVHeads: 2, HeadDim: 24, Causal: true, Scale: 0.2}
	tg := make([]int32, n)
	for i := range tg {
		tg[i] = int32(rng.IntN(V))
	}
	return &workload{d: d, n: n, c: c, v_: V, a: a,
		x: randT(n * c), w: randT(c * c), q: randT(n * 96), k: randT(n * 48), v: randT(n * 48), g: randT(n * c),
		hs: randT(n * c), head: randT(V * c), tgt: WrapInts(tg), seqs: kernels.Seqs{Offsets: []int32{0, 7, 300, 600}}}
}

// run runs every op and returns the outputs; with goOnly, only the ops
// whose results may not depend on how the work is split (no product cut
// into slabs).
func (wl *workload) run(goOnly bool) [][]float32 {
	d, n, c := wl.d, wl.n, wl.c
	var outs []kernels.T
	lin := wl.x // when only Go loops run, normalise the input itself
	if !goOnly {
		lin = d.Alloc(n * c)
		d.LinearForward(lin, wl.x, wl.w, kernels.T{}, n, c, c)
		outs = append(outs, lin)
	}
	rms, rstd := d.Alloc(n*c), d.Alloc(n)
	d.RMSNormForward(rms, rstd, lin, wl.w.View(0, c), n, c, 1e-6)
	dx, dw := d.Alloc(n*c), d.Alloc(c)
	d.RMSNormBackward(dx, dw, wl.g, lin, wl.w.View(0, c), rstd, n, c)
	out, lse := d.Alloc(n*96), d.Alloc(n*4)
	d.AttentionForward(out, lse, wl.q, wl.k, wl.v, wl.seqs, wl.a)
	dq, dk, dv := d.Alloc(n*96), d.Alloc(n*48), d.Alloc(n*48)
	d.AttentionBackward(dq, dk, dv, wl.g.View(0, n*96), out, lse, wl.q, wl.k, wl.v, wl.seqs, wl.a)
	dtable := d.Alloc(wl.v_ * c)
	d.EmbeddingBackward(dtable, wl.g, wl.tgt, n, c)
	outs = append(outs, rms, rstd, dx, dw, out, lse, dq, dk, dv, dtable)
	if !goOnly {
		logp, ent, lse2, logits := d.Alloc(n), d.Alloc(n), d.Alloc(n), d.Alloc(64*wl.v_)
		d.TokenLogProbs(logp, ent, lse2, logits, wl.hs, wl.head, wl.tgt, n, c, wl.v_, 64, 0.7)
		dh, dhead := d.Alloc(n*c), d.Alloc(wl.v_*c)
		d.TokenLogProbsBackward(dh, dhead, logits, wl.g.View(0, n), wl.g.View(n, n), wl.hs, wl.head, lse2, wl.tgt, n, c, wl.v_, 64, 0.7)
		outs = append(outs, logp, ent, dh, dhead)
	}
	var fs [][]float32
	for _, t := range outs {
		fs = append(fs, Floats(t))
	}
	return fs
}

// sameBits fails unless got and want are bit-identical.
func sameBits(t *testing.T, what string, got, want [][]float32) {
	t.Helper()
	for i := range want {
		for k := range want[i] {
			if math.Float32bits(got[i][k]) != math.Float32bits(want[i][k]) {
				t.Fatalf("%s: output %d differs at %d: %v, then %v", what, i, k, want[i][k], got[i][k])
			}
		}
	}
}

// TestDeterministic runs the same ops twice on one device and once on
// another of the same size: the outputs must be bit-identical. The Go
// loops must also give the same bits however the work is split (1, 2, 3
// goroutines); products cut into slabs may differ in the last bits
// between splits, as OpenBLAS's own threading would.
func TestDeterministic(t *testing.T) {
	d := New()
	ref := newWorkload(d, 1).run(false)
	sameBits(t, "the same device again", newWorkload(d, 1).run(false), ref)
	sameBits(t, "another device", newWorkload(New(), 1).run(false), ref)
	goRef := newWorkload(newDevice(1), 1).run(true)
	for _, parts := range []int{2, 3} {
		sameBits(t, "another split", newWorkload(newDevice(parts), 1).run(true), goRef)
	}
}

// TestNoAllocs checks that warm ops allocate nothing, at sizes that use
// the worker pool.
func TestNoAllocs(t *testing.T) {
	d := New()
	wl := newWorkload(d, 2)
	n, c := wl.n, wl.c
	out, lse, dq, dk, dv := d.Alloc(n*96), d.Alloc(n*4), d.Alloc(n*96), d.Alloc(n*48), d.Alloc(n*48)
	y, rstd, dx, dw := d.Alloc(n*c), d.Alloc(n), d.Alloc(n*c), d.Alloc(c)
	logp, ent, lse2, logits, dh := d.Alloc(n), d.Alloc(n), d.Alloc(n), d.Alloc(64*wl.v_), d.Alloc(n*c)
	pos, slot0 := WrapInts(make([]int32, n)), WrapInts(make([]int32, n))
	col, conv, dwConv := d.Alloc(c*3*n), d.Alloc(2*c*n), d.Alloc(2*c*c*3)
	kc, vc := d.Alloc(4*n*48), d.Alloc(4*n*48)
	slots, lens := WrapInts([]int32{0, 1, 2, 3}), WrapInts([]int32{int32(n), 5, 1, int32(n)})
	ops := map[string]func(){
		"LinearForward":  func() { d.LinearForward(y, wl.x, wl.w, wl.w.View(0, c), n, c, c) },
		"LinearBackward": func() { d.LinearBackward(dx, wl.w, dw, wl.g, wl.x, wl.w, n, c, c) },
		"RMSNorm": func() {
			d.RMSNormForward(y, rstd, wl.x, wl.w.View(0, c), n, c, 1e-6)
			d.RMSNormBackward(dx, dw, wl.g, wl.x, wl.w.View(0, c), rstd, n, c)
		},
		"LayerNorm": func() {
			d.LayerNormForward(y, rstd, lse.View(0, n), wl.x, wl.w.View(0, c), wl.w.View(c, c), n, c, 1e-5)
			d.LayerNormBackward(dx, dw, dh.View(0, c), wl.g, wl.x, wl.w.View(0, c), rstd, lse.View(0, n), n, c)
		},
		"RoPE": func() { d.RoPEForward(dq, pos, n, 4, 24, 1e6); d.RoPEBackward(dq, pos, n, 4, 24, 1e6) },
		"Attention": func() {
			d.AttentionForward(out, lse, wl.q, wl.k, wl.v, wl.seqs, wl.a)
			d.AttentionBackward(dq, dk, dv, wl.g.View(0, n*96), out, lse, wl.q, wl.k, wl.v, wl.seqs, wl.a)
		},
		"SwiGLU": func() {
			d.SwiGLUForward(y, wl.x, wl.hs, n, c)
			d.SwiGLUBackward(dx, dh, wl.g, wl.x, wl.hs, n, c)
		},
		"GELU": func() { d.GELUForward(y, wl.x, n*c); d.GELUBackward(dx, wl.g, wl.x, n*c) },
		"TokenLogProbs": func() {
			d.TokenLogProbs(logp, ent, lse2, logits, wl.hs, wl.head, wl.tgt, n, c, wl.v_, 64, 0.7)
			d.TokenLogProbsBackward(dh, wl.head, logits, wl.g.View(0, n), wl.g.View(n, n), wl.hs, wl.head, lse2, wl.tgt, n, c, wl.v_, 64, 0.7)
		},
		"Conv1d": func() {
			d.Conv1dForward(conv, col, wl.x, wl.head.View(0, 2*c*c*3), wl.w.View(0, 2*c), 1, c, 2*c, n, 1)
			d.Conv1dBackward(dx, dwConv, dw.View(0, 0), col, conv, wl.x, wl.head.View(0, 2*c*c*3), 1, c, 2*c, n, 1)
		},
		"AvgPool": func() {
			d.AvgPoolForward(y.View(0, n*c/2), wl.x, c, 1, n)
			d.AvgPoolBackward(dx, y.View(0, n*c/2), c, 1, n)
		},
		"Embedding": func() { d.EmbeddingBackward(wl.head, wl.x, wl.tgt, n, c) },
		"Decode": func() {
			d.CacheWrite(kc, vc, wl.k, wl.v, slot0, pos, n, 2, 24, n)
			d.AttentionDecode(out.View(0, 4*96), wl.q.View(0, 4*96), kc, vc, slots, lens, 4, wl.a, n)
		},
	}
	// AllocsPerRun counts the whole process's allocations, and the
	// cleanups of devices earlier tests dropped allocate when they run:
	// an op that allocates does so every time, so take the least of a few
	// measurements.
	runtime.GC()
	for name, op := range ops {
		allocs := testing.AllocsPerRun(5, op)
		for range 3 {
			allocs = min(allocs, testing.AllocsPerRun(5, op))
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per call", name, allocs)
		}
	}
}

// TestBadShapes checks that a view too short for its shape, or an index
// out of range, panics with the op and argument named, before sgemm could
// read past the end.
func TestBadShapes(t *testing.T) {
	d := New()
	for _, c := range []struct {
		want string
		fn   func()
	}{
		{"LinearForward: x has 11 values, need 12", func() {
			d.LinearForward(d.Alloc(8), d.Alloc(11), d.Alloc(6), kernels.T{}, 4, 3, 2)
		}},
		{"Gemm: a has 5 values, need 6", func() {
			d.Gemm(false, false, 2, 2, 3, 1, d.Alloc(5), 3, d.Alloc(6), 2, 0, d.Alloc(4), 2)
		}},
		{"GatherRows: idx[0] = -1 is outside [0, 2)", func() {
			d.EmbeddingForward(d.Alloc(3), d.Alloc(6), WrapInts([]int32{-1}), 1, 3)
		}},
		{"TokenLogProbs: targets[1] = 5 is outside [0, 5)", func() {
			d.TokenLogProbs(d.Alloc(2), d.Alloc(2), d.Alloc(2), d.Alloc(10), d.Alloc(6), d.Alloc(15),
				WrapInts([]int32{0, 5}), 2, 3, 5, 2, 1)
		}},
		{"AttentionForward: 3 heads, 2 kv heads", func() {
			d.AttentionForward(d.Alloc(6), d.Alloc(3), d.Alloc(6), d.Alloc(4), d.Alloc(4),
				kernels.Seqs{Offsets: []int32{0, 1}}, kernels.Attn{Heads: 3, KVHeads: 2, HeadDim: 2})
		}},
	} {
		func() {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, c.want) {
					t.Errorf("panic %v, want one containing %q", r, c.want)
				}
			}()
			c.fn()
		}()
	}
}
