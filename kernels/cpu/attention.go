package cpu

import (
	"fmt"
	"math"

	"earl/kernels"
)

// attnBlock is the number of query rows whose scores are held at once:
// scratch is attnBlock x (longest sequence) values per goroutine, never
// (Total, Total). With causal attention a block only multiplies the keys
// up to its last row, which skips most of the masked triangle.
//
// The work items are (sequence, head) pairs forward and (sequence, kv
// head) pairs backward, each run start to finish by one goroutine: for each
// block of rows, the scores are one single-threaded sgemm, the softmax is
// Go, and the product with the values another sgemm. Items are claimed one
// at a time (sequences differ in length) and write disjoint values, so the
// results do not depend on which goroutine ran what.
const attnBlock = 128

// attnDims checks an attention call's shapes and returns its row widths:
// qd = Heads * HeadDim for q and out, kd = KVHeads * HeadDim for k and v.
func attnDims(seqs kernels.Seqs, a kernels.Attn, op string) (total, qd, kd int) {
	qd, kd = attnWidths(a, op)
	if len(seqs.Offsets) == 0 || seqs.Offsets[0] != 0 {
		panic(fmt.Sprintf("cpu: %s: sequence offsets must start at 0", op))
	}
	for s := 0; s < seqs.Count(); s++ {
		if seqs.Offsets[s+1] < seqs.Offsets[s] {
			panic(fmt.Sprintf("cpu: %s: sequence offsets decrease at %d", op, s+1))
		}
	}
	return seqs.Total(), qd, kd
}

// attnWidths checks the head counts and returns the row widths.
func attnWidths(a kernels.Attn, op string) (qd, kd int) {
	if a.Heads <= 0 || a.KVHeads <= 0 || a.HeadDim <= 0 || a.Heads%a.KVHeads != 0 {
		panic(fmt.Sprintf("cpu: %s: %d heads, %d kv heads, head size %d: need positive sizes and heads a multiple of kv heads",
			op, a.Heads, a.KVHeads, a.HeadDim))
	}
	return a.Heads * a.HeadDim, a.KVHeads * a.HeadDim
}

// AttentionForward: q (total, H, D), k and v (total, KVH, D) -> out (total,
// H, D) and lse (total, H). For query row i of a sequence and head h
// (reading kv head h / (H / KVH)), over the keys j of the same sequence
// (j <= i when causal):
//
//	s_j = scale * q_i . k_j
//	lse_i = log(sum_j exp(s_j))          (cached for the backward)
//	out_i = sum_j exp(s_j - lse_i) v_j
//
// The softmax is float32: max, exponentials, their sum.
func (d *Device) AttentionForward(out, lse, q, k, v kernels.T, seqs kernels.Seqs, a kernels.Attn) {
	const op = "AttentionForward"
	total, qd, kd := attnDims(seqs, a, op)
	block := attnBlock * seqs.MaxLen()
	j := &d.jobs.attn
	*j = attnJob{
		out: need(out, total*qd, op, "out"), lse: need(lse, total*a.Heads, op, "lse"),
		q: need(q, total*qd, op, "q"), k: need(k, total*kd, op, "k"), v: need(v, total*kd, op, "v"),
		offs: seqs.Offsets, a: a, qd: qd, kd: kd, block: block, ws: d.scratch(d.pool.parts * (block + attnBlock)),
	}
	d.pool.each(seqs.Count()*a.Heads, j)
}

// attnJob is one attention call's arguments, forward or backward.
type attnJob struct {
	out, lse, q, k, v []float32
	dq, dk, dv, dout  []float32 // backward only; each may be nil
	offs              []int32
	a                 kernels.Attn
	qd, kd, block     int
	ws                []float32 // per part: block + attnBlock values forward, 2 * block backward
	backward          bool
}

func (j *attnJob) run(part, lo, hi int) {
	for it := lo; it < hi; it++ {
		if j.backward {
			j.backwardItem(part, it)
		} else {
			j.forwardItem(part, it)
		}
	}
}

// forwardItem does head h of sequence si (item si*H + h).
func (j *attnJob) forwardItem(part, it int) {
	a := j.a
	si, h := it/a.Heads, it%a.Heads
	start, L := int(j.offs[si]), int(j.offs[si+1]-j.offs[si])
	D, qd, kd := a.HeadDim, j.qd, j.kd
	hq, hk := start*qd+h*D, start*kd+h/(a.Heads/a.KVHeads)*D // this head's row 0 in q, out; in k, v
	ws := j.ws[part*(j.block+attnBlock) : (part+1)*(j.block+attnBlock)]
	s, inv := ws[:j.block], ws[j.block:] // scores; 1 / sum of each row's exponentials
	for r0 := 0; r0 < L; r0 += attnBlock {
		rows, keys := blockShape(r0, L, a.Causal)
		bq := hq + r0*qd // the block's first row in q and out
		// s (rows, keys) = scale * q[r0:r1] @ k[0:keys]^T
		sgemm(false, true, rows, keys, D, a.Scale, j.q[bq:], qd, j.k[hk:], kd, 0, s, keys)
		for i := range rows {
			p, nk := s[i*keys:(i+1)*keys], visible(r0+i, keys, a.Causal)
			m := maxf(p[:nk])
			var sum float32
			for c := range p[:nk] {
				e := expf(p[c] - m)
				p[c] = e
				sum += e
			}
			clear(p[nk:])
			inv[i] = 1 / sum
			j.lse[(start+r0+i)*a.Heads+h] = m + float32(math.Log(float64(sum)))
		}
		// out[r0:r1] = exp(s - max) (rows, keys) @ v[0:keys], then each row
		// divided by its sum: D divisions a row instead of keys.
		sgemm(false, false, rows, D, keys, 1, s, keys, j.v[hk:], kd, 0, j.out[bq:], qd)
		for i := range rows {
			o := j.out[bq+i*qd : bq+i*qd+D]
			for c := range o {
				o[c] *= inv[i]
			}
		}
	}
}

// blockShape is the number of rows of the block starting at row r0 of a
// sequence of length L, and the number of keys they see together.
func blockShape(r0, L int, causal bool) (rows, keys int) {
	r1 := min(r0+attnBlock, L)
	if causal {
		return r1 - r0, r1
	}
	return r1 - r0, L
}

// visible is the number of keys row i of a sequence sees, of keys.
func visible(i, keys int, causal bool) int {
	if causal {
		return i + 1
	}
	return keys
}

// AttentionBackward accumulates dq, dk, dv (any may be empty) from dout,
// recomputing the probabilities from the cached lse block by block (the
// flash-attention backward). For each block of query rows, with
// P = exp(scale * Q K^T - lse) and D_i = dout_i . out_i:
//
//	dV += P^T dout
//	dS  = P * (dout V^T - D_i)            (elementwise, row i)
//	dQ += scale * dS K
//	dK += scale * dS^T Q
//
// An item is a (sequence, kv head): its query heads add into its dk, dv
// one after another, so no two goroutines write the same gradient.
func (d *Device) AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v kernels.T, seqs kernels.Seqs, a kernels.Attn) {
	const op = "AttentionBackward"
	total, qd, kd := attnDims(seqs, a, op)
	dqs, dks, dvs := opt(dq, total*qd, op, "dq"), opt(dk, total*kd, op, "dk"), opt(dv, total*kd, op, "dv")
	if total == 0 || (dqs == nil && dks == nil && dvs == nil) {
		return
	}
	block := attnBlock * seqs.MaxLen()
	j := &d.jobs.attn
	*j = attnJob{
		dq: dqs, dk: dks, dv: dvs, dout: need(dout, total*qd, op, "dout"),
		out: need(out, total*qd, op, "out"), lse: need(lse, total*a.Heads, op, "lse"),
		q: need(q, total*qd, op, "q"), k: need(k, total*kd, op, "k"), v: need(v, total*kd, op, "v"),
		offs: seqs.Offsets, a: a, qd: qd, kd: kd, block: block, ws: d.scratch(d.pool.parts * 2 * block),
		backward: true,
	}
	d.pool.each(seqs.Count()*a.KVHeads, j)
}

// backwardItem does kv head g of sequence si (item si*KVH + g).
func (j *attnJob) backwardItem(part, it int) {
	a := j.a
	si, g := it/a.KVHeads, it%a.KVHeads
	start, L := int(j.offs[si]), int(j.offs[si+1]-j.offs[si])
	D, qd, kd, group := a.HeadDim, j.qd, j.kd, a.Heads/a.KVHeads
	hk := start*kd + g*D // row 0 of this kv head in k, v, dk, dv
	ws := j.ws[part*2*j.block : (part+1)*2*j.block]
	p, dp := ws[:j.block], ws[j.block:]
	for h := g * group; h < (g+1)*group; h++ {
		for r0 := 0; r0 < L; r0 += attnBlock {
			rows, keys := blockShape(r0, L, a.Causal)
			bq := (start+r0)*qd + h*D // the block's first row in q, out, dout, dq
			sgemm(false, true, rows, keys, D, a.Scale, j.q[bq:], qd, j.k[hk:], kd, 0, p, keys)
			for i := range rows {
				pi, nk := p[i*keys:(i+1)*keys], visible(r0+i, keys, a.Causal)
				l := j.lse[(start+r0+i)*a.Heads+h]
				for c := range pi[:nk] {
					pi[c] = expf(pi[c] - l)
				}
				clear(pi[nk:])
			}
			if j.dv != nil { // dv[0:keys] += p^T @ dout[r0:r1]
				sgemm(true, false, keys, D, rows, 1, p, keys, j.dout[bq:], qd, 1, j.dv[hk:], kd)
			}
			if j.dq == nil && j.dk == nil {
				continue
			}
			// dp (rows, keys) = dout[r0:r1] @ v[0:keys]^T, then dS in place.
			sgemm(false, true, rows, keys, D, 1, j.dout[bq:], qd, j.v[hk:], kd, 0, dp, keys)
			for i := range rows {
				o := bq + i*qd
				di := dot(j.dout[o:o+D], j.out[o:o+D])
				pi, dpi, nk := p[i*keys:(i+1)*keys], dp[i*keys:(i+1)*keys], visible(r0+i, keys, a.Causal)
				for c := range dpi[:nk] {
					dpi[c] = pi[c] * (dpi[c] - di)
				}
				clear(dpi[nk:])
			}
			if j.dq != nil { // dq[r0:r1] += scale * dS @ k[0:keys]
				sgemm(false, false, rows, D, keys, a.Scale, dp, keys, j.k[hk:], kd, 1, j.dq[bq:], qd)
			}
			if j.dk != nil { // dk[0:keys] += scale * dS^T @ q[r0:r1]
				sgemm(true, false, keys, D, rows, a.Scale, dp, keys, j.q[bq:], qd, 1, j.dk[hk:], kd)
			}
		}
	}
}
