package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"earl/worker/grpo"
)

func grpoLossCommand() *cli.Command {
	return &cli.Command{
		Name:      "grpo-loss",
		Usage:     "compute advantages, loss and d loss / d logp of one GRPO batch, with the trainer's code",
		UsageText: "tools grpo-loss --input CASE.json",
		Description: `CASE.json: {"num_generations", "rewards" (per completion, one value per reward function),
"reward_weights", "logp", "old_logp" (or null), "ref_logp" (or null), "mask" (per token),
"max_completion_length", "epsilon_low", "epsilon_high", "beta", "delta" (or null),
"scale_rewards" (group | batch | none), "loss_type" (grpo | bnpo | dr_grpo | dapo),
"num_processes", "global_active_tokens" (or null)}; completions in groups of num_generations
consecutive rows. Prints {"rewards", "advantages", "loss", "grad_logp", "kl", "clip_ratio"}.`,
		Flags:  []cli.Flag{&cli.StringFlag{Name: "input", Required: true}},
		Action: runGRPOLoss,
	}
}

type grpoCase struct {
	grpo.Config
	Rewards            [][]float64 `json:"rewards"`
	LogP               [][]float64 `json:"logp"`
	OldLogP            [][]float64 `json:"old_logp"`
	RefLogP            [][]float64 `json:"ref_logp"`
	Mask               [][]float64 `json:"mask"`
	GlobalActiveTokens *int        `json:"global_active_tokens"`
}

func runGRPOLoss(c *cli.Context) error {
	b, err := os.ReadFile(c.String("input"))
	if err != nil {
		return err
	}
	var cs grpoCase
	if err := json.Unmarshal(b, &cs); err != nil {
		return fmt.Errorf("%s: %w", c.String("input"), err)
	}
	if cs.GlobalActiveTokens != nil {
		cs.Config.GlobalActiveTokens = *cs.GlobalActiveTokens
	}
	if cs.ScaleRewards == "" {
		cs.ScaleRewards = grpo.ScaleGroup
	}
	if cs.LossType == "" {
		cs.LossType = grpo.LossGRPO
	}
	if len(cs.RewardWeights) == 0 && len(cs.Rewards) > 0 {
		cs.RewardWeights = make([]float64, len(cs.Rewards[0]))
		for i := range cs.RewardWeights {
			cs.RewardWeights[i] = 1
		}
	}
	r, err := grpo.CombineRewards(cs.Rewards, cs.RewardWeights)
	if err != nil {
		return fmt.Errorf("%s: %w", c.String("input"), err)
	}
	adv, err := grpo.Advantages(r, cs.NumGenerations, cs.ScaleRewards)
	if err != nil {
		return fmt.Errorf("%s: %w", c.String("input"), err)
	}
	res, err := grpo.Loss(&cs.Config, &grpo.Batch{Advantages: adv, LogP: cs.LogP, OldLogP: cs.OldLogP, RefLogP: cs.RefLogP, Mask: cs.Mask})
	if err != nil {
		return fmt.Errorf("%s: %w", c.String("input"), err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"rewards": r, "advantages": adv, "loss": res.Loss, "grad_logp": res.GradLogP,
		"kl": res.KL, "clip_ratio": map[string]float64{"low": res.ClipLow, "high": res.ClipHigh, "region": res.ClipRegion}})
}

func rewardsCommand() *cli.Command {
	return &cli.Command{
		Name:      "rewards",
		Usage:     "print every reward function's value for each completion",
		UsageText: "tools rewards --input OUTPUTS.json",
		Description: `OUTPUTS.json: a list of {"completion", "solution", "choices", "think_target_words"}.
Prints one JSON object per item with every reward function at its defaults and every variant
(accuracy by choice, MMAU token rule, exact text, whole-completion fallback; format answer / think /
audsem; length budget / target; entailment).`,
		Flags: []cli.Flag{&cli.StringFlag{Name: "input", Required: true}},
		Action: func(c *cli.Context) error {
			b, err := os.ReadFile(c.String("input"))
			if err != nil {
				return err
			}
			var items []grpo.Item
			if err := json.Unmarshal(b, &items); err != nil {
				return fmt.Errorf("%s: want a JSON list of {completion, solution, choices, think_target_words}: %w", c.String("input"), err)
			}
			names, values := grpo.AllRewards(items)
			enc := json.NewEncoder(os.Stdout)
			for i := range items {
				row := map[string]float64{}
				for f, n := range names {
					row[n] = values[i][f]
				}
				if err := enc.Encode(row); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
