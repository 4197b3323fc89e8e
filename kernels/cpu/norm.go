package cpu

import (
	"math"

	"earl/kernels"
)

// The normalisations reduce each row in float64 (exact enough that the
// float32 result is the correctly rounded statistic for any C a model has)
// and cache rstd = 1 / sqrt(var + eps) in float32 for the backward. The
// variance is the biased one (divide by C), eps inside the square root,
// as in PyTorch and Hugging Face.

// RMSNormForward: x (n, c), w (c) -> out (n, c) = (x * rstd) * w with
// rstd (n) = 1 / sqrt(mean(x^2) + eps), cached. The order of the products
// is Hugging Face Qwen2RMSNorm's.
func (d *Device) RMSNormForward(out, rstd, x, w kernels.T, n, c int, eps float32) {
	const op = "RMSNormForward"
	j := &d.jobs.rmsFwd
	*j = rmsFwdJob{
		out: need(out, n*c, op, "out"), rstd: need(rstd, n, op, "rstd"),
		x: need(x, n*c, op, "x"), w: need(w, c, op, "w"), c: c, eps: eps,
	}
	d.pool.do(n, grain(2*c), j)
}

type rmsFwdJob struct {
	out, rstd, x, w []float32
	c               int
	eps             float32
}

func (j *rmsFwdJob) run(_, lo, hi int) {
	c := j.c
	for i := lo; i < hi; i++ {
		x, out := j.x[i*c:(i+1)*c], j.out[i*c:(i+1)*c]
		var ss float64
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
		r := float32(1 / math.Sqrt(ss/float64(c)+float64(j.eps)))
		j.rstd[i] = r
		for k, v := range x {
			out[k] = v * r * j.w[k]
		}
	}
}

// RMSNormBackward accumulates, for out = x * r * w with r = rstd:
//
//	dx_k += r * w_k * dout_k - r^3 / c * x_k * sum_j(dout_j * w_j * x_j)
//	dw_k += sum over rows of dout_k * x_k * r
//
// dx rows are independent and split among goroutines; dw is a sum over
// rows, so it is a second pass split by columns, each column summed in row
// order.
func (d *Device) RMSNormBackward(dx, dw, dout, x, w, rstd kernels.T, n, c int) {
	const op = "RMSNormBackward"
	dxs, dws := opt(dx, n*c, op, "dx"), opt(dw, c, op, "dw")
	if n == 0 || c == 0 || (dxs == nil && dws == nil) {
		return
	}
	g, xs, r := need(dout, n*c, op, "dout"), need(x, n*c, op, "x"), need(rstd, n, op, "rstd")
	if dxs != nil {
		j := &d.jobs.rmsBack
		*j = rmsBackJob{dx: dxs, dout: g, x: xs, w: need(w, c, op, "w"), rstd: r, c: c}
		d.pool.do(n, grain(4*c), j)
	}
	if dws != nil {
		j := &d.jobs.rmsDW
		*j = rmsDWJob{dw: dws, dout: g, x: xs, rstd: r, n: n, c: c}
		d.pool.do(c, grain(2*n), j)
	}
}

type rmsBackJob struct {
	dx, dout, x, w, rstd []float32
	c                    int
}

func (j *rmsBackJob) run(_, lo, hi int) {
	c := j.c
	for i := lo; i < hi; i++ {
		g, x, dx := j.dout[i*c:(i+1)*c], j.x[i*c:(i+1)*c], j.dx[i*c:(i+1)*c]
		var s float64 // sum_j dout_j * w_j * x_j
		for k, v := range x {
			s += float64(g[k]) * float64(j.w[k]) * float64(v)
		}
		r := j.rstd[i]
		coef := float32(float64(r) * float64(r) * float64(r) / float64(c) * s)
		for k, v := range x {
			dx[k] += r*j.w[k]*g[k] - coef*v
		}
	}
}

type rmsDWJob struct {
	dw, dout, x, rstd []float32
	n, c              int
}

// run sums columns [lo, hi) of dw.
func (j *rmsDWJob) run(_, lo, hi int) {
	dw := j.dw[lo:hi]
	for i := range j.n {
		g, x, r := j.dout[i*j.c+lo:i*j.c+hi], j.x[i*j.c+lo:i*j.c+hi], j.rstd[i]
		for k := range dw {
			dw[k] += g[k] * x[k] * r
		}
	}
}

// LayerNormForward: x (n, c), w and b (c) -> out (n, c) = (x - mean) *
// rstd * w + b, caching mean (n) and rstd (n). b may be empty for none.
func (d *Device) LayerNormForward(out, mean, rstd, x, w, b kernels.T, n, c int, eps float32) {
	const op = "LayerNormForward"
	j := &d.jobs.lnFwd
	*j = lnFwdJob{
		out: need(out, n*c, op, "out"), mean: need(mean, n, op, "mean"), rstd: need(rstd, n, op, "rstd"),
		x: need(x, n*c, op, "x"), w: need(w, c, op, "w"), b: opt(b, c, op, "b"), c: c, eps: eps,
	}
	d.pool.do(n, grain(3*c), j)
}

type lnFwdJob struct {
	out, mean, rstd, x, w, b []float32
	c                        int
	eps                      float32
}

func (j *lnFwdJob) run(_, lo, hi int) {
	c := j.c
	for i := lo; i < hi; i++ {
		x, out := j.x[i*c:(i+1)*c], j.out[i*c:(i+1)*c]
		var s float64
		for _, v := range x {
			s += float64(v)
		}
		m := s / float64(c)
		var ss float64 // two passes: no cancellation when |mean| >> std
		for _, v := range x {
			ss += (float64(v) - m) * (float64(v) - m)
		}
		r := 1 / math.Sqrt(ss/float64(c)+float64(j.eps))
		j.mean[i], j.rstd[i] = float32(m), float32(r)
		for k, v := range x { // x - mean in float64: no rounding of the mean
			out[k] = float32((float64(v)-m)*r) * j.w[k]
		}
		if j.b != nil {
			for k := range out {
				out[k] += j.b[k]
			}
		}
	}
}

// LayerNormBackward accumulates, with xhat = (x - mean) * rstd and
// g = dout * w:
//
//	dx += rstd * (g - mean(g) - xhat * mean(g * xhat))
//	dw += sum over rows of dout * xhat
//	db += sum over rows of dout
//
// split as RMSNormBackward is; any of dx, dw, db may be empty.
func (d *Device) LayerNormBackward(dx, dw, db, dout, x, w, mean, rstd kernels.T, n, c int) {
	const op = "LayerNormBackward"
	dxs, dws, dbs := opt(dx, n*c, op, "dx"), opt(dw, c, op, "dw"), opt(db, c, op, "db")
	if n == 0 || c == 0 || (dxs == nil && dws == nil && dbs == nil) {
		return
	}
	g, xs := need(dout, n*c, op, "dout"), need(x, n*c, op, "x")
	m, r := need(mean, n, op, "mean"), need(rstd, n, op, "rstd")
	if dxs != nil {
		j := &d.jobs.lnBack
		*j = lnBackJob{dx: dxs, dout: g, x: xs, w: need(w, c, op, "w"), mean: m, rstd: r, c: c}
		d.pool.do(n, grain(6*c), j)
	}
	if dws != nil || dbs != nil {
		j := &d.jobs.lnDW
		*j = lnDWJob{dw: dws, db: dbs, dout: g, x: xs, mean: m, rstd: r, n: n, c: c}
		d.pool.do(c, grain(3*n), j)
	}
}

type lnBackJob struct {
	dx, dout, x, w, mean, rstd []float32
	c                          int
}

func (j *lnBackJob) run(_, lo, hi int) {
	c := j.c
	for i := lo; i < hi; i++ {
		g, x, dx := j.dout[i*c:(i+1)*c], j.x[i*c:(i+1)*c], j.dx[i*c:(i+1)*c]
		m, r := j.mean[i], j.rstd[i]
		var sg, sgx float64 // sum(g), sum(g * xhat)
		for k, v := range x {
			gk := float64(g[k]) * float64(j.w[k])
			sg += gk
			sgx += gk * float64((v-m)*r)
		}
		mg, mgx := float32(sg/float64(c)), float32(sgx/float64(c))
		for k, v := range x {
			dx[k] += r * (g[k]*j.w[k] - mg - (v-m)*r*mgx)
		}
	}
}

type lnDWJob struct {
	dw, db, dout, x, mean, rstd []float32
	n, c                        int
}

// run sums columns [lo, hi) of dw and db.
func (j *lnDWJob) run(_, lo, hi int) {
	for i := range j.n {
		g, x := j.dout[i*j.c+lo:i*j.c+hi], j.x[i*j.c+lo:i*j.c+hi]
		m, r := j.mean[i], j.rstd[i]
		if j.dw != nil {
			dw := j.dw[lo:hi]
			for k := range dw {
				dw[k] += g[k] * ((x[k] - m) * r)
			}
		}
		if j.db != nil {
			db := j.db[lo:hi]
			for k := range db {
				db[k] += g[k]
			}
		}
	}
}
