package kerneltest

import "math"

func testRoPE(e *env) {
	// Positions up to 30000 with Qwen2.5's theta 1e6 and Qwen2's 1e4, on a
	// small odd case and on the real head size 64.
	pos := []int32{0, 1, 5, 100, 3000, 29999, 30000}
	n := len(pos)
	tp := e.upInts(pos)
	for _, c := range []struct {
		heads, dim int
		theta      float32
	}{{3, 6, 1e6}, {2, 64, 1e6}, {2, 64, 1e4}} {
		x := e.randn(n * c.heads * c.dim)
		tx := e.up(x)
		e.d.RoPEForward(tx, tp, n, c.heads, c.dim, c.theta)
		got := e.down(tx)
		e.checkClose("RoPEForward", got, refRoPE(x, pos, n, c.heads, c.dim, c.theta), tolFwd)

		// The backward is the transposed rotation, applied in place (the
		// one backward that does not accumulate): for L = sum(g * rope(x)),
		// dL/dx = RoPEBackward(g).
		g := e.randn(len(x))
		tg := e.up(g)
		e.d.RoPEBackward(tg, tp, n, c.heads, c.dim, c.theta)
		want := numGrad(x, nil, func() float64 { return dotf(g, refRoPE(x, pos, n, c.heads, c.dim, c.theta)) })
		e.checkClose("RoPEBackward vs finite differences", e.down(tg), want, tolGrad)

		// Backward undoes forward.
		e.d.RoPEBackward(tx, tp, n, c.heads, c.dim, c.theta)
		e.checkClose("RoPEBackward(RoPEForward(x))", e.down(tx), x, tolFwd)
		if e.Failed() {
			e.Fatalf("RoPE with %d heads of %d, theta %g", c.heads, c.dim, c.theta)
		}
	}

	// Position 0 is the identity, exactly.
	x := e.randn(4 * 8)
	tx := e.up(x)
	e.d.RoPEForward(tx, e.upInts([]int32{0}), 1, 4, 8, 1e6)
	e.checkSame("RoPEForward at position 0", e.down(tx), x)

	// The angle is Hugging Face's float32 one. At position 30000 it is
	// far from the exact angle, so a device that computes in float64
	// fails here: check that the float32 angle and the exact one differ
	// by more than the tolerance for this case.
	exact := 30000 * math.Pow(1e6, -2.0/64)
	if d := math.Abs(ropeAngle(30000, 1, 64, 1e6) - exact); d < 1e-4 {
		e.Fatalf("float32 and float64 angles differ by only %g: the position-30000 case checks nothing", d)
	}
}
