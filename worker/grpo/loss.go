// Package grpo holds the mathematics of GRPO-style training as TRL defines
// it: rewards combined per completion, group-relative advantages, the
// clipped policy loss with a k3 KL penalty, and its aggregation over tokens
// (grpo, bnpo, dr_grpo, dapo), with the loss's gradient with respect to
// every completion token's log-probability — which the trainer feeds to the
// model's backward pass. The same code serves `tools grpo-loss`, so anyone
// can check it from outside.
package grpo

import (
	"fmt"
	"math"
)

// Scaling says how advantages are normalised.
type Scaling string

// The scalings (TRL's scale_rewards).
const (
	ScaleGroup Scaling = "group" // divide by the group's std + 1e-4 (GRPO)
	ScaleBatch Scaling = "batch" // divide by the batch's std + 1e-4
	ScaleNone  Scaling = "none"  // no division (Dr. GRPO)
)

// LossType is how per-token losses are aggregated (TRL's loss_type).
type LossType string

// The aggregations.
const (
	LossGRPO   LossType = "grpo"    // mean over each sequence's tokens, then over sequences
	LossBNPO   LossType = "bnpo"    // mean over all tokens of the local batch
	LossDrGRPO LossType = "dr_grpo" // sum / (sequences x max_completion_length)
	LossDAPO   LossType = "dapo"    // sum / (global active tokens / processes)
)

// Config holds the loss options, named as TRL's GRPOConfig names them.
type Config struct {
	NumGenerations      int       `json:"num_generations"`
	RewardWeights       []float64 `json:"reward_weights"`
	MaxCompletionLength int       `json:"max_completion_length"`
	EpsilonLow          float64   `json:"epsilon_low"`
	EpsilonHigh         float64   `json:"epsilon_high"`
	Beta                float64   `json:"beta"`
	// Delta, when set, caps the importance ratio of the unclipped term
	// (TRL's two-sided clipping).
	Delta        *float64 `json:"delta"`
	ScaleRewards Scaling  `json:"scale_rewards"`
	LossType     LossType `json:"loss_type"`
	// NumProcesses and GlobalActiveTokens serve dapo: the normaliser is
	// GlobalActiveTokens / NumProcesses (the batch's active tokens summed
	// over ranks, divided by the rank count). Zero means this batch alone.
	NumProcesses       int `json:"num_processes"`
	GlobalActiveTokens int `json:"global_active_tokens"`
}

// Validate checks the options.
func (c *Config) Validate() error {
	switch {
	case c.NumGenerations < 1:
		return fmt.Errorf("num_generations must be at least 1, got %d", c.NumGenerations)
	case c.MaxCompletionLength < 1 && c.LossType == LossDrGRPO:
		return fmt.Errorf("dr_grpo needs max_completion_length")
	case c.EpsilonLow < 0 || c.EpsilonHigh < 0:
		return fmt.Errorf("epsilon_low and epsilon_high must be non-negative")
	case c.Beta < 0:
		return fmt.Errorf("beta must be non-negative")
	case c.Delta != nil && *c.Delta <= 1:
		return fmt.Errorf("delta must exceed 1 (it caps the importance ratio), got %g", *c.Delta)
	}
	switch c.ScaleRewards {
	case ScaleGroup, ScaleBatch, ScaleNone:
	default:
		return fmt.Errorf("scale_rewards %q: use group, batch or none", c.ScaleRewards)
	}
	switch c.LossType {
	case LossGRPO, LossBNPO, LossDrGRPO, LossDAPO:
	default:
		return fmt.Errorf("loss_type %q: use grpo, bnpo, dr_grpo or dapo", c.LossType)
	}
	return nil
}

// CombineRewards is each completion's weighted sum of its reward functions'
// values: rewards[i][f] for completion i and function f. NaN values (a
// function that does not apply) count as zero, as TRL's nansum does.
func CombineRewards(rewards [][]float64, weights []float64) ([]float64, error) {
	out := make([]float64, len(rewards))
	for i, r := range rewards {
		if len(r) != len(weights) {
			return nil, fmt.Errorf("completion %d has %d reward values for %d reward weights", i, len(r), len(weights))
		}
		for f, v := range r {
			if !math.IsNaN(v) {
				out[i] += weights[f] * v
			}
		}
	}
	return out, nil
}

// Advantages computes group-relative advantages for completions in groups
// of g consecutive rows: r - mean(group), divided by std + 1e-4 (unbiased
// std) of the group or the batch, or not divided. Groups of one have std
// NaN in PyTorch; here their advantage is 0.
func Advantages(rewards []float64, g int, s Scaling) ([]float64, error) {
	if g < 1 || len(rewards)%g != 0 {
		return nil, fmt.Errorf("%d rewards are not whole groups of %d", len(rewards), g)
	}
	adv := make([]float64, len(rewards))
	for k := 0; k < len(rewards); k += g {
		mean, _ := meanStd(rewards[k : k+g])
		for i := k; i < k+g; i++ {
			adv[i] = rewards[i] - mean
		}
	}
	switch s {
	case ScaleGroup:
		for k := 0; k < len(rewards); k += g {
			_, std := meanStd(rewards[k : k+g])
			for i := k; i < k+g; i++ {
				adv[i] /= std + 1e-4
			}
		}
	case ScaleBatch:
		_, std := meanStd(rewards)
		for i := range adv {
			adv[i] /= std + 1e-4
		}
	case ScaleNone:
	default:
		return nil, fmt.Errorf("unknown reward scaling %q", s)
	}
	return adv, nil
}

// GroupStd returns each group's unbiased std (for DAPO's dynamic sampling,
// which drops groups whose rewards are all equal).
func GroupStd(rewards []float64, g int) []float64 {
	out := make([]float64, 0, len(rewards)/g)
	for k := 0; k+g <= len(rewards); k += g {
		_, std := meanStd(rewards[k : k+g])
		out = append(out, std)
	}
	return out
}

// meanStd is the mean and unbiased standard deviation (torch.std's
// default); a single value has std 0 here.
func meanStd(x []float64) (mean, std float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	if len(x) < 2 {
		return mean, 0
	}
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / float64(len(x)-1))
}

// Batch is one loss evaluation: per completion i and token t,
// LogP[i][t] under the current policy, OldLogP the policy that generated
// (nil: the current one, detached — TRL with a single update per batch),
// RefLogP the reference model (nil when Beta is 0), Mask 1 for tokens that
// count (through the first stop token).
type Batch struct {
	Advantages []float64
	LogP       [][]float64
	OldLogP    [][]float64
	RefLogP    [][]float64
	Mask       [][]float64
}

// Result is the loss, its gradient with respect to every LogP entry, and
// the statistics the trainer logs.
type Result struct {
	Loss     float64
	GradLogP [][]float64
	// KL is the masked mean of the k3 estimate; ClipLow, ClipHigh and
	// ClipRegion are the masked fractions of tokens whose ratio was
	// clipped below (negative advantage), above (positive advantage), or
	// either.
	KL, ClipLow, ClipHigh, ClipRegion float64
	ActiveTokens                      int
}

// Loss evaluates the clipped policy loss as TRL's GRPOTrainer computes it:
// coef1 = exp(logp - old), coef2 = clamp(coef1, 1-eps_low, 1+eps_high),
// (coef1 capped at delta when set), per-token loss
// -min(coef1 A, coef2 A) + beta k3 with k3 = exp(ref - logp) - (ref - logp) - 1,
// aggregated per LossType; and d loss / d logp for every token, the
// derivatives torch's autograd gives (clamp passes the gradient inside
// [lo, hi] inclusive and blocks it outside).
func Loss(c *Config, b *Batch) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	n := len(b.LogP)
	if len(b.Advantages) != n || len(b.Mask) != n || (b.OldLogP != nil && len(b.OldLogP) != n) || (b.RefLogP != nil && len(b.RefLogP) != n) {
		return nil, fmt.Errorf("batch rows disagree: %d logp, %d advantages, %d masks", n, len(b.Advantages), len(b.Mask))
	}
	if c.Beta != 0 && b.RefLogP == nil {
		return nil, fmt.Errorf("beta %g needs reference log-probs", c.Beta)
	}
	res := &Result{GradLogP: make([][]float64, n)}
	// Aggregation weights: loss = sum_i sum_t w_i * m_it * l_it.
	var total float64
	rowTok := make([]float64, n)
	for i := range b.Mask {
		if len(b.Mask[i]) != len(b.LogP[i]) {
			return nil, fmt.Errorf("completion %d: %d mask values for %d log-probs", i, len(b.Mask[i]), len(b.LogP[i]))
		}
		for _, m := range b.Mask[i] {
			rowTok[i] += m
		}
		total += rowTok[i]
	}
	res.ActiveTokens = int(total)
	weight := func(i int) float64 {
		switch c.LossType {
		case LossGRPO:
			return 1 / (math.Max(rowTok[i], 1) * float64(n))
		case LossBNPO:
			return 1 / math.Max(total, 1)
		case LossDrGRPO:
			return 1 / (float64(n) * float64(c.MaxCompletionLength))
		default: // dapo
			procs, global := c.NumProcesses, float64(c.GlobalActiveTokens)
			if procs < 1 {
				procs = 1
			}
			if global == 0 {
				global = total * float64(procs)
			}
			return 1 / math.Max(global/float64(procs), 1)
		}
	}
	lo, hi := 1-c.EpsilonLow, 1+c.EpsilonHigh
	var klSum, clipLo, clipHi, clipAny float64
	for i := range b.LogP {
		a := b.Advantages[i]
		w := weight(i)
		res.GradLogP[i] = make([]float64, len(b.LogP[i]))
		for t, lp := range b.LogP[i] {
			old := lp
			if b.OldLogP != nil {
				if len(b.OldLogP[i]) != len(b.LogP[i]) {
					return nil, fmt.Errorf("completion %d: %d old log-probs for %d log-probs", i, len(b.OldLogP[i]), len(b.LogP[i]))
				}
				old = b.OldLogP[i][t]
			}
			coef1 := math.Exp(lp - old)
			dcoef1 := coef1 // d coef1 / d logp
			if c.Delta != nil && coef1 > *c.Delta {
				coef1, dcoef1 = *c.Delta, 0
			}
			raw := math.Exp(lp - old)
			coef2, dcoef2 := raw, raw
			if raw < lo {
				coef2, dcoef2 = lo, 0
			} else if raw > hi {
				coef2, dcoef2 = hi, 0
			}
			l1, l2 := coef1*a, coef2*a
			var l, dl float64
			if l1 <= l2 {
				l, dl = -l1, -dcoef1*a
			} else {
				l, dl = -l2, -dcoef2*a
			}
			m := b.Mask[i][t]
			if c.Beta != 0 {
				if len(b.RefLogP[i]) != len(b.LogP[i]) {
					return nil, fmt.Errorf("completion %d: %d reference log-probs for %d log-probs", i, len(b.RefLogP[i]), len(b.LogP[i]))
				}
				d := b.RefLogP[i][t] - lp
				kl := math.Exp(d) - d - 1
				l += c.Beta * kl
				dl += c.Beta * (1 - math.Exp(d))
				klSum += m * kl
			}
			res.Loss += w * m * l
			res.GradLogP[i][t] = w * m * dl
			if raw < lo && a < 0 {
				clipLo += m
			}
			if raw > hi && a > 0 {
				clipHi += m
			}
			if (raw < lo && a < 0) || (raw > hi && a > 0) {
				clipAny += m
			}
		}
	}
	if total > 0 {
		res.KL, res.ClipLow, res.ClipHigh, res.ClipRegion = klSum/total, clipLo/total, clipHi/total, clipAny/total
	}
	return res, nil
}
