package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"earl/collective"
	"earl/kernels/cpu"
	"earl/slurm"
	"earl/worker/train"
)

func configFlags(timeout time.Duration, why string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "TOML configuration (docs/config.md); defaults apply to keys it leaves out"},
		&cli.StringSliceFlag{Name: "set", Usage: "override a key: --set grpo.beta=0.02 (repeatable; lists as TOML arrays)"},
		&cli.DurationFlag{Name: "timeout", Value: timeout, Usage: "how long a rank waits for a stalled peer before failing" + why +
			" (a peer that dies is reported at once)"},
	}
}

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:      "train",
		Usage:     "train a policy: GRPO, SFT or ReST, resuming from the run's newest checkpoint",
		UsageText: "worker train --config FILE [--set key=value ...] [--force-resume]",
		Description: "Runs one rank of the job described by the config (mode grpo, sft or rest). Every rank\n" +
			"must get the same config. Resumes from the newest complete checkpoint under run_dir when\n" +
			"there is one. On SIGUSR1 or SIGTERM the ranks finish the current step, write a checkpoint\n" +
			"and exit 0 (USR1: ready to be requeued) or 143 (TERM). Metrics go to run_dir/metrics.jsonl\n" +
			"and a progress line per step to stderr (rank 0).",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "force-resume", Usage: "resume even from a checkpoint written with different settings"},
		}, configFlags(10*time.Minute, "; it must exceed the longest time one rank works alone, such as rank 0 writing a checkpoint's weights")...),
		Action: runTrain,
	}
}

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "answer a shard set's questions with a model or checkpoint and score them",
		UsageText: "worker eval --config FILE [--set eval.checkpoint=DIR] [--set eval.out=PRED.jsonl ...]",
		Description: "Greedy (eval.samples = 1) or sampled answers for eval.shards, written as JSONL predictions\n" +
			"(id, output, extracted answer, correct, categories) to eval.out, with accuracy tables in\n" +
			"the .txt and .json files beside it. eval.checkpoint is a training checkpoint directory\n" +
			"(run_dir/checkpoints/step-N); empty evaluates model.path.",
		Flags:  configFlags(60*time.Second, ""),
		Action: runEval,
	}
}

// jobComm connects to the job's other ranks, or returns a one-rank comm
// when the process runs alone.
func jobComm(ctx context.Context, c *cli.Context) (collective.Comm, slurm.Env, error) {
	env, err := slurm.FromEnv(os.Getenv)
	if err != nil {
		return nil, env, fmt.Errorf("job environment: %w", err)
	}
	comm, err := dial(ctx, env, collective.Options{Timeout: c.Duration("timeout")})
	if err != nil {
		return nil, env, fmt.Errorf("rank %d/%d: connect to %s:%d: %w", env.Rank, env.Size, env.MasterAddr, env.MasterPort, err)
	}
	return comm, env, nil
}

func loadConfig(c *cli.Context) (*train.Config, error) {
	if c.NArg() > 0 {
		return nil, cli.Exit(fmt.Sprintf("unexpected arguments %q (options come as --config FILE and --set key=value)", c.Args().Slice()), 2)
	}
	cfg, err := train.Load(c.String("config"), c.StringSlice("set"))
	if err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	return cfg, nil
}

func runTrain(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if cfg.Mode == "eval" {
		return cli.Exit("mode eval: use worker eval", 2)
	}
	var stop atomic.Int32
	var sig atomic.Value
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for s := range ch {
			if stop.Swap(1) == 1 && s == syscall.SIGINT {
				fmt.Fprintln(os.Stderr, "worker: second interrupt: exiting without a checkpoint")
				os.Exit(130)
			}
			sig.Store(s)
			fmt.Fprintf(os.Stderr, "worker: %v: checkpointing after the current step, then exiting\n", s)
		}
	}()
	ctx := context.Background()
	comm, _, err := jobComm(ctx, c)
	if err != nil {
		return err
	}
	defer comm.Close()
	err = train.Run(ctx, cpu.New(), cfg, comm, train.Options{Stop: &stop, ForceResume: c.Bool("force-resume")})
	if errors.Is(err, train.ErrStopped) {
		if s, _ := sig.Load().(os.Signal); s == syscall.SIGTERM {
			return cli.Exit("stopped by SIGTERM after checkpointing", 143)
		}
		fmt.Fprintln(os.Stderr, "worker: stopped after checkpointing; run the same command to resume")
		return nil
	}
	return err
}

func runEval(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	// SIGUSR1 (preemption, or the time limit near, in an sbatch job)
	// stops the evaluation between batches and exits 0 without results, so
	// the job is requeued and the evaluation redone; SIGTERM and SIGINT
	// stop it with an error.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(ch)
	var got atomic.Value
	go func() {
		if s, ok := <-ch; ok {
			got.Store(s)
			cancel()
		}
	}()
	stoppedByUSR1 := func(err error) bool {
		if s, _ := got.Load().(os.Signal); s == syscall.SIGUSR1 && err != nil {
			fmt.Fprintf(os.Stderr, "worker eval: SIGUSR1: stopped before the end, no predictions written; run it again to evaluate (%v)\n", err)
			return true
		}
		return false
	}
	comm, _, err := jobComm(ctx, c)
	if stoppedByUSR1(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer comm.Close()
	res, err := train.Eval(ctx, cpu.New(), cfg, comm, os.Stderr)
	if stoppedByUSR1(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if res.Report != nil {
		if err := res.Report.Write(os.Stdout); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "predictions: %s\n", res.Out)
	}
	return nil
}
