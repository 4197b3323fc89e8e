package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"earl/kernels"
	"earl/kernels/cpu"
	"earl/shards/audio"
	"earl/worker/grpo"
	"earl/worker/model"
)

// TestGRPOLossGradientFD checks the gradient the trainer accumulates for
// the GRPO loss (model backward fed with grpo.Loss's d loss / d logp,
// micro-batched and rescaled) against central finite differences of the
// loss itself, evaluated through the model's forward pass, for every
// aggregation and with the batch split into several micro-batches.
func TestGRPOLossGradientFD(t *testing.T) {
	dir := tinyModel(t, model.Qwen25Omni, 5)
	data := synthShards(t, "pitch", 4, 2, audio.Qwen25Omni)
	for _, lt := range []grpo.LossType{grpo.LossGRPO, grpo.LossBNPO, grpo.LossDrGRPO, grpo.LossDAPO} {
		for _, maxTok := range []int{4096, 320} {
			cfg := Default()
			cfg.Model.Path = dir
			cfg.Model.FreezeAudio = false
			cfg.Model.MaxTokens = maxTok
			cfg.GRPO.NumGenerations = 3
			cfg.GRPO.MaxCompletionLength = 10
			cfg.GRPO.LossType = lt
			cfg.GRPO.Beta = 0.3
			cfg.GRPO.EpsilonHigh = 0.28
			cfg.Train.PromptsPerRank = 2
			tr, err := Setup(cpu.New(), cfg, solo{}, dir, data)
			if err != nil {
				t.Fatal(err)
			}
			slots, err := tr.Feed.Next()
			if err != nil {
				t.Fatal(err)
			}
			prompts, err := tr.prompts(slots)
			if err != nil {
				t.Fatal(err)
			}
			comps, err := tr.Gen.Generate(prompts, 3, tr.sampleOpts(1))
			if err != nil {
				t.Fatal(err)
			}
			seqs := make([]Seq, len(comps))
			rng := rand.New(rand.NewPCG(9, 9))
			lb := &grpo.Batch{}
			for i, c := range comps {
				seqs[i] = Seq{Prompt: prompts[i/3].Tokens, Clip: prompts[i/3].Audio[0], Comp: c}
				lb.Advantages = append(lb.Advantages, rng.NormFloat64())
				m := make([]float64, len(c))
				for k := range m {
					if rng.Float64() < 0.9 {
						m[k] = 1
					}
				}
				lb.Mask = append(lb.Mask, m)
			}
			cur, err := logProbs(tr.M, seqs, 1)
			if err != nil {
				t.Fatal(err)
			}
			// Old and reference log-probs near the current ones, so that
			// some ratios fall outside the clip range and the KL is live.
			for _, row := range cur {
				o, r := make([]float64, len(row)), make([]float64, len(row))
				for k, v := range row {
					o[k] = v + 0.3*rng.NormFloat64()
					r[k] = v + 0.5*rng.NormFloat64()
				}
				lb.OldLogP, lb.RefLogP = append(lb.OldLogP, o), append(lb.RefLogP, r)
			}
			lc := cfg.LossConfig()
			lc.NumProcesses = 1
			if mbs, _ := packSeqs(tr.M, seqs); maxTok < 4096 && len(mbs) < 2 {
				t.Fatalf("max_tokens %d gave %d micro-batches; the test wants several", maxTok, len(mbs))
			}
			tr.M.ZeroGrad()
			if _, err := tr.policyGrad(lc, lb, seqs, 1); err != nil {
				t.Fatal(err)
			}
			grad := append([]float32(nil), kernels.Host(tr.M.P.Grad)...)
			loss := func() float64 {
				lp, err := logProbs(tr.M, seqs, 1)
				if err != nil {
					t.Fatal(err)
				}
				b := *lb
				b.LogP = lp
				res, err := grpo.Loss(lc, &b)
				if err != nil {
					t.Fatal(err)
				}
				return res.Loss
			}
			w := kernels.Host(tr.M.P.Buf)
			// The coordinates with the largest gradients, in float32 the
			// ones finite differences resolve, and a directional
			// derivative along the gradient over all weights.
			idx := topK(grad, 6)
			for _, i := range idx {
				const h = 1e-2
				w0 := w[i]
				w[i] = w0 + h
				lp := loss()
				w[i] = w0 - h
				lm := loss()
				w[i] = w0
				fd := (lp - lm) / (2 * h)
				if d := math.Abs(fd - float64(grad[i])); d > 2e-3+2e-2*math.Abs(fd) {
					t.Errorf("%s, max_tokens %d: weight %d: backward %.6g, finite differences %.6g", lt, maxTok, i, grad[i], fd)
				}
			}
			var gn float64
			for _, g := range grad {
				gn += float64(g) * float64(g)
			}
			gn = math.Sqrt(gn)
			w0 := append([]float32(nil), w...)
			step := func(s float64) float64 {
				for i := range grad {
					w[i] = w0[i] + float32(s*float64(grad[i])/gn)
				}
				return loss()
			}
			const h = 1e-2
			fd := (step(h) - step(-h)) / (2 * h)
			copy(w, w0)
			if math.Abs(fd-gn) > 2e-2*gn {
				t.Errorf("%s, max_tokens %d: directional derivative along the gradient: finite differences %.6g, |grad| %.6g", lt, maxTok, fd, gn)
			}
		}
	}
}

func topK(g []float32, k int) []int {
	var idx []int
	for i := range g {
		idx = append(idx, i)
		for j := len(idx) - 1; j > 0 && math.Abs(float64(g[idx[j]])) > math.Abs(float64(g[idx[j-1]])); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
		if len(idx) > k {
			idx = idx[:k]
		}
	}
	return idx
}
