package kerneltest

import (
	"fmt"

	"earl/kernels"
)

// testDecode checks the KV cache against AttentionForward: a causal
// prefix's last row is what decoding that row over the cache gives.
func testDecode(e *env) {
	for _, c := range []struct{ heads, kvHeads int }{{3, 1}, {4, 2}} {
		const D, L, slots, maxLen = 6, 12, 3, 16
		a := attnShape(true, c.heads, c.kvHeads, D)
		qd, kd := c.heads*D, c.kvHeads*D
		what := fmt.Sprintf("%d/%d heads", c.heads, c.kvHeads)

		// One sequence of L tokens through the full forward.
		q, k, v := e.randn(L*qd), e.randn(L*kd), e.randn(L*kd)
		tq, tk, tv := e.up(q), e.up(k), e.up(v)
		full, lse := e.d.Alloc(L*qd), e.d.Alloc(L*c.heads)
		e.d.AttentionForward(full, lse, tq, tk, tv, kernels.Seqs{Offsets: []int32{0, L}}, a)
		fullOut := e.down(full)

		// Caches start with junk: only what was written may be read.
		junk := e.randn(slots * maxLen * kd)
		kc, vc := e.up(junk), e.up(junk)

		// Prefill slot 0 with tokens 0..L-2, fork it into slot 2, and
		// write token L-1 into slot 2 only.
		pre := L - 1
		e.d.CacheWrite(kc, vc, tk.View(0, pre*kd), tv.View(0, pre*kd),
			e.upInts(make([]int32, pre)), e.upInts(iota(0, pre)), pre, c.kvHeads, D, maxLen)
		e.d.CacheCopy(kc, vc, 0, 2, pre, c.kvHeads, D, maxLen)

		// The caches hold exactly what was written, and CacheCopy copied
		// only the first pre positions.
		wantK, wantV := append([]float64{}, junk...), append([]float64{}, junk...)
		for _, s := range []int{0, 2} {
			copy(wantK[s*maxLen*kd:(s*maxLen+pre)*kd], k[:pre*kd])
			copy(wantV[s*maxLen*kd:(s*maxLen+pre)*kd], v[:pre*kd])
		}
		e.checkSame("CacheWrite then CacheCopy: k cache, "+what, e.down(kc), wantK)
		e.checkSame("CacheWrite then CacheCopy: v cache, "+what, e.down(vc), wantV)

		e.d.CacheWrite(kc, vc, tk.View(pre*kd, kd), tv.View(pre*kd, kd),
			e.upInts([]int32{2}), e.upInts([]int32{int32(pre)}), 1, c.kvHeads, D, maxLen)
		copy(wantK[(2*maxLen+pre)*kd:(2*maxLen+pre+1)*kd], k[pre*kd:])
		copy(wantV[(2*maxLen+pre)*kd:(2*maxLen+pre+1)*kd], v[pre*kd:])
		e.checkSame("CacheWrite of one row: k cache, "+what, e.down(kc), wantK)
		e.checkSame("CacheWrite of one row: v cache, "+what, e.down(vc), wantV)

		// Row 0 decodes token L-1 over slot 2 (L positions), row 1 token
		// L-2 over slot 0 (L-1 positions), row 2 token 0 over slot 0 (1).
		dq := append(append(append([]float64{}, q[(L-1)*qd:L*qd]...), q[(L-2)*qd:(L-1)*qd]...), q[:qd]...)
		out := e.d.Alloc(3 * qd)
		e.d.AttentionDecode(out, e.up(dq), kc, vc, e.upInts([]int32{2, 0, 0}), e.upInts([]int32{L, L - 1, 1}), 3, a, maxLen)
		want := append(append(append([]float64{}, fullOut[(L-1)*qd:L*qd]...), fullOut[(L-2)*qd:(L-1)*qd]...), fullOut[:qd]...)
		e.checkClose("AttentionDecode vs the last rows of AttentionForward, "+what, e.down(out), want, tolFwd)
	}
}

// iota returns n, n+1, ..., n+count-1.
func iota(n, count int) []int32 {
	s := make([]int32, count)
	for i := range s {
		s[i] = int32(n + i)
	}
	return s
}
