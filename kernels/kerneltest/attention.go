package kerneltest

import (
	"fmt"
	"math"

	"earl/kernels"
)

// attnOffsets packs sequences of lengths 5, 1, 0 and 11 (17 rows).
var attnOffsets = []int32{0, 5, 6, 6, 17}

func attnShape(causal bool, heads, kvHeads, dim int) kernels.Attn {
	return kernels.Attn{Heads: heads, KVHeads: kvHeads, HeadDim: dim, Causal: causal,
		Scale: float32(1 / math.Sqrt(float64(dim)))}
}

func testAttention(e *env) {
	for _, c := range []struct{ heads, kvHeads int }{{3, 1}, {4, 2}} {
		for _, causal := range []bool{true, false} {
			a := attnShape(causal, c.heads, c.kvHeads, 6)
			e.attentionCase(fmt.Sprintf("%d/%d heads causal=%v", c.heads, c.kvHeads, causal), attnOffsets, a, 0)
			if e.Failed() {
				return
			}
		}
	}
}

// testAttentionLong runs sequences longer than a block of rows a device
// may process at once (the CPU's is 128), checking the gradients at 12
// random elements of each input.
func testAttentionLong(e *env) {
	offs := []int32{0, 150, 151, 290}
	for _, causal := range []bool{true, false} {
		e.attentionCase(fmt.Sprintf("long causal=%v", causal), offs, attnShape(causal, 2, 1, 4), 12)
	}
}

// attentionCase checks forward and backward of one shape; with sample > 0
// the finite differences cover only that many random elements of each of
// q, k, v.
func (e *env) attentionCase(what string, offs []int32, a kernels.Attn, sample int) {
	total := int(offs[len(offs)-1])
	qn, kn := total*a.Heads*a.HeadDim, total*a.KVHeads*a.HeadDim
	q, k, v := e.randn(qn), e.randn(kn), e.randn(kn)
	tq, tk, tv := e.up(q), e.up(k), e.up(v)
	seqs := kernels.Seqs{Offsets: offs}
	out, lse := e.d.Alloc(qn), e.d.Alloc(total*a.Heads)
	e.d.AttentionForward(out, lse, tq, tk, tv, seqs, a)
	wantOut, wantLse := refAttention(q, k, v, offs, a)
	e.checkClose("AttentionForward out, "+what, e.down(out), wantOut, tolFwd)
	e.checkClose("AttentionForward lse, "+what, e.down(lse), wantLse, tolFwd)

	g := e.randn(qn)
	tg := e.up(g)
	loss := func() float64 { o, _ := refAttention(q, k, v, offs, a); return dotf(g, o) }
	call := func(gs []kernels.T) {
		e.d.AttentionBackward(gs[0], gs[1], gs[2], tg, out, lse, tq, tk, tv, seqs, a)
	}
	if sample == 0 {
		e.checkBackward("AttentionBackward, "+what, []grad{
			{name: "dq", n: qn, want: numGrad(q, nil, loss)},
			{name: "dk", n: kn, want: numGrad(k, nil, loss)},
			{name: "dv", n: kn, want: numGrad(v, nil, loss)},
		}, call)
		return
	}
	views := []kernels.T{e.d.Alloc(qn), e.d.Alloc(kn), e.d.Alloc(kn)}
	call(views)
	for i, in := range []struct {
		name string
		x    []float64
	}{{"dq", q}, {"dk", k}, {"dv", v}} {
		idx := make([]int, sample)
		for s := range idx {
			idx[s] = e.rng.IntN(len(in.x))
		}
		all := e.down(views[i])
		got := make([]float64, sample)
		for s, at := range idx {
			got[s] = all[at]
		}
		e.checkClose("AttentionBackward "+in.name+" at sampled elements, "+what, got, numGrad(in.x, idx, loss), tolGrad)
	}
}

// testAttentionMasks checks which rows see which: by changing some keys
// and values and requiring the outputs that must not see them to stay
// exactly the same.
func testAttentionMasks(e *env) {
	const D = 6
	total := int(attnOffsets[len(attnOffsets)-1])
	seqs := kernels.Seqs{Offsets: attnOffsets}
	run := func(a kernels.Attn, q, k, v []float64) []float64 {
		out, lse := e.d.Alloc(total*a.Heads*D), e.d.Alloc(total*a.Heads)
		e.d.AttentionForward(out, lse, e.up(q), e.up(k), e.up(v), seqs, a)
		return e.down(out)
	}
	// rowsOf returns the out values of rows [r0, r1) and heads [h0, h1).
	rowsOf := func(x []float64, a kernels.Attn, r0, r1, h0, h1 int) []float64 {
		var s []float64
		for r := r0; r < r1; r++ {
			s = append(s, x[(r*a.Heads+h0)*D:(r*a.Heads+h1)*D]...)
		}
		return s
	}
	perturb := func(x []float64, a kernels.Attn, r0, r1, g0, g1 int) []float64 {
		y := append([]float64{}, x...)
		for r := r0; r < r1; r++ {
			for i := (r*a.KVHeads + g0) * D; i < (r*a.KVHeads+g1)*D; i++ {
				y[i] += 1 + e.rng.Float64()
			}
		}
		return y
	}

	for _, causal := range []bool{true, false} {
		a := attnShape(causal, 4, 2, D)
		q, k, v := e.randn(total*4*D), e.randn(total*2*D), e.randn(total*2*D)
		base := run(a, q, k, v)

		// Segments: new keys and values for the last sequence (rows 6..16)
		// leave rows 0..5 as they were, and the converse.
		got := run(a, q, perturb(k, a, 6, 17, 0, 2), perturb(v, a, 6, 17, 0, 2))
		e.checkSame(fmt.Sprintf("causal=%v: rows of sequences 0, 1 after changing sequence 3's k, v", causal),
			rowsOf(got, a, 0, 6, 0, 4), rowsOf(base, a, 0, 6, 0, 4))
		got = run(a, q, perturb(k, a, 0, 5, 0, 2), perturb(v, a, 0, 5, 0, 2))
		e.checkSame(fmt.Sprintf("causal=%v: rows of sequences 1, 3 after changing sequence 0's k, v", causal),
			rowsOf(got, a, 5, 17, 0, 4), rowsOf(base, a, 5, 17, 0, 4))

		// Grouped-query mapping: kv head 1 serves query heads 2 and 3 only.
		got = run(a, q, perturb(k, a, 0, 17, 1, 2), perturb(v, a, 0, 17, 1, 2))
		e.checkSame(fmt.Sprintf("causal=%v: heads 0, 1 after changing kv head 1", causal),
			rowsOf(got, a, 0, 17, 0, 2), rowsOf(base, a, 0, 17, 0, 2))
		if same(rowsOf(got, a, 0, 17, 2, 4), rowsOf(base, a, 0, 17, 2, 4)) {
			e.Errorf("causal=%v: heads 2, 3 did not change with kv head 1", causal)
		}

		// Causality: changing the last row of sequence 3 (row 16) changes
		// only row 16 when causal, every row of the sequence otherwise.
		got = run(a, q, perturb(k, a, 16, 17, 0, 2), perturb(v, a, 16, 17, 0, 2))
		if causal {
			e.checkSame("causal: rows 6..15 after changing row 16's k, v", rowsOf(got, a, 6, 16, 0, 4), rowsOf(base, a, 6, 16, 0, 4))
		} else if same(rowsOf(got, a, 6, 7, 0, 4), rowsOf(base, a, 6, 7, 0, 4)) {
			e.Errorf("bidirectional: row 6 did not change with row 16's k, v")
		}
	}
}

func same(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
