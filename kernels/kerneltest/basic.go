package kerneltest

import (
	"math"

	"earl/kernels"
)

func testMemory(e *env) {
	t := e.d.Alloc(11)
	e.checkSame("Alloc: zeroed", e.down(t), make([]float64, 11))
	x := e.randn(11)
	e.set(t, x)
	e.checkSame("Upload then Download", e.down(t), x)
	e.checkSame("a View's values", e.down(t.View(3, 5)), x[3:8])
	e.set(t.View(3, 5), []float64{1, 2, 3, 4, 5})
	want := append(append(append([]float64{}, x[:3]...), 1, 2, 3, 4, 5), x[8:]...)
	e.checkSame("Upload into a View", e.down(t), want)
	e.d.Free(t)

	ints := []int32{5, -3, 7, 0, 1 << 30}
	i := e.d.AllocInt(len(ints))
	e.d.UploadInt(i, ints)
	got := make([]int32, 3)
	e.d.DownloadInt(got, i.View(1, 3))
	if got[0] != -3 || got[1] != 7 || got[2] != 0 {
		e.Errorf("UploadInt then DownloadInt of a View: %v, want [-3 7 0]", got)
	}
	e.d.FreeInt(i)
	e.d.Sync()
}

func testElementwise(e *env) {
	const n = 37
	a, b := e.randn(n), e.randn(n)
	ta, tb := e.up(a), e.up(b)

	// Zero and Copy touch only their views.
	t := e.up(a)
	e.d.Zero(t.View(5, 7))
	want := append([]float64{}, a...)
	clear(want[5:12])
	e.checkSame("Zero of a View", e.down(t), want)
	e.d.Copy(t.View(20, 9), tb.View(1, 9))
	copy(want[20:29], b[1:10])
	e.checkSame("Copy into a View", e.down(t), want)

	out := e.d.Alloc(n)
	e.d.Add(out, ta, tb)
	sum := make([]float64, n)
	for i := range sum {
		sum[i] = float64(float32(a[i]) + float32(b[i]))
	}
	e.checkSame("Add", e.down(out), sum)
	e.d.Add(ta, ta, tb) // out may be an input
	e.checkSame("Add into its first input", e.down(ta), sum)
	e.set(ta, a)

	e.d.Axpy(ta, -0.7, tb)
	ax := make([]float64, n)
	for i := range ax {
		ax[i] = a[i] + -0.7*b[i]
	}
	e.checkClose("Axpy", e.down(ta), ax, tolFwd)

	e.d.Scale(tb, 1.3)
	sc := make([]float64, n)
	for i := range sc {
		sc[i] = b[i] * 1.3
	}
	e.checkClose("Scale", e.down(tb), sc, tolFwd)
}

func testGemm(e *env) {
	const m, n, k, pad = 7, 5, 13, 3
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		ta, tb := tr[0], tr[1]
		ar, ac := m, k
		if ta {
			ar, ac = k, m
		}
		br, bc := k, n
		if tb {
			br, bc = n, k
		}
		lda, ldb, ldc := ac+pad, bc+pad, n+pad
		a, b, c := e.randn(ar*lda), e.randn(br*ldb), e.randn(m*ldc)
		at := func(i, j int) float64 { // op(a)[i][j]
			if ta {
				return a[j*lda+i]
			}
			return a[i*lda+j]
		}
		bt := func(i, j int) float64 {
			if tb {
				return b[j*ldb+i]
			}
			return b[i*ldb+j]
		}
		for _, beta := range []float64{0.4, 0} {
			const alpha = 0.7
			want := append([]float64{}, c...)
			for i := range m {
				for j := range n {
					s := 0.0
					for p := range k {
						s += at(i, p) * bt(p, j)
					}
					want[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
				}
			}
			tc := e.up(c)
			if beta == 0 {
				// As in BLAS, c is not read when beta is 0: NaN in it must not matter.
				nan := append([]float64{}, c...)
				for i := range m {
					for j := range n {
						nan[i*ldc+j] = math.NaN()
					}
				}
				e.set(tc, nan)
			}
			e.d.Gemm(ta, tb, m, n, k, alpha, e.up(a), lda, e.up(b), ldb, float32(beta), tc, ldc)
			got := e.down(tc)
			e.checkClose("Gemm", got, want, tolFwd)
			e.checkSame("Gemm: the padding of c", strided(got, m, n, ldc), strided(want, m, n, ldc))
			if e.Failed() {
				e.Fatalf("Gemm transA=%v transB=%v beta=%v", ta, tb, beta)
			}
		}
	}
}

// strided returns the values of a (rows, ld) buffer outside its first n
// columns (the padding a strided op must not touch).
func strided(x []float64, rows, n, ld int) []float64 {
	var pad []float64
	for i := range rows {
		pad = append(pad, x[i*ld+n:(i+1)*ld]...)
	}
	return pad
}

func testTranspose(e *env) {
	const rows, cols = 7, 13
	x := e.randn(rows * cols)
	out := e.d.Alloc(rows * cols)
	e.d.Transpose(out, e.up(x), rows, cols)
	want := make([]float64, rows*cols)
	for i := range rows {
		for j := range cols {
			want[j*rows+i] = x[i*cols+j]
		}
	}
	e.checkSame("Transpose", e.down(out), want)
}

func testGatherScatter(e *env) {
	const rows, n, c = 10, 7, 13
	src := e.randn(rows * c)
	idx := []int32{3, 0, 9, 3, 5, 1, 8}
	out := e.d.Alloc(n * c)
	e.d.GatherRows(out, e.up(src), e.upInts(idx), n, c)
	want := make([]float64, n*c)
	for i, r := range idx {
		copy(want[i*c:(i+1)*c], src[int(r)*c:int(r+1)*c])
	}
	e.checkSame("GatherRows", e.down(out), want)

	dst := e.randn(rows * c)
	rowsIn := e.randn(n * c)
	distinct := []int32{4, 0, 9, 2, 7, 1, 6}
	td := e.up(dst)
	e.d.ScatterRows(td, e.up(rowsIn), e.upInts(distinct), n, c)
	for i, r := range distinct {
		copy(dst[int(r)*c:int(r+1)*c], rowsIn[i*c:(i+1)*c])
	}
	e.checkSame("ScatterRows (rows not named keep their values)", e.down(td), dst)
}

func testEmbedding(e *env) {
	const vocab, n, c = 10, 7, 13
	table := e.randn(vocab * c)
	ids := []int32{3, 0, 9, 3, 5, 3, 8} // 3 repeats: its gradient sums three rows
	tt, ti := e.up(table), e.upInts(ids)
	out := e.d.Alloc(n * c)
	e.d.EmbeddingForward(out, tt, ti, n, c)
	fwd := func() []float64 {
		o := make([]float64, n*c)
		for i, r := range ids {
			copy(o[i*c:(i+1)*c], table[int(r)*c:int(r+1)*c])
		}
		return o
	}
	e.checkSame("EmbeddingForward", e.down(out), fwd())

	g := e.randn(n * c)
	tg := e.up(g)
	want := numGrad(table, nil, func() float64 { return dotf(g, fwd()) })
	e.checkBackward("EmbeddingBackward", []grad{{name: "dtable", n: vocab * c, want: want}}, func(gs []kernels.T) {
		e.d.EmbeddingBackward(gs[0], tg, ti, n, c)
	})
}

func testLinear(e *env) {
	const n, ic, oc = 7, 13, 5
	x, w, b := e.randn(n*ic), e.randn(oc*ic), e.randn(oc)
	tx, tw, tb := e.up(x), e.up(w), e.up(b)
	out := e.d.Alloc(n * oc)
	e.d.LinearForward(out, tx, tw, tb, n, ic, oc)
	e.checkClose("LinearForward with bias", e.down(out), refLinear(x, w, b, n, ic, oc), tolFwd)
	e.d.LinearForward(out, tx, tw, kernels.T{}, n, ic, oc)
	e.checkClose("LinearForward without bias", e.down(out), refLinear(x, w, nil, n, ic, oc), tolFwd)

	g := e.randn(n * oc)
	tg := e.up(g)
	loss := func() float64 { return dotf(g, refLinear(x, w, b, n, ic, oc)) }
	e.checkBackward("LinearBackward", []grad{
		{name: "dx", n: n * ic, want: numGrad(x, nil, loss)},
		{name: "dw", n: oc * ic, want: numGrad(w, nil, loss)},
		{name: "dbias", n: oc, want: numGrad(b, nil, loss)},
	}, func(gs []kernels.T) {
		e.d.LinearBackward(gs[0], gs[1], gs[2], tg, tx, tw, n, ic, oc)
	})
}
