package train

import (
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"earl/collective"
	"earl/kernels"
	"earl/kernels/cpu"
	"earl/worker/model"
)

// refAdamW is torch.optim.AdamW (and clip_grad_norm_) re-derived in
// float64 from the published update rule, on the whole vector.
type refAdamW struct {
	p, m, v []float64
	decay   []bool
	t       int
}

func (r *refAdamW) step(g []float64, c TrainConfig, lr float64) {
	var ss float64
	for _, x := range g {
		ss += x * x
	}
	scale := 1.0
	if c.MaxGradNorm > 0 {
		scale = math.Min(1, c.MaxGradNorm/(math.Sqrt(ss)+1e-6))
	}
	r.t++
	for i := range r.p {
		gi := g[i] * scale
		if r.decay[i] {
			r.p[i] -= lr * c.WeightDecay * r.p[i]
		}
		r.m[i] = c.AdamBeta1*r.m[i] + (1-c.AdamBeta1)*gi
		r.v[i] = c.AdamBeta2*r.v[i] + (1-c.AdamBeta2)*gi*gi
		mh := r.m[i] / (1 - math.Pow(c.AdamBeta1, float64(r.t)))
		vh := r.v[i] / (1 - math.Pow(c.AdamBeta2, float64(r.t)))
		r.p[i] -= lr * mh / (math.Sqrt(vh) + c.AdamEps)
	}
}

// The ZeRO-1 optimizer on 1, 2 and 3 ranks, each rank holding different
// gradients, equals AdamW in float64 applied to the ranks' average
// gradient: the reduce-scatter averages, the norm is global, every rank
// updates its own shard and the all-gather puts the shards together.
// Epsilon is large and clipping active so that scale errors (a sum for an
// average) show despite Adam's scale invariance; biases and norm weights
// take no weight decay.
func TestOptimizerMatchesAdamW(t *testing.T) {
	dir := tinyModel(t, model.Qwen2Audio, 4)
	for _, clip := range []float64{0, 0.05} {
		for _, world := range []int{1, 2, 3} {
			checkOptimizer(t, dir, world, clip)
		}
	}
}

func checkOptimizer(t *testing.T, dir string, world int, clip float64) {
	c := Default().Train
	c.WeightDecay, c.AdamEps, c.MaxGradNorm = 0.1, 1e-3, clip
	comms := collective.NewInProcess(world)
	models := make([]*model.Model, world)
	opts := make([]*Optimizer, world)
	for r := range models {
		m, err := model.Load(cpu.New(), dir, model.Freeze{Audio: true}, model.Limits{MaxTokens: 8, MaxSeqs: 1})
		if err != nil {
			t.Fatal(err)
		}
		models[r] = m
		if opts[r], err = NewOptimizer(m, comms[r], c); err != nil {
			t.Fatal(err)
		}
	}
	p0 := kernels.Host(models[0].P.Buf)[:models[0].P.Trainable]
	ref := &refAdamW{p: f64(p0), m: make([]float64, len(p0)), v: make([]float64, len(p0)), decay: make([]bool, len(p0))}
	nodecay := 0
	for _, name := range models[0].P.Names() {
		w := models[0].P.Get(name)
		if !models[0].P.Trains(name) {
			continue
		}
		exempt := strings.HasSuffix(name, ".bias") || strings.Contains(name, "norm")
		for i := w.Off; i < w.Off+w.N; i++ {
			ref.decay[i-models[0].P.Buf.Off] = !exempt
		}
		if exempt {
			nodecay++
		}
	}
	if nodecay == 0 {
		t.Fatal("no weight is exempt from decay: the test would not check the mask")
	}
	rng := rand.New(rand.NewPCG(uint64(world), 1))
	for step := 0; step < 3; step++ {
		avg := make([]float64, len(p0))
		for r, m := range models {
			g := kernels.Host(m.P.Grad)
			for i := range g {
				g[i] = float32(rng.NormFloat64() * 1e-3 * float64(1+r))
				avg[i] += float64(g[i]) / float64(world)
			}
		}
		lr := 1e-2
		ref.step(avg, c, lr)
		var wg sync.WaitGroup
		errs := make([]error, world)
		for r := range models {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[r] = opts[r].Step(lr)
			}()
		}
		wg.Wait()
		for r, err := range errs {
			if err != nil {
				t.Fatalf("rank %d: %v", r, err)
			}
		}
		for r, m := range models {
			p := kernels.Host(m.P.Buf)
			for i, want := range ref.p {
				if d := math.Abs(float64(p[i]) - want); d > 1e-6+1e-6*math.Abs(want) {
					t.Fatalf("%d ranks, clip %g, step %d, rank %d: weight %d is %v, AdamW in float64 gives %v", world, clip, step+1, r, i, p[i], want)
				}
			}
		}
	}
}
