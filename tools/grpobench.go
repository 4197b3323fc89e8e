package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/urfave/cli/v2"

	"earl/collective"
	"earl/kernels/cpu"
	"earl/shards"
	"earl/worker/train"
)

func benchGRPOCommand() *cli.Command {
	return &cli.Command{
		Name:  "grpo",
		Usage: "time GRPO steps of a model on shards, split into rollout, reference, forward-backward, optimizer",
		UsageText: "tools bench grpo --model DIR --shards DIR [--prompts B] [--generations G] [--max-completion N]\n" +
			"   [--steps S] [--json FILE]",
		Description: "Runs S GRPO steps (after one untimed) on one rank with the full model training (audio\n" +
			"tower included) and beta 0.04 (so the reference pass runs), and prints the median time of each\n" +
			"part of a step, completion tokens generated per second of step, and the tokens the\n" +
			"forward-backward pass processes (prompts and completions) per second of it.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true},
			&cli.StringFlag{Name: "shards", Required: true},
			&cli.IntFlag{Name: "prompts", Value: 4, Usage: "prompts per step"},
			&cli.IntFlag{Name: "generations", Value: 8},
			&cli.IntFlag{Name: "max-completion", Value: 32},
			&cli.IntFlag{Name: "steps", Value: 5},
			&cli.StringFlag{Name: "json", Usage: "also write the figures here"},
		},
		Action: benchGRPO,
	}
}

func benchGRPO(c *cli.Context) error {
	data, err := shards.Open(c.String("shards"))
	if err != nil {
		return err
	}
	defer data.Close()
	cfg := train.Default()
	cfg.Model.Path = c.String("model")
	cfg.Model.FreezeAudio = false
	cfg.Data.Train = data.Path
	cfg.Train.PromptsPerRank = c.Int("prompts")
	cfg.Train.LearningRate = 1e-5
	cfg.GRPO.NumGenerations = c.Int("generations")
	cfg.GRPO.MaxCompletionLength = c.Int("max-completion")
	if err := cfg.Validate(); err != nil {
		return err
	}
	comm := collective.NewInProcess(1)[0]
	defer comm.Close()
	tr, err := train.Setup(cpu.New(), cfg, comm, cfg.Model.Path, data)
	if err != nil {
		return err
	}
	steps := c.Int("steps")
	var all []*train.StepStats
	fbTokens := 0
	for s := 0; s <= steps; s++ {
		st, err := tr.GRPOStep()
		if err != nil {
			return err
		}
		if s > 0 { // the first step warms caches and allocators
			all = append(all, st)
			fbTokens += st.ForwardTokens
		}
	}
	med := func(f func(t train.Times) time.Duration) float64 {
		v := make([]float64, len(all))
		for i, st := range all {
			v[i] = f(st.Times).Seconds()
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	var total, comp float64
	for _, st := range all {
		total += st.Times.Total.Seconds()
		comp += float64(st.CompTokens)
	}
	var fb float64
	for _, st := range all {
		fb += st.Times.ForwardBackward.Seconds()
	}
	res := map[string]float64{
		"rollout_s": med(func(t train.Times) time.Duration { return t.Rollout }), "reference_s": med(func(t train.Times) time.Duration { return t.Reference }),
		"forward_backward_s": med(func(t train.Times) time.Duration { return t.ForwardBackward }),
		"optimizer_s":        med(func(t train.Times) time.Duration { return t.Optimizer }),
		"reward_s":           med(func(t train.Times) time.Duration { return t.Reward }), "data_s": med(func(t train.Times) time.Duration { return t.Data }),
		"step_s": med(func(t train.Times) time.Duration { return t.Total }), "completion_tokens_per_s": comp / total,
		"fb_tokens_per_s": float64(fbTokens) / fb, "completions_per_step": float64(all[0].Completions),
		"completion_tokens_per_step": comp / float64(len(all)),
	}
	fmt.Printf("GRPO step (median of %d): %.3fs = rollout %.3f + reference %.3f + forward-backward %.3f + optimizer %.3f + rewards %.4f + data %.4f\n",
		len(all), res["step_s"], res["rollout_s"], res["reference_s"], res["forward_backward_s"], res["optimizer_s"], res["reward_s"], res["data_s"])
	fmt.Printf("%d prompts x %d completions, %.0f completion tokens per step: %.0f completion tokens/s; forward-backward %.0f tokens/s\n",
		cfg.Train.PromptsPerRank, cfg.GRPO.NumGenerations, res["completion_tokens_per_step"], res["completion_tokens_per_s"], res["fb_tokens_per_s"])
	if p := c.String("json"); p != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		return os.WriteFile(p, b, 0o644)
	}
	return nil
}
