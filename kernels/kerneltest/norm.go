package kerneltest

import "earl/kernels"

func testRMSNorm(e *env) {
	const n, c, eps = 7, 13, 1e-6
	x, w := e.randn(n*c), e.uniform(c, 0.5, 1.5)
	x[0] = 0 // a row of zeros would leave only eps; one zero is enough
	tx, tw := e.up(x), e.up(w)
	out, rstd := e.d.Alloc(n*c), e.d.Alloc(n)
	e.d.RMSNormForward(out, rstd, tx, tw, n, c, eps)
	wantOut, wantRstd := refRMSNorm(x, w, n, c, eps)
	e.checkClose("RMSNormForward out", e.down(out), wantOut, tolFwd)
	e.checkClose("RMSNormForward rstd", e.down(rstd), wantRstd, tolFwd)

	// Rows of size 1e-3, whose mean square is eps itself: eps must be
	// inside the square root, the mean over c (not c - 1).
	small := e.randn(n * c)
	for k := range small {
		small[k] = float64(float32(1e-3 * small[k]))
	}
	e.d.RMSNormForward(out, rstd, e.up(small), tw, n, c, eps)
	wantSmall, _ := refRMSNorm(small, w, n, c, eps)
	e.checkClose("RMSNormForward of rows near eps", e.down(out), wantSmall, tolFwd)
	e.d.RMSNormForward(out, rstd, tx, tw, n, c, eps)

	g := e.randn(n * c)
	tg := e.up(g)
	loss := func() float64 { o, _ := refRMSNorm(x, w, n, c, eps); return dotf(g, o) }
	e.checkBackward("RMSNormBackward", []grad{
		{name: "dx", n: n * c, want: numGrad(x, nil, loss)},
		{name: "dw", n: c, want: numGrad(w, nil, loss)},
	}, func(gs []kernels.T) {
		e.d.RMSNormBackward(gs[0], gs[1], tg, tx, tw, rstd, n, c)
	})
}

func testLayerNorm(e *env) {
	const n, c, eps = 7, 13, 1e-5
	x, w, b := e.randn(n*c), e.uniform(c, 0.5, 1.5), e.randn(c)
	for k := range c { // a row far from zero mean: the variance must not cancel
		x[2*c+k] = float64(float32(100 + x[2*c+k]))
	}
	tx, tw, tb := e.up(x), e.up(w), e.up(b)
	out, mean, rstd := e.d.Alloc(n*c), e.d.Alloc(n), e.d.Alloc(n)
	e.d.LayerNormForward(out, mean, rstd, tx, tw, tb, n, c, eps)
	wantOut, wantMean, wantRstd := refLayerNorm(x, w, b, n, c, eps)
	e.checkClose("LayerNormForward out", e.down(out), wantOut, tolFwd)
	e.checkClose("LayerNormForward mean", e.down(mean), wantMean, tolFwd)
	e.checkClose("LayerNormForward rstd", e.down(rstd), wantRstd, tolFwd)
	e.d.LayerNormForward(out, mean, rstd, tx, tw, kernels.T{}, n, c, eps)
	noBias, _, _ := refLayerNorm(x, w, make([]float64, c), n, c, eps)
	e.checkClose("LayerNormForward without bias", e.down(out), noBias, tolFwd)

	// Rows whose variance is about eps, and the biased variance (over c).
	small := e.randn(n * c)
	for k := range small {
		small[k] = float64(float32(5 + 3e-3*small[k]))
	}
	e.d.LayerNormForward(out, mean, rstd, e.up(small), tw, tb, n, c, eps)
	wantSmall, _, _ := refLayerNorm(small, w, b, n, c, eps)
	e.checkClose("LayerNormForward of rows with variance near eps", e.down(out), wantSmall, tolFwd)
	e.d.LayerNormForward(out, mean, rstd, tx, tw, tb, n, c, eps)

	g := e.randn(n * c)
	tg := e.up(g)
	loss := func() float64 { o, _, _ := refLayerNorm(x, w, b, n, c, eps); return dotf(g, o) }
	e.checkBackward("LayerNormBackward", []grad{
		{name: "dx", n: n * c, want: numGrad(x, nil, loss)},
		{name: "dw", n: c, want: numGrad(w, nil, loss)},
		{name: "db", n: c, want: numGrad(b, nil, loss)},
	}, func(gs []kernels.T) {
		e.d.LayerNormBackward(gs[0], gs[1], gs[2], tg, tx, tw, mean, rstd, n, c)
	})
}
