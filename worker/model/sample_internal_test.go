package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// choose draws from softmax(logits / T), restricted to the top-k / top-p
// set and renormalised: the frequencies of many draws match the
// probabilities computed here in float64, for the plain path (no sort)
// and the restricted one, and suppressed ids are never drawn.
func TestChooseDistribution(t *testing.T) {
	logits := []float32{1.5, -0.3, 0.2, 2.1, -1.0, 0.9, 0.0, -2.5}
	for _, c := range []struct {
		opt      SampleOptions
		suppress []int32
	}{
		{SampleOptions{Temperature: 1}, nil},
		{SampleOptions{Temperature: 0.7}, []int32{3, 6}},
		{SampleOptions{Temperature: 1.3, TopK: 4}, nil},
		{SampleOptions{Temperature: 1, TopP: 0.8}, []int32{0}},
	} {
		row := append([]float32(nil), logits...)
		suppress(row, c.suppress)
		// Expected probabilities: sort ids by logit, keep top-k, then the
		// smallest prefix with mass >= top-p, renormalise.
		type kv struct {
			id int
			x  float64
		}
		var cs []kv
		for i, v := range row {
			cs = append(cs, kv{i, float64(v) / float64(c.opt.Temperature)})
		}
		for i := 1; i < len(cs); i++ {
			for j := i; j > 0 && cs[j].x > cs[j-1].x; j-- {
				cs[j], cs[j-1] = cs[j-1], cs[j]
			}
		}
		if c.opt.TopK > 0 {
			cs = cs[:c.opt.TopK]
		}
		var z float64
		for _, e := range cs {
			z += math.Exp(e.x)
		}
		if c.opt.TopP > 0 && c.opt.TopP < 1 {
			var cum float64
			for i, e := range cs {
				cum += math.Exp(e.x) / z
				if cum >= float64(c.opt.TopP) {
					cs = cs[:i+1]
					break
				}
			}
			z = 0
			for _, e := range cs {
				z += math.Exp(e.x)
			}
		}
		want := make([]float64, len(row))
		for _, e := range cs {
			want[e.id] = math.Exp(e.x) / z
		}
		const n = 200000
		got := make([]float64, len(row))
		r := rand.New(rand.NewPCG(1, 2))
		for range n {
			got[choose(row, r, c.opt)]++
		}
		for i := range got {
			p := want[i]
			f := got[i] / n
			// 5 standard errors.
			if tol := 5 * math.Sqrt(p*(1-p)/n); math.Abs(f-p) > tol+1e-9 {
				t.Errorf("%+v suppress %v: id %d drawn %.4f of the time, probability %.4f", c.opt, c.suppress, i, f, p)
			}
		}
	}
}
