package cpu

import (
	"fmt"

	"earl/kernels"
)

// Conv1dForward: x (b, cin, tin), w (cout, cin, 3), bias (cout) -> out
// (b, cout, tout), kernel 3, padding 1, tout = (tin - 1) / stride + 1
// (Whisper's two input convolutions, strides 1 and 2):
//
//	out[b, o, t] = bias[o] + sum_{i, k} w[o, i, k] * x[b, i, t*stride + k - 1]
//
// As im2col: col (cin*3, tout) holds x[b, i, t*stride + k - 1] in row
// i*3 + k (0 outside the input), and out[b] = w (cout, cin*3) @ col, one
// product per batch entry, onto the bias copied into out[b].
func (d *Device) Conv1dForward(out, col, x, w, bias kernels.T, b, cin, cout, tin, stride int) {
	const op = "Conv1dForward"
	tout := convOut(tin, stride, op)
	o, xs, ws := need(out, b*cout*tout, op, "out"), need(x, b*cin*tin, op, "x"), need(w, cout*cin*3, op, "w")
	cs, bs := need(col, cin*3*tout, op, "col"), opt(bias, cout, op, "bias")
	if b*cout*tout == 0 {
		return
	}
	for bi := range b {
		ob := o[bi*cout*tout : (bi+1)*cout*tout]
		beta := float32(0)
		if bs != nil {
			for oc, v := range bs {
				row := ob[oc*tout : (oc+1)*tout]
				for t := range row {
					row[t] = v
				}
			}
			beta = 1
		}
		if cin == 0 {
			if bs == nil {
				clear(ob)
			}
			continue
		}
		d.im2col(cs, xs[bi*cin*tin:(bi+1)*cin*tin], cin, tin, tout, stride)
		d.gemm(false, false, cout, tout, cin*3, 1, ws, cin*3, cs, tout, beta, ob, tout, nil)
	}
}

// convOut is the output length of a kernel-3, padding-1 convolution.
func convOut(tin, stride int, op string) int {
	if stride < 1 || tin < 0 {
		panic(fmt.Sprintf("cpu: %s: stride %d, input length %d", op, stride, tin))
	}
	if tin == 0 {
		return 0
	}
	return (tin-1)/stride + 1
}

// Conv1dBackward accumulates, per batch entry, with col recomputed from x:
//
//	dw (cout, cin*3)  += dout[b] (cout, tout) @ col^T
//	dcol (cin*3, tout) = w^T @ dout[b]       (into col), then col2im:
//	dx[b, i, t*stride + k - 1] += dcol[i*3 + k, t]
//	dbias (cout)      += sum over t of dout[b]
//
// Any of dx, dw, dbias may be empty.
func (d *Device) Conv1dBackward(dx, dw, dbias, col, dout, x, w kernels.T, b, cin, cout, tin, stride int) {
	const op = "Conv1dBackward"
	tout := convOut(tin, stride, op)
	dxs, dws, dbs := opt(dx, b*cin*tin, op, "dx"), opt(dw, cout*cin*3, op, "dw"), opt(dbias, cout, op, "dbias")
	if b*cout*tout == 0 || (dxs == nil && dws == nil && dbs == nil) {
		return
	}
	g := need(dout, b*cout*tout, op, "dout")
	for bi := range b {
		gb := g[bi*cout*tout : (bi+1)*cout*tout]
		if dbs != nil {
			j := &d.jobs.rowSum
			*j = rowSumJob{sum: dbs, x: gb, c: tout}
			d.pool.do(cout, grain(tout), j)
		}
		if cin == 0 {
			continue
		}
		cs := need(col, cin*3*tout, op, "col")
		if dws != nil {
			d.im2col(cs, need(x, b*cin*tin, op, "x")[bi*cin*tin:(bi+1)*cin*tin], cin, tin, tout, stride)
			d.gemm(false, true, cout, cin*3, tout, 1, gb, tout, cs, tout, 1, dws, cin*3, nil)
		}
		if dxs != nil {
			d.gemm(true, false, cin*3, tout, cout, 1, need(w, cout*cin*3, op, "w"), cin*3, gb, tout, 0, cs, tout, nil)
			j := &d.jobs.col2im
			*j = col2imJob{dx: dxs[bi*cin*tin : (bi+1)*cin*tin], col: cs, tin: tin, tout: tout, stride: stride}
			d.pool.do(cin, grain(3*tout), j)
		}
	}
}

func (d *Device) im2col(col, x []float32, cin, tin, tout, stride int) {
	j := &d.jobs.im2col
	*j = im2colJob{col: col, x: x, tin: tin, tout: tout, stride: stride}
	d.pool.do(cin, grain(3*tout), j)
}

// im2colJob fills the rows of col for input channels [lo, hi).
type im2colJob struct {
	col, x            []float32
	tin, tout, stride int
}

func (j *im2colJob) run(_, lo, hi int) {
	for i := lo; i < hi; i++ {
		x := j.x[i*j.tin : (i+1)*j.tin]
		for k := range 3 {
			row := j.col[(i*3+k)*j.tout : (i*3+k+1)*j.tout]
			for t := range row {
				if src := t*j.stride + k - 1; src >= 0 && src < j.tin {
					row[t] = x[src]
				} else {
					row[t] = 0
				}
			}
		}
	}
}

// col2imJob adds the rows of dcol back into dx for input channels
// [lo, hi), each dx value gathering its (k, t) terms in a fixed order.
type col2imJob struct {
	dx, col           []float32
	tin, tout, stride int
}

func (j *col2imJob) run(_, lo, hi int) {
	for i := lo; i < hi; i++ {
		dx := j.dx[i*j.tin : (i+1)*j.tin]
		for k := range 3 {
			row := j.col[(i*3+k)*j.tout : (i*3+k+1)*j.tout]
			for t, v := range row {
				if src := t*j.stride + k - 1; src >= 0 && src < j.tin {
					dx[src] += v
				}
			}
		}
	}
}

// rowSumJob accumulates sum[r] += the sum of row r of x (rows of c).
type rowSumJob struct {
	sum, x []float32
	c      int
}

func (j *rowSumJob) run(_, lo, hi int) {
	for r := lo; r < hi; r++ {
		var s float32
		for _, v := range j.x[r*j.c : (r+1)*j.c] {
			s += v
		}
		j.sum[r] += s
	}
}

// AvgPoolForward: x (b, c, tin) -> out (b, c, tin/2), out[t] = (x[2t] +
// x[2t+1]) / 2; an odd last frame is dropped (torch AvgPool1d(2, 2)).
func (d *Device) AvgPoolForward(out, x kernels.T, b, c, tin int) {
	const op = "AvgPoolForward"
	j := &d.jobs.pool
	*j = poolJob{out: need(out, b*c*(tin/2), op, "out"), x: need(x, b*c*tin, op, "x"), tin: tin}
	d.pool.do(b*c, grain(tin), j)
}

// AvgPoolBackward accumulates dx[2t] += dout[t] / 2 and dx[2t+1] +=
// dout[t] / 2; a dropped last frame gets nothing.
func (d *Device) AvgPoolBackward(dx, dout kernels.T, b, c, tin int) {
	const op = "AvgPoolBackward"
	dxs := opt(dx, b*c*tin, op, "dx")
	if dxs == nil {
		return
	}
	j := &d.jobs.pool
	*j = poolJob{dx: dxs, dout: need(dout, b*c*(tin/2), op, "dout"), tin: tin, backward: true}
	d.pool.do(b*c, grain(tin), j)
}

// poolJob does rows (b, c) [lo, hi).
type poolJob struct {
	out, x, dx, dout []float32
	tin              int
	backward         bool
}

func (j *poolJob) run(_, lo, hi int) {
	tout := j.tin / 2
	for r := lo; r < hi; r++ {
		if !j.backward {
			x, out := j.x[r*j.tin:(r+1)*j.tin], j.out[r*tout:(r+1)*tout]
			for t := range out {
				out[t] = (x[2*t] + x[2*t+1]) * 0.5
			}
			continue
		}
		dx, g := j.dx[r*j.tin:(r+1)*j.tin], j.dout[r*tout:(r+1)*tout]
		for t, v := range g {
			dx[2*t] += v * 0.5
			dx[2*t+1] += v * 0.5
		}
	}
}
