package cpu

import (
	"fmt"
	"math"

	"earl/kernels"
)

// TokenLogProbs: h (n, c), w (v, c), targets (n) -> logp (n), entropy (n),
// lse (n), chunk rows at a time through the scratch logits (chunk, v):
//
//	z       = h_chunk @ w^T / temperature     (sgemm, alpha = 1/temperature)
//	lse     = log(sum_j exp(z_j))             (cached for the backward)
//	logp    = z[target] - lse
//	entropy = -sum_j p_j log p_j = lse - sum_j p_j z_j,  p = exp(z - lse)
//
// Per row the exponentials are float32 and their sums float64 (the
// vocabulary has 150k entries), and the entropy is taken about the row's
// maximum m, log(S) - sum_j e_j (z_j - m) / S with e_j = exp(z_j - m) and
// S = sum_j e_j, which has no cancellation between lse and the mean logit.
func (d *Device) TokenLogProbs(logp, entropy, lse, logits, h, w kernels.T, targets kernels.I, n, c, v, chunk int, temperature float32) {
	const op = "TokenLogProbs"
	if n == 0 {
		return
	}
	chunk = logitChunk(chunk, n, temperature, op)
	lp, ent, ls := need(logp, n, op, "logp"), need(entropy, n, op, "entropy"), need(lse, n, op, "lse")
	z, hs, ws := need(logits, chunk*v, op, "logits"), need(h, n*c, op, "h"), need(w, v*c, op, "w")
	tg := rowIndex(targets, n, v, op, "targets")
	j := &d.jobs.lsm
	for r0 := 0; r0 < n; r0 += chunk {
		m := min(chunk, n-r0)
		*j = logSoftmaxJob{z: z, h: hs[r0*c:], w: ws, c: c, v: v, temperature: temperature,
			targets: tg[r0:], logp: lp[r0:], entropy: ent[r0:], lse: ls[r0:]}
		d.pool.do(m, logitGrain(c, v), j)
	}
}

// logitGrain is the fewest rows worth a goroutine: each row is an sgemm row
// of c*v multiply-adds and a softmax over v.
func logitGrain(c, v int) int {
	return max(1, (1<<19)/(c*v+15*v))
}

// logitChunk checks the chunk and temperature, and returns the rows per
// chunk (no more than n).
func logitChunk(chunk, n int, temperature float32, op string) int {
	if chunk < 1 || !(temperature > 0) {
		panic(fmt.Sprintf("cpu: %s: chunk %d, temperature %v: need chunk >= 1 and temperature > 0", op, chunk, temperature))
	}
	return min(chunk, n)
}

// chunkLogits sets z (m, v) = h (m, c) @ w (v, c)^T / temperature, one
// single-threaded sgemm for one goroutine's rows. The backward splits a
// chunk the same way, so it gets the same bits.
func chunkLogits(z, h, w []float32, m, c, v int, temperature float32) {
	if c == 0 {
		clear(z[:m*v])
		return
	}
	sgemm(false, true, m, v, c, 1/temperature, h, c, w, c, 0, z, v)
}

// logSoftmaxJob does rows [lo, hi) of a chunk: their logits, then each
// row's softmax while the rows are in cache.
type logSoftmaxJob struct {
	z, h, w            []float32 // z (rows, v), h (rows, c), w (v, c)
	c, v               int
	temperature        float32
	targets            []int32
	logp, entropy, lse []float32
}

func (j *logSoftmaxJob) run(_, lo, hi int) {
	chunkLogits(j.z[lo*j.v:], j.h[lo*j.c:], j.w, hi-lo, j.c, j.v, j.temperature)
	for i := lo; i < hi; i++ {
		z := j.z[i*j.v : (i+1)*j.v]
		m := maxf(z)
		var s, sz float64 // sum e_j, sum e_j (z_j - m)
		for _, x := range z {
			e := float64(expf(x - m))
			s += e
			sz += e * float64(x-m)
		}
		logS := math.Log(s)
		l := m + float32(logS)
		j.lse[i] = l
		j.logp[i] = z[j.targets[i]] - l
		j.entropy[i] = float32(logS - sz/s)
	}
}

// TokenLogProbsBackward accumulates dh (n, c) and dw (v, c) (either may be
// empty) for the loss sum_i dlogp_i * logp_i + dentropy_i * entropy_i
// (either of dlogp, dentropy may be empty: zero), recomputing each chunk's
// logits. With p = exp(z - lse) and H the row's entropy:
//
//	d logp / dz_j    = onehot_j - p_j
//	d H / dz_j       = -p_j (log p_j + H)
//	dz_j             = dlogp * (onehot_j - p_j) - dentropy * p_j * (z_j - lse + H)
//	dh_chunk        += dz @ w / temperature
//	dw              += dz^T @ h_chunk / temperature
//
// H is recomputed from z and lse (one more pass over the row) when
// dentropy is given.
func (d *Device) TokenLogProbsBackward(dh, dw, logits, dlogp, dentropy, h, w, lse kernels.T, targets kernels.I, n, c, v, chunk int, temperature float32) {
	const op = "TokenLogProbsBackward"
	dhs, dws := opt(dh, n*c, op, "dh"), opt(dw, v*c, op, "dw")
	dl, de := opt(dlogp, n, op, "dlogp"), opt(dentropy, n, op, "dentropy")
	if n == 0 || c == 0 || (dhs == nil && dws == nil) || (dl == nil && de == nil) {
		return
	}
	chunk = logitChunk(chunk, n, temperature, op)
	z, hs, ws := need(logits, chunk*v, op, "logits"), need(h, n*c, op, "h"), need(w, v*c, op, "w")
	ls := need(lse, n, op, "lse")
	tg := rowIndex(targets, n, v, op, "targets")
	j := &d.jobs.lsmBack
	for r0 := 0; r0 < n; r0 += chunk {
		m := min(chunk, n-r0)
		*j = logSoftmaxBackJob{z: z, h: hs[r0*c:], w: ws, c: c, v: v, temperature: temperature,
			targets: tg[r0:], lse: ls[r0:]}
		if dl != nil {
			j.dlogp = dl[r0:]
		}
		if de != nil {
			j.dentropy = de[r0:]
		}
		d.pool.do(m, logitGrain(c, v), j)
		if dhs != nil {
			d.gemm(false, false, m, c, v, 1/temperature, z, v, ws, c, 1, dhs[r0*c:], c, nil)
		}
		if dws != nil {
			d.gemm(true, false, v, c, m, 1/temperature, z, v, hs[r0*c:], c, 1, dws, c, nil)
		}
	}
}

// logSoftmaxBackJob recomputes rows [lo, hi) of a chunk's logits and
// replaces each by dz.
type logSoftmaxBackJob struct {
	z, h, w              []float32
	c, v                 int
	temperature          float32
	targets              []int32
	lse, dlogp, dentropy []float32 // dlogp, dentropy nil for zero
}

func (j *logSoftmaxBackJob) run(_, lo, hi int) {
	chunkLogits(j.z[lo*j.v:], j.h[lo*j.c:], j.w, hi-lo, j.c, j.v, j.temperature)
	for i := lo; i < hi; i++ {
		z, l := j.z[i*j.v:(i+1)*j.v], j.lse[i]
		var gl, ge float32
		if j.dlogp != nil {
			gl = j.dlogp[i]
		}
		if j.dentropy != nil {
			ge = j.dentropy[i]
		}
		var H float32
		if ge != 0 {
			var s float64 // -sum p_j log p_j
			for _, x := range z {
				s -= float64(expf(x-l)) * float64(x-l)
			}
			H = float32(s)
		}
		for k, x := range z {
			p := expf(x - l)
			z[k] = -gl*p - ge*p*((x-l)+H)
		}
		z[j.targets[i]] += gl
	}
}
