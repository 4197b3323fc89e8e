package cpu

import (
	"math"

	"earl/kernels"
)

// SwiGLUForward: gate and up (n, c) -> out (n, c) = silu(gate) * up, with
// silu(g) = g / (1 + exp(-g)) as torch computes it.
func (d *Device) SwiGLUForward(out, gate, up kernels.T, n, c int) {
	const op = "SwiGLUForward"
	j := &d.jobs.swiglu
	*j = swigluJob{out: need(out, n*c, op, "out"), gate: need(gate, n*c, op, "gate"), up: need(up, n*c, op, "up")}
	d.pool.do(n*c, grain(15), j)
}

// SwiGLUBackward accumulates, with s = sigmoid(gate):
//
//	dgate += dout * up * s * (1 + gate * (1 - s))    (d silu / dg)
//	dup   += dout * silu(gate)
//
// Either gradient may be empty.
func (d *Device) SwiGLUBackward(dgate, dup, dout, gate, up kernels.T, n, c int) {
	const op = "SwiGLUBackward"
	dg, du := opt(dgate, n*c, op, "dgate"), opt(dup, n*c, op, "dup")
	if dg == nil && du == nil {
		return
	}
	j := &d.jobs.swiglu
	*j = swigluJob{dgate: dg, dup: du, dout: need(dout, n*c, op, "dout"),
		gate: need(gate, n*c, op, "gate"), up: need(up, n*c, op, "up"), backward: true}
	d.pool.do(n*c, grain(20), j)
}

type swigluJob struct {
	out, gate, up    []float32
	dgate, dup, dout []float32
	backward         bool
}

// run does elements [lo, hi).
func (j *swigluJob) run(_, lo, hi int) {
	gate, up := j.gate[lo:hi], j.up[lo:hi]
	if !j.backward {
		out := j.out[lo:hi]
		for k, g := range gate {
			out[k] = g / (1 + expf(-g)) * up[k]
		}
		return
	}
	dout := j.dout[lo:hi]
	for k, g := range gate {
		s := 1 / (1 + expf(-g))
		if j.dgate != nil {
			j.dgate[lo+k] += dout[k] * up[k] * s * (1 + g*(1-s))
		}
		if j.dup != nil {
			j.dup[lo+k] += dout[k] * g * s
		}
	}
}

// GELUForward: out (n) = x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)), the exact
// form (torch's default, Whisper's encoder), in float64 per value.
func (d *Device) GELUForward(out, x kernels.T, n int) {
	j := &d.jobs.gelu
	*j = geluJob{out: need(out, n, "GELUForward", "out"), x: need(x, n, "GELUForward", "x")}
	d.pool.do(n, grain(30), j)
}

// GELUBackward accumulates dx += dout * (Phi(x) + x * phi(x)), phi the
// normal density exp(-x^2/2) / sqrt(2 pi).
func (d *Device) GELUBackward(dx, dout, x kernels.T, n int) {
	const op = "GELUBackward"
	dxs := opt(dx, n, op, "dx")
	if dxs == nil {
		return
	}
	j := &d.jobs.gelu
	*j = geluJob{dx: dxs, dout: need(dout, n, op, "dout"), x: need(x, n, op, "x"), backward: true}
	d.pool.do(n, grain(40), j)
}

type geluJob struct {
	out, x, dx, dout []float32
	backward         bool
}

func (j *geluJob) run(_, lo, hi int) {
	x := j.x[lo:hi]
	if !j.backward {
		out := j.out[lo:hi]
		for k, v := range x {
			xd := float64(v)
			out[k] = float32(0.5 * xd * (1 + math.Erf(xd/math.Sqrt2)))
		}
		return
	}
	dx, dout := j.dx[lo:hi], j.dout[lo:hi]
	const invSqrt2Pi = 0.3989422804014327
	for k, v := range x {
		xd := float64(v)
		cdf := 0.5 * (1 + math.Erf(xd/math.Sqrt2))
		pdf := invSqrt2Pi * math.Exp(-0.5*xd*xd)
		dx[k] += dout[k] * float32(cdf+xd*pdf)
	}
}
