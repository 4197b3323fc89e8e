package kerneltest

import (
	"fmt"

	"earl/kernels"
)

func testTokenLogProbs(e *env) {
	const n, c, v, temp = 7, 13, 37, 0.7
	h, w := e.randn(n*c), e.randn(v*c)
	targets := make([]int32, n)
	for i := range targets {
		targets[i] = int32(e.rng.IntN(v))
	}
	targets[0], targets[1] = 0, v-1
	th, tw, tt := e.up(h), e.up(w), e.upInts(targets)
	wantLogp, wantEnt, wantLse := refLogProbs(h, w, targets, n, c, v, temp)

	for _, chunk := range []int{3, 7, 10} { // 3 does not divide 7; 10 is more than n
		logp, ent, lse := e.d.Alloc(n), e.d.Alloc(n), e.d.Alloc(n)
		logits := e.d.Alloc(chunk*v + 3)
		e.d.TokenLogProbs(logp, ent, lse, logits, th, tw, tt, n, c, v, chunk, temp)
		what := fmt.Sprintf("chunk %d", chunk)
		e.checkClose("TokenLogProbs logp, "+what, e.down(logp), wantLogp, tolFwd)
		e.checkClose("TokenLogProbs entropy, "+what, e.down(ent), wantEnt, tolFwd)
		e.checkClose("TokenLogProbs lse, "+what, e.down(lse), wantLse, tolFwd)

		gl, ge := e.randn(n), e.randn(n)
		tgl, tge := e.up(gl), e.up(ge)
		lossOf := func(withLogp, withEnt bool) func() float64 {
			return func() float64 {
				lp, en, _ := refLogProbs(h, w, targets, n, c, v, temp)
				s := 0.0
				if withLogp {
					s += dotf(gl, lp)
				}
				if withEnt {
					s += dotf(ge, en)
				}
				return s
			}
		}
		loss := lossOf(true, true)
		e.checkBackward("TokenLogProbsBackward, "+what, []grad{
			{name: "dh", n: n * c, want: numGrad(h, nil, loss)},
			{name: "dw", n: v * c, want: numGrad(w, nil, loss)},
		}, func(gs []kernels.T) {
			e.d.TokenLogProbsBackward(gs[0], gs[1], logits, tgl, tge, th, tw, lse, tt, n, c, v, chunk, temp)
		})

		// An empty dlogp or dentropy counts as zeros.
		for _, only := range []string{"dlogp", "dentropy"} {
			dl, de := tgl, tge
			if only == "dlogp" {
				de = kernels.T{}
			} else {
				dl = kernels.T{}
			}
			l := lossOf(only == "dlogp", only == "dentropy")
			dh, dw := e.d.Alloc(n*c), e.d.Alloc(v*c)
			e.d.TokenLogProbsBackward(dh, dw, logits, dl, de, th, tw, lse, tt, n, c, v, chunk, temp)
			e.checkClose("TokenLogProbsBackward dh, only "+only+", "+what, e.down(dh), numGrad(h, nil, l), tolGrad)
			e.checkClose("TokenLogProbsBackward dw, only "+only+", "+what, e.down(dw), numGrad(w, nil, l), tolGrad)
		}
		if e.Failed() {
			return
		}
	}
}
