package train

import (
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"earl/collective"
	"earl/kernels"
	"earl/shards"
	"earl/worker/grpo"
	"earl/worker/model"
	"earl/worker/score"
	"earl/worker/tokenizer"
)

// Trainer is one rank of a training job.
type Trainer struct {
	Cfg  *Config
	Comm collective.Comm
	M    *model.Model
	// Ref is the frozen reference policy for the KL term when the whole
	// model trains (nil with LoRA, whose reference is the base model with
	// the adapters off, and when beta is 0).
	Ref  *model.Model
	LoRA *model.LoRA
	Gen  *model.Generator
	Opt  *Optimizer
	P    *Prompter
	Feed *Feed
	Rew  *grpo.Rewards

	// Step is the number of completed steps.
	Step int
	// Log receives progress lines (rank 0); nil discards them.
	Log io.Writer
}

// loadPrompter reads the model's config and tokenizer from model.path and
// makes the prompt builder of the data settings.
func loadPrompter(cfg *Config) (*Prompter, error) {
	mc, err := model.LoadConfig(cfg.Model.Path)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.LoadDir(cfg.Model.Path)
	if err != nil {
		return nil, fmt.Errorf("model.path %s: tokenizer: %w", cfg.Model.Path, err)
	}
	p, err := NewPrompter(tok, mc, cfg.Data)
	if err != nil {
		return nil, fmt.Errorf("model.path %s: %w", cfg.Model.Path, err)
	}
	return p, nil
}

// Setup loads the model (and its reference), tokenizer and data for a
// training config on one rank. The model weights come from dir (the
// config's model path, or a checkpoint's weights directory on resume).
func Setup(dev kernels.Device, cfg *Config, comm collective.Comm, dir string, data *shards.Dir) (*Trainer, error) {
	p, err := loadPrompter(cfg)
	if err != nil {
		return nil, err
	}
	t := &Trainer{Cfg: cfg, Comm: comm, P: p}
	b := cfg.Train.PromptsPerRank
	seqs := b
	genSlots := b
	switch cfg.Mode {
	case "grpo":
		seqs, genSlots = b*cfg.GRPO.NumGenerations, b*cfg.GRPO.NumGenerations
	case "rest":
		seqs, genSlots = b*cfg.ReST.Samples, b*cfg.ReST.Samples
	}
	lim := model.Limits{MaxTokens: cfg.Model.MaxTokens, MaxSeqs: seqs, MaxAudio: seqs, MaxAudioRows: cfg.Model.MaxAudioRows}
	lora := cfg.Model.LoRARank > 0
	fr := model.Freeze{Audio: cfg.Model.FreezeAudio, Projector: cfg.Model.FreezeProj, Text: lora}
	if t.M, err = model.Load(dev, dir, fr, lim); err != nil {
		return nil, err
	}
	if lora {
		lc := model.LoRAConfig{Rank: cfg.Model.LoRARank, Alpha: cfg.Model.LoRAAlpha, Targets: cfg.Model.LoRATargets, Seed: cfg.Seed}
		if t.LoRA, err = t.M.AddLoRA(lc); err != nil {
			return nil, fmt.Errorf("model.lora_*: %w", err)
		}
	}
	if cfg.Mode == "grpo" && cfg.GRPO.Beta != 0 && !lora {
		// The reference is the starting policy: the model path, not a
		// resumed checkpoint.
		all := model.Freeze{Audio: true, Projector: true, Text: true}
		if t.Ref, err = model.Load(dev, cfg.Model.Path, all, lim); err != nil {
			return nil, fmt.Errorf("reference model: %w", err)
		}
	}
	if cfg.Mode != "sft" {
		maxNew := cfg.GRPO.MaxCompletionLength
		if t.Gen, err = t.M.NewGenerator(model.GenLimits{Slots: genSlots, MaxLen: cfg.Model.MaxPromptTokens + maxNew}); err != nil {
			return nil, err
		}
	}
	if t.Opt, err = NewOptimizer(t.M, comm, cfg.Train); err != nil {
		return nil, err
	}
	t.Opt.Total = cfg.TotalSteps()
	if cfg.Mode == "grpo" {
		t.Opt.Total *= cfg.GRPO.NumIterations
	}
	if t.Rew, err = grpo.NewRewards(cfg.GRPO.Rewards); err != nil {
		return nil, fmt.Errorf("grpo.rewards: %w", err)
	}
	if data != nil {
		if t.Feed, err = NewFeed(data, cfg.Seed, comm.Rank(), comm.Size(), b, Cursor{}); err != nil {
			return nil, fmt.Errorf("data.train: %w", err)
		}
	}
	return t, nil
}

// StepStats are one step's numbers, summed over ranks where that makes
// sense; Metrics turns them into the logged means.
type StepStats struct {
	Step         int
	LR           float64
	GradNorm     float64
	Loss         float64
	Completions  int
	RewardNames  []string
	RewardSum    []float64 // per function, unweighted
	RewardSqSum  []float64
	TotalSum     float64 // weighted total reward
	TotalSqSum   float64
	Correct      int
	KLTok        float64 // KL x active tokens
	ClipTok      float64
	EntropyTok   float64
	ActiveTokens int
	CompTokens   int // completion tokens generated
	// ForwardTokens are the tokens (prompts and completions) the policy's
	// forward-backward passes processed.
	ForwardTokens int
	MaxCompLen    int
	Truncated     int
	Dropped       int // groups dropped by dynamic sampling
	Times         Times
}

// Times splits a step's wall time.
type Times struct {
	Data, Rollout, Reward, Reference, ForwardBackward, Optimizer, Comm time.Duration
	Total                                                              time.Duration
}

// sampleOpts are the generation settings of GRPO rollouts.
func (t *Trainer) sampleOpts(temperature float64) model.SampleOptions {
	g := t.Cfg.GRPO
	return model.SampleOptions{Temperature: float32(temperature), TopK: g.TopK, TopP: float32(g.TopP),
		MaxNewTokens: g.MaxCompletionLength, Stop: t.P.Stop, Suppress: t.P.Suppress}
}

// prompts builds the generation prompts of a step's slots.
func (t *Trainer) prompts(slots []Slot) ([]model.Prompt, error) {
	out := make([]model.Prompt, len(slots))
	for i, s := range slots {
		ids, clip, err := t.P.Prompt(s.Rec)
		if err != nil {
			return nil, err
		}
		if len(ids) > t.Cfg.Model.MaxPromptTokens {
			return nil, fmt.Errorf("sample %s (index %d) has a prompt of %d tokens, more than model.max_prompt_tokens %d: raise it or shorten the audio", s.Rec.ID, s.Index, len(ids), t.Cfg.Model.MaxPromptTokens)
		}
		out[i] = model.Prompt{Tokens: ids, Audio: []model.Clip{clip}, Seed: SampleSeed(t.Cfg.Seed, s.Epoch, s.Pos)}
	}
	return out, nil
}

// nextBatch takes the rank's next prompts from the feed, timing it as the
// step's data time.
func (t *Trainer) nextBatch(st *StepStats) ([]Slot, []model.Prompt, error) {
	t0 := time.Now()
	slots, err := t.Feed.Next()
	if err != nil {
		return nil, nil, err
	}
	prompts, err := t.prompts(slots)
	if err != nil {
		return nil, nil, err
	}
	st.Times.Data = time.Since(t0)
	return slots, prompts, nil
}

// rolled is one generation round: k completions per prompt, in prompt
// order, with their rewards and verdicts.
type rolled struct {
	comps   [][]int32
	items   []grpo.Item
	perFunc [][]float64 // per completion, per reward function
	total   []float64   // weighted sum
	correct []bool      // the extracted answer is right (data.answer_rule)
	stopped []bool      // ended by a stop token
}

// rollout samples k completions of each prompt with the current policy
// (LoRA adapters on) and scores them, adding the rollout and reward
// times, completion counts and reward sums to st.
func (t *Trainer) rollout(st *StepStats, slots []Slot, prompts []model.Prompt, k int, temperature float64) (*rolled, error) {
	t1 := time.Now()
	comps, err := t.Gen.Generate(prompts, k, t.sampleOpts(temperature))
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	st.Times.Rollout = time.Since(t1)

	t2 := time.Now()
	r := &rolled{comps: comps, items: make([]grpo.Item, len(comps)), correct: make([]bool, len(comps)), stopped: make([]bool, len(comps))}
	for i, c := range comps {
		rec := slots[i/k].Rec
		r.items[i] = Item(rec, t.P.Completion(c))
		r.stopped[i] = t.P.Stopped(c)
		if !r.stopped[i] {
			st.Truncated++
		}
		st.CompTokens += len(c)
		st.MaxCompLen = max(st.MaxCompLen, len(c))
		ans, ok := score.Extract(r.items[i].Completion, score.FallbackNone)
		if r.correct[i] = ok && score.Correct(t.Cfg.Data.AnswerRule, ans, rec.Answer, rec.Choices); r.correct[i] {
			st.Correct++
		}
	}
	r.perFunc = t.Rew.Score(r.items)
	if r.total, err = grpo.CombineRewards(r.perFunc, t.Rew.Weights); err != nil {
		return nil, err
	}
	st.Completions = len(comps)
	st.RewardSum = make([]float64, len(t.Rew.Funcs))
	st.RewardSqSum = make([]float64, len(t.Rew.Funcs))
	for i, fs := range r.perFunc {
		for f, v := range fs {
			if !math.IsNaN(v) {
				st.RewardSum[f] += v
				st.RewardSqSum[f] += v * v
			}
		}
		st.TotalSum += r.total[i]
		st.TotalSqSum += r.total[i] * r.total[i]
	}
	st.Times.Reward = time.Since(t2)
	return r, nil
}

// GRPOStep runs one generation round: rollouts, rewards, advantages, then
// num_iterations clipped-policy updates on them.
func (t *Trainer) GRPOStep() (*StepStats, error) {
	cfg, g := t.Cfg, t.Cfg.GRPO
	G := g.NumGenerations
	st := &StepStats{Step: t.Step + 1, RewardNames: t.Rew.Names()}
	t0 := time.Now()
	slots, prompts, err := t.nextBatch(st)
	if err != nil {
		return nil, err
	}
	r, err := t.rollout(st, slots, prompts, G, g.Temperature)
	if err != nil {
		return nil, err
	}
	rewards := r.total

	t2 := time.Now()
	seqs := make([]Seq, len(r.comps))
	mask := make([][]float64, len(r.comps))
	for i, c := range r.comps {
		seqs[i] = Seq{Prompt: prompts[i/G].Tokens, Clip: prompts[i/G].Audio[0], Comp: c}
		st.ForwardTokens += g.NumIterations * (len(prompts[i/G].Tokens) + len(c))
		mask[i] = make([]float64, len(c))
		if r.stopped[i] || !g.MaskTruncated {
			for k := range mask[i] {
				mask[i][k] = 1
			}
		}
	}
	adv, err := t.advantages(rewards, G)
	if err != nil {
		return nil, err
	}
	if g.DynamicSampling {
		// DAPO: a group whose completions all got the same reward carries
		// no signal; leave it out of the loss.
		for k, sd := range grpo.GroupStd(rewards, G) {
			if sd == 0 {
				st.Dropped++
				for i := k * G; i < (k+1)*G; i++ {
					for j := range mask[i] {
						mask[i][j] = 0
					}
				}
			}
		}
	}
	st.Times.Reward += time.Since(t2)

	lc := cfg.LossConfig()
	lc.NumProcesses = t.Comm.Size()
	if lc.LossType == grpo.LossDAPO {
		active := 0.0
		for _, m := range mask {
			for _, v := range m {
				active += v
			}
		}
		tot := []float64{active}
		tc := time.Now()
		if err := t.Comm.AllReduce64(tot, collective.Sum); err != nil {
			return nil, err
		}
		st.Times.Comm += time.Since(tc)
		lc.GlobalActiveTokens = int(tot[0])
	}
	lb := &grpo.Batch{Advantages: adv, Mask: mask}
	temp := g.Temperature
	if temp == 0 {
		temp = 1
	}
	if g.NumIterations > 1 {
		// The generating policy's log-probs, kept for every update of the
		// round (TRL's old_per_token_logps).
		t3 := time.Now()
		if lb.OldLogP, err = logProbs(t.M, seqs, temp); err != nil {
			return nil, err
		}
		st.Times.Reference += time.Since(t3)
	}
	if g.Beta != 0 {
		t3 := time.Now()
		if lb.RefLogP, err = t.refLogProbs(seqs, temp); err != nil {
			return nil, err
		}
		st.Times.Reference += time.Since(t3)
	}
	for it := 0; it < g.NumIterations; it++ {
		t4 := time.Now()
		t.M.ZeroGrad()
		stats, err := t.policyGrad(lc, lb, seqs, temp)
		if err != nil {
			return nil, err
		}
		st.Times.ForwardBackward += time.Since(t4)
		if it == 0 {
			st.Loss, st.KLTok, st.ClipTok, st.EntropyTok, st.ActiveTokens = stats.loss, stats.klTok, stats.clipTok, stats.entTok, stats.active
		}
		t5 := time.Now()
		st.LR = t.Opt.LR(t.Opt.Steps())
		norm, err := t.Opt.Step(st.LR)
		if err != nil {
			return nil, err
		}
		if it == 0 {
			st.GradNorm = norm
		}
		st.Times.Optimizer += time.Since(t5) - t.Opt.CommTime
		st.Times.Comm += t.Opt.CommTime
	}
	t.Step++
	st.Times.Total = time.Since(t0)
	return st, nil
}

// advantages computes group-relative advantages; batch scaling divides by
// the std of every reward in the global batch.
func (t *Trainer) advantages(rewards []float64, G int) ([]float64, error) {
	s := t.Cfg.GRPO.ScaleRewards
	if s != grpo.ScaleBatch || t.Comm.Size() == 1 {
		return grpo.Advantages(rewards, G, s)
	}
	adv, err := grpo.Advantages(rewards, G, grpo.ScaleNone)
	if err != nil {
		return nil, err
	}
	var agg [3]float64
	for _, r := range rewards {
		agg[0]++
		agg[1] += r
	}
	if err := t.Comm.AllReduce64(agg[:2], collective.Sum); err != nil {
		return nil, err
	}
	mean := agg[1] / agg[0]
	for _, r := range rewards {
		agg[2] += (r - mean) * (r - mean)
	}
	if err := t.Comm.AllReduce64(agg[2:], collective.Sum); err != nil {
		return nil, err
	}
	std := 0.0
	if agg[0] > 1 {
		std = math.Sqrt(agg[2] / (agg[0] - 1))
	}
	for i := range adv {
		adv[i] /= std + 1e-4
	}
	return adv, nil
}

// refLogProbs evaluates the reference policy.
func (t *Trainer) refLogProbs(seqs []Seq, temp float64) ([][]float64, error) {
	if t.LoRA != nil {
		t.LoRA.Enabled = false
		defer func() { t.LoRA.Enabled = true }()
		return logProbs(t.M, seqs, temp)
	}
	return logProbs(t.Ref, seqs, temp)
}

type gradStats struct {
	loss                   float64
	klTok, clipTok, entTok float64
	active                 int
}

// policyGrad accumulates the gradient of the GRPO loss over seqs. The
// loss is evaluated per micro-batch and rescaled to the local batch's
// aggregation: per-token gradients depend only on the token and on the
// normaliser, so the sum over micro-batches equals the whole batch's.
func (t *Trainer) policyGrad(lc *grpo.Config, lb *grpo.Batch, seqs []Seq, temp float64) (gradStats, error) {
	var gs gradStats
	n := len(seqs)
	total := 0.0
	for _, m := range lb.Mask {
		for _, v := range m {
			total += v
		}
	}
	if lc.LossType == grpo.LossDAPO && lc.GlobalActiveTokens == 0 {
		// This batch alone: its normaliser must not shrink to a
		// micro-batch's tokens.
		c := *lc
		c.GlobalActiveTokens = int(total) * max(1, c.NumProcesses)
		lc = &c
	}
	err := forEachMicro(t.M, seqs, temp, func(mb micro, logp, ent [][]float32) error {
		sub := &grpo.Batch{Advantages: lb.Advantages[mb.lo:mb.hi], Mask: lb.Mask[mb.lo:mb.hi], LogP: make([][]float64, len(logp))}
		if lb.OldLogP != nil {
			sub.OldLogP = lb.OldLogP[mb.lo:mb.hi]
		}
		if lb.RefLogP != nil {
			sub.RefLogP = lb.RefLogP[mb.lo:mb.hi]
		}
		for i, lp := range logp {
			sub.LogP[i] = f64(lp)
		}
		res, err := grpo.Loss(lc, sub)
		if err != nil {
			return err
		}
		scale := 1.0
		switch lc.LossType {
		case grpo.LossGRPO, grpo.LossDrGRPO:
			scale = float64(mb.hi-mb.lo) / float64(n)
		case grpo.LossBNPO:
			scale = math.Max(float64(res.ActiveTokens), 1) / math.Max(total, 1)
		}
		var dlogp []float32
		for i, row := range res.GradLogP {
			for k, d := range row {
				dlogp = append(dlogp, float32(d*scale))
				gs.entTok += float64(ent[i][k]) * sub.Mask[i][k]
			}
		}
		gs.loss += res.Loss * scale
		a := float64(res.ActiveTokens)
		gs.klTok += res.KL * a
		gs.clipTok += res.ClipRegion * a
		gs.active += res.ActiveTokens
		return t.M.Backward(dlogp, nil)
	})
	return gs, err
}

// sftGrad accumulates the gradient of the token-mean cross-entropy of
// seqs' completions (Hugging Face's causal-LM loss with the prompt
// labelled -100). It returns the loss and the token count.
func (t *Trainer) sftGrad(seqs []Seq) (float64, int, error) {
	total := 0
	for _, s := range seqs {
		total += len(s.Comp)
	}
	var loss float64
	err := forEachMicro(t.M, seqs, 1, func(mb micro, logp, _ [][]float32) error {
		var dlogp []float32
		for _, row := range logp {
			for _, lp := range row {
				loss -= float64(lp) / float64(total)
				dlogp = append(dlogp, float32(-1/float64(total)))
			}
		}
		return t.M.Backward(dlogp, nil)
	})
	return loss, total, err
}

// SFTStep trains one step on the reference answers (or reasoning traces)
// of the next batch.
func (t *Trainer) SFTStep() (*StepStats, error) {
	st := &StepStats{Step: t.Step + 1}
	t0 := time.Now()
	slots, prompts, err := t.nextBatch(st)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	seqs := make([]Seq, len(slots))
	for i, s := range slots {
		text, err := Target(s.Rec, t.Cfg.SFT.Target)
		if err != nil {
			return nil, err
		}
		seqs[i] = Seq{Prompt: prompts[i].Tokens, Clip: prompts[i].Audio[0], Comp: t.P.SFTTokens(text)}
	}
	st.Times.Data += time.Since(t1)
	if err := t.update(st, seqs, t.Opt.LR(t.Opt.Steps())); err != nil {
		return nil, err
	}
	t.Step++
	st.Times.Total = time.Since(t0)
	return st, nil
}

// update takes one cross-entropy step on seqs.
func (t *Trainer) update(st *StepStats, seqs []Seq, lr float64) error {
	t1 := time.Now()
	t.M.ZeroGrad()
	loss, n, err := t.sftGrad(seqs)
	if err != nil {
		return err
	}
	st.Loss, st.ActiveTokens = loss, n
	st.Times.ForwardBackward = time.Since(t1)
	t2 := time.Now()
	st.LR = lr
	if st.GradNorm, err = t.Opt.Step(lr); err != nil {
		return err
	}
	st.Times.Optimizer = time.Since(t2) - t.Opt.CommTime
	st.Times.Comm += t.Opt.CommTime
	return nil
}

// ReSTStep grows and improves once: it samples rest.samples completions
// per prompt, keeps the correct ones (all, the best by total reward, or
// the top k), and takes a cross-entropy step on them. The learning rate is
// the iteration's (rest.learning_rates, iterations of
// rest.steps_per_iteration steps).
func (t *Trainer) ReSTStep() (*StepStats, error) {
	r := t.Cfg.ReST
	st := &StepStats{Step: t.Step + 1, RewardNames: t.Rew.Names()}
	t0 := time.Now()
	slots, prompts, err := t.nextBatch(st)
	if err != nil {
		return nil, err
	}
	ro, err := t.rollout(st, slots, prompts, r.Samples, t.Cfg.GRPO.Temperature)
	if err != nil {
		return nil, err
	}
	comps := ro.comps
	var seqs []Seq
	for k := range slots {
		lo := k * r.Samples
		usable := make([]bool, r.Samples)
		for j := range usable {
			usable[j] = ro.correct[lo+j] && ro.stopped[lo+j]
		}
		for _, j := range restKeep(usable, ro.total[lo:lo+r.Samples], r.Keep, r.TopK) {
			seqs = append(seqs, Seq{Prompt: prompts[k].Tokens, Clip: prompts[k].Audio[0], Comp: comps[lo+j]})
		}
	}
	iter := t.Step / max(1, r.StepsPerIter)
	lr := t.Opt.LR(t.Opt.Steps())
	if iter < len(r.LearningRates) {
		lr = r.LearningRates[iter]
	}
	if len(seqs) == 0 {
		// Nothing correct on this rank: a zero gradient, but the rank
		// still joins the collectives.
		t.M.ZeroGrad()
		t2 := time.Now()
		st.LR = lr
		if st.GradNorm, err = t.Opt.Step(lr); err != nil {
			return nil, err
		}
		st.Times.Optimizer = time.Since(t2)
	} else if err := t.update(st, seqs, lr); err != nil {
		return nil, err
	}
	t.Step++
	st.Times.Total = time.Since(t0)
	return st, nil
}

// restKeep picks which of one prompt's samples ReST learns from: the
// usable ones (correct and ended by a stop token), all of them, the one
// with the highest total reward ("best") or the topK highest ("topk");
// ties keep sampling order.
func restKeep(usable []bool, total []float64, keep string, topK int) []int {
	var good []int
	for j, ok := range usable {
		if ok {
			good = append(good, j)
		}
	}
	sort.SliceStable(good, func(a, b int) bool { return total[good[a]] > total[good[b]] })
	switch keep {
	case "best":
		good = good[:min(1, len(good))]
	case "topk":
		good = good[:min(topK, len(good))]
	}
	return good
}
