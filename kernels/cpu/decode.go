package cpu

import (
	"fmt"

	"earl/kernels"
)

// The KV cache: kc and vc are (slots, maxLen, kvHeads, headDim); a slot is
// one sequence being generated, a position one token of it.

// cacheSlots checks kc and vc and returns the number of slots they hold.
func cacheSlots(kc, vc kernels.T, kd, maxLen int, op string) int {
	if kd <= 0 || maxLen <= 0 {
		panic(fmt.Sprintf("cpu: %s: kv row of %d values, max length %d", op, kd, maxLen))
	}
	if kc.N != vc.N || kc.N%(maxLen*kd) != 0 {
		panic(fmt.Sprintf("cpu: %s: caches of %d and %d values, not whole slots of %d x %d", op, kc.N, vc.N, maxLen, kd))
	}
	return kc.N / (maxLen * kd)
}

// CacheWrite stores row i of k and v (n, kvHeads, headDim) at position
// pos[i] of slot slot[i].
func (d *Device) CacheWrite(kc, vc, k, v kernels.T, slot, pos kernels.I, n, kvHeads, headDim, maxLen int) {
	const op = "CacheWrite"
	if n == 0 {
		return
	}
	kd := kvHeads * headDim
	slots := cacheSlots(kc, vc, kd, maxLen, op)
	kcs, vcs := Floats(kc), Floats(vc)
	ks, vs := need(k, n*kd, op, "k"), need(v, n*kd, op, "v")
	sl, ps := needInts(slot, n, op, "slot"), needInts(pos, n, op, "pos")
	for i := range n {
		s, p := int(sl[i]), int(ps[i])
		if s < 0 || s >= slots || p < 0 || p >= maxLen {
			panic(fmt.Sprintf("cpu: %s: row %d goes to slot %d position %d of %d slots x %d", op, i, s, p, slots, maxLen))
		}
		at := (s*maxLen + p) * kd
		copy(kcs[at:at+kd], ks[i*kd:(i+1)*kd])
		copy(vcs[at:at+kd], vs[i*kd:(i+1)*kd])
	}
}

// CacheCopy copies positions [0, n) of slot src to slot dst.
func (d *Device) CacheCopy(kc, vc kernels.T, src, dst, n, kvHeads, headDim, maxLen int) {
	const op = "CacheCopy"
	kd := kvHeads * headDim
	slots := cacheSlots(kc, vc, kd, maxLen, op)
	if src < 0 || src >= slots || dst < 0 || dst >= slots || n < 0 || n > maxLen {
		panic(fmt.Sprintf("cpu: %s: %d positions from slot %d to %d of %d slots x %d", op, n, src, dst, slots, maxLen))
	}
	if src == dst || n == 0 {
		return
	}
	kcs, vcs := Floats(kc), Floats(vc)
	from, to := src*maxLen*kd, dst*maxLen*kd
	copy(kcs[to:to+n*kd], kcs[from:from+n*kd])
	copy(vcs[to:to+n*kd], vcs[from:from+n*kd])
}

// AttentionDecode: q (n, H, D) holds one new token per row; row i attends
// to positions [0, lens[i]) of slot slot[i] (everything before and
// including itself, once CacheWrite has stored it), head h reading kv head
// h / (H / KVH). out (n, H, D) is AttentionForward's formula for that one
// row; Causal is implied. A row with lens[i] == 0 gets zeros.
//
// Each (row, head) is a dot product per position and a weighted sum of
// value rows: plain Go, split among goroutines by (row, head), each
// goroutine with maxLen scores of scratch.
func (d *Device) AttentionDecode(out, q, kc, vc kernels.T, slot, lens kernels.I, n int, a kernels.Attn, maxLen int) {
	const op = "AttentionDecode"
	if n == 0 {
		return
	}
	qd, kd := attnWidths(a, op)
	slots := cacheSlots(kc, vc, kd, maxLen, op)
	sl, ls := needInts(slot, n, op, "slot"), needInts(lens, n, op, "lens")
	for i := range n {
		if sl[i] < 0 || int(sl[i]) >= slots || ls[i] < 0 || int(ls[i]) > maxLen {
			panic(fmt.Sprintf("cpu: %s: row %d reads %d positions of slot %d of %d slots x %d", op, i, ls[i], sl[i], slots, maxLen))
		}
	}
	j := &d.jobs.decode
	*j = decodeJob{
		out: need(out, n*qd, op, "out"), q: need(q, n*qd, op, "q"), kc: Floats(kc), vc: Floats(vc),
		slot: sl, lens: ls, scores: d.scratch(d.pool.parts * maxLen), a: a, maxLen: maxLen,
	}
	d.pool.do(n*a.Heads, grain(4*maxLen*a.HeadDim), j)
}

// decodeJob's items are (row, head) pairs, row-major.
type decodeJob struct {
	out, q, kc, vc []float32
	slot, lens     []int32
	scores         []float32 // maxLen per part
	a              kernels.Attn
	maxLen         int
}

func (j *decodeJob) run(part, lo, hi int) {
	D, H := j.a.HeadDim, j.a.Heads
	kd, group := j.a.KVHeads*D, H/j.a.KVHeads
	for it := lo; it < hi; it++ {
		i, h := it/H, it%H
		q, out := j.q[it*D:(it+1)*D], j.out[it*D:(it+1)*D]
		L := int(j.lens[i])
		base := int(j.slot[i])*j.maxLen*kd + (h/group)*D // position 0 of this kv head
		s := j.scores[part*j.maxLen : part*j.maxLen+L]
		for p := range s {
			s[p] = j.a.Scale * dot(q, j.kc[base+p*kd:base+p*kd+D])
		}
		m := maxf(s)
		var sum float32
		for p := range s {
			s[p] = expf(s[p] - m)
			sum += s[p]
		}
		clear(out)
		if L == 0 {
			continue
		}
		inv := 1 / sum
		for p := range s {
			axpy(out, s[p]*inv, j.vc[base+p*kd:base+p*kd+D])
		}
	}
}
