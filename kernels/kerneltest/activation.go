package kerneltest

import "earl/kernels"

func testSwiGLU(e *env) {
	const n, c = 7, 13
	gate, up := e.randn(n*c), e.randn(n*c)
	gate[0], gate[1], gate[2] = 30, -30, 0 // saturated and zero
	tgate, tup := e.up(gate), e.up(up)
	out := e.d.Alloc(n * c)
	e.d.SwiGLUForward(out, tgate, tup, n, c)
	e.checkClose("SwiGLUForward", e.down(out), refSwiGLU(gate, up), tolFwd)

	g := e.randn(n * c)
	tg := e.up(g)
	loss := func() float64 { return dotf(g, refSwiGLU(gate, up)) }
	e.checkBackward("SwiGLUBackward", []grad{
		{name: "dgate", n: n * c, want: numGrad(gate, nil, loss)},
		{name: "dup", n: n * c, want: numGrad(up, nil, loss)},
	}, func(gs []kernels.T) {
		e.d.SwiGLUBackward(gs[0], gs[1], tg, tgate, tup, n, c)
	})
}

func testGELU(e *env) {
	const n = 41
	x := e.randn(n)
	x[0], x[1], x[2], x[3] = 0, 6, -6, -12 // the tails, where erf saturates
	tx := e.up(x)
	out := e.d.Alloc(n)
	e.d.GELUForward(out, tx, n)
	e.checkClose("GELUForward", e.down(out), refGELU(x), tolFwd)

	g := e.randn(n)
	tg := e.up(g)
	e.checkBackward("GELUBackward", []grad{
		{name: "dx", n: n, want: numGrad(x, nil, func() float64 { return dotf(g, refGELU(x)) })},
	}, func(gs []kernels.T) {
		e.d.GELUBackward(gs[0], tg, tx, n)
	})
}

func testConv1d(e *env) {
	const b, cin, cout, tin = 2, 3, 4, 11 // odd length: stride 2 drops nothing, pads the end
	for _, stride := range []int{1, 2} {
		tout := (tin-1)/stride + 1
		x, w, bias := e.randn(b*cin*tin), e.randn(cout*cin*3), e.randn(cout)
		tx, tw, tb := e.up(x), e.up(w), e.up(bias)
		col := e.d.Alloc(cin*3*tout + 5) // scratch may be larger
		out := e.d.Alloc(b * cout * tout)
		e.d.Conv1dForward(out, col, tx, tw, tb, b, cin, cout, tin, stride)
		e.checkClose("Conv1dForward", e.down(out), refConv1d(x, w, bias, b, cin, cout, tin, stride), tolFwd)

		g := e.randn(b * cout * tout)
		tg := e.up(g)
		loss := func() float64 { return dotf(g, refConv1d(x, w, bias, b, cin, cout, tin, stride)) }
		e.checkBackward("Conv1dBackward", []grad{
			{name: "dx", n: b * cin * tin, want: numGrad(x, nil, loss)},
			{name: "dw", n: cout * cin * 3, want: numGrad(w, nil, loss)},
			{name: "dbias", n: cout, want: numGrad(bias, nil, loss)},
		}, func(gs []kernels.T) {
			e.d.Conv1dBackward(gs[0], gs[1], gs[2], col, tg, tx, tw, b, cin, cout, tin, stride)
		})
		if e.Failed() {
			e.Fatalf("Conv1d stride %d", stride)
		}
	}
}

func testAvgPool(e *env) {
	const b, c, tin = 2, 3, 11 // the odd last frame is dropped
	x := e.randn(b * c * tin)
	tx := e.up(x)
	out := e.d.Alloc(b * c * (tin / 2))
	e.d.AvgPoolForward(out, tx, b, c, tin)
	e.checkClose("AvgPoolForward", e.down(out), refAvgPool(x, b*c, tin), tolFwd)

	g := e.randn(b * c * (tin / 2))
	tg := e.up(g)
	e.checkBackward("AvgPoolBackward", []grad{
		{name: "dx", n: b * c * tin, want: numGrad(x, nil, func() float64 { return dotf(g, refAvgPool(x, b*c, tin)) })},
	}, func(gs []kernels.T) {
		e.d.AvgPoolBackward(gs[0], tg, b, c, tin)
	})
}
