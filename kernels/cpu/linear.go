package cpu

import (
	"fmt"

	"earl/kernels"
)

// matrix returns the values of a (rows, cols) matrix with row stride ld
// held by t, checking the stride and the length: sgemm gets raw pointers,
// so a short view must panic here rather than corrupt memory there.
func matrix(t kernels.T, rows, cols, ld int, op, arg string) []float32 {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("cpu: %s: %s has row stride %d < %d columns", op, arg, ld, cols))
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	return need(t, (rows-1)*ld+cols, op, arg)
}

// Gemm sets c (m, n) = alpha * op(a) (m, k) * op(b) (k, n) + beta * c,
// row-major with row strides lda, ldb, ldc: cblas_sgemm, one call per
// goroutine (see gemm). As in BLAS, c is not read when beta is 0.
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a kernels.T, lda int, b kernels.T, ldb int, beta float32, c kernels.T, ldc int) {
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	as := matrix(a, ar, ac, lda, "Gemm", "a")
	bs := matrix(b, br, bc, ldb, "Gemm", "b")
	cs := matrix(c, m, n, ldc, "Gemm", "c")
	if m == 0 || n == 0 {
		return
	}
	if k == 0 { // c = beta * c
		for i := range m {
			row := cs[i*ldc : i*ldc+n]
			for j := range row {
				if beta == 0 {
					row[j] = 0
				} else {
					row[j] *= beta
				}
			}
		}
		return
	}
	d.gemm(transA, transB, m, n, k, alpha, as, lda, bs, ldb, beta, cs, ldc, nil)
}

// LinearForward sets out (n, oc) = x (n, ic) @ w (oc, ic)^T + bias (oc):
// the bias is copied into out first and sgemm adds the product to it
// (beta = 1), one pass over out instead of two.
func (d *Device) LinearForward(out, x, w, bias kernels.T, n, ic, oc int) {
	const op = "LinearForward"
	o := need(out, n*oc, op, "out")
	xs := need(x, n*ic, op, "x")
	ws := need(w, oc*ic, op, "w")
	bs := opt(bias, oc, op, "bias")
	if n == 0 || oc == 0 {
		return
	}
	if ic == 0 {
		for i := range n {
			if bs == nil {
				clear(o[i*oc : (i+1)*oc])
			} else {
				copy(o[i*oc:(i+1)*oc], bs)
			}
		}
		return
	}
	beta := float32(0)
	if bs != nil {
		beta = 1
	}
	d.gemm(false, true, n, oc, ic, 1, xs, ic, ws, ic, beta, o, oc, bs)
}

// LinearBackward accumulates, from dout (n, oc):
//
//	dx (n, ic)  += dout @ w        (needs w)
//	dw (oc, ic) += dout^T @ x      (needs x)
//	dbias (oc)  += sum over rows of dout
//
// Each gradient is skipped when its view is empty.
func (d *Device) LinearBackward(dx, dw, dbias, dout, x, w kernels.T, n, ic, oc int) {
	const op = "LinearBackward"
	dxs := opt(dx, n*ic, op, "dx")
	dws := opt(dw, oc*ic, op, "dw")
	dbs := opt(dbias, oc, op, "dbias")
	if n == 0 || oc == 0 {
		return
	}
	douts := need(dout, n*oc, op, "dout")
	if dxs != nil && ic > 0 {
		d.gemm(false, false, n, ic, oc, 1, douts, oc, need(w, oc*ic, op, "w"), ic, 1, dxs, ic, nil)
	}
	if dws != nil && ic > 0 {
		d.gemm(true, false, oc, ic, n, 1, douts, oc, need(x, n*ic, op, "x"), ic, 1, dws, ic, nil)
	}
	if dbs != nil {
		d.colSum(dbs, douts, n, oc)
	}
}

// colSum accumulates sum (c) += the column sums of x (n, c), each column
// summed in row order.
func (d *Device) colSum(sum, x []float32, n, c int) {
	j := &d.jobs.sum
	*j = colSumJob{sum: sum, x: x, n: n, c: c}
	d.pool.do(c, grain(n), j)
}

type colSumJob struct {
	sum, x []float32
	n, c   int
}

// run sums columns [lo, hi).
func (j *colSumJob) run(_, lo, hi int) {
	sum := j.sum[lo:hi]
	for i := range j.n {
		row := j.x[i*j.c+lo : i*j.c+hi]
		for k, v := range row {
			sum[k] += v
		}
	}
}

// Transpose sets out (cols, rows) = x (rows, cols)^T.
func (d *Device) Transpose(out, x kernels.T, rows, cols int) {
	o := need(out, rows*cols, "Transpose", "out")
	xs := need(x, rows*cols, "Transpose", "x")
	j := &d.jobs.transpose
	*j = transposeJob{out: o, x: xs, rows: rows, cols: cols}
	d.pool.do(rows, grain(cols), j)
}

type transposeJob struct {
	out, x     []float32
	rows, cols int
}

// run transposes rows [lo, hi) of x, in bands of 64 columns so that the
// scattered writes into out stay in cache.
func (j *transposeJob) run(_, lo, hi int) {
	const band = 64
	for c0 := 0; c0 < j.cols; c0 += band {
		c1 := min(c0+band, j.cols)
		for r := lo; r < hi; r++ {
			row := j.x[r*j.cols : (r+1)*j.cols]
			for c := c0; c < c1; c++ {
				j.out[c*j.rows+r] = row[c]
			}
		}
	}
}

// rowIndex returns idx (n), checking every index against rows.
func rowIndex(idx kernels.I, n, rows int, op, arg string) []int32 {
	ix := needInts(idx, n, op, arg)
	for i, r := range ix {
		if r < 0 || int(r) >= rows {
			panic(fmt.Sprintf("cpu: %s: %s[%d] = %d is outside [0, %d)", op, arg, i, r, rows))
		}
	}
	return ix
}

// GatherRows sets out[i] = src[idx[i]] for rows of c values; src has
// src.N / c rows.
func (d *Device) GatherRows(out, src kernels.T, idx kernels.I, n, c int) {
	if c == 0 || n == 0 {
		return
	}
	o := need(out, n*c, "GatherRows", "out")
	s := Floats(src)
	ix := rowIndex(idx, n, len(s)/c, "GatherRows", "idx")
	for i, r := range ix {
		copy(o[i*c:(i+1)*c], s[int(r)*c:int(r+1)*c])
	}
}

// ScatterRows sets dst[idx[i]] = src[i]; with a repeated index the last
// row wins.
func (d *Device) ScatterRows(dst, src kernels.T, idx kernels.I, n, c int) {
	if c == 0 || n == 0 {
		return
	}
	s := need(src, n*c, "ScatterRows", "src")
	ds := Floats(dst)
	ix := rowIndex(idx, n, len(ds)/c, "ScatterRows", "idx")
	for i, r := range ix {
		copy(ds[int(r)*c:int(r+1)*c], s[i*c:(i+1)*c])
	}
}

// EmbeddingForward sets out (n, c) = table[ids[i]]; table has table.N / c
// rows.
func (d *Device) EmbeddingForward(out, table kernels.T, ids kernels.I, n, c int) {
	d.GatherRows(out, table, ids, n, c)
}

// EmbeddingBackward accumulates dtable[ids[i]] += dout[i] (n, c). The
// columns are split among goroutines, each adding the rows in order, so a
// repeated id sums the same way every run.
func (d *Device) EmbeddingBackward(dtable, dout kernels.T, ids kernels.I, n, c int) {
	if c == 0 || n == 0 || dtable.N == 0 {
		return
	}
	g := need(dout, n*c, "EmbeddingBackward", "dout")
	dt := Floats(dtable)
	ix := rowIndex(ids, n, len(dt)/c, "EmbeddingBackward", "ids")
	j := &d.jobs.embedBack
	*j = embedBackJob{dtable: dt, dout: g, ids: ix, c: c}
	d.pool.do(c, grain(n), j)
}

type embedBackJob struct {
	dtable, dout []float32
	ids          []int32
	c            int
}

// run adds columns [lo, hi).
func (j *embedBackJob) run(_, lo, hi int) {
	for i, r := range j.ids {
		axpy(j.dtable[int(r)*j.c+lo:int(r)*j.c+hi], 1, j.dout[i*j.c+lo:i*j.c+hi])
	}
}
