package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"earl/worker/ckpt"
	"earl/worker/train"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a training checkpoint as a Hugging Face model directory",
		UsageText: "launcher export --ckpt RUN/checkpoints/step-N --out HFDIR [--base MODEL] [--dtype bf16|f32]",
		Description: "Writes config.json, the tokenizer files and the weights (bf16 safetensors by default;\n" +
			"LoRA adapters merged into their base weights) of a checkpoint, so that transformers,\n" +
			"tools logits and worker eval load it like any released model. The base model (for its\n" +
			"config and tokenizer) defaults to the run's model.path, read from RUN/config.toml.\n" +
			"The directory appears complete or not at all.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ckpt", Required: true, Usage: "checkpoint directory (RUN/checkpoints/step-N)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "output model directory (must not exist)"},
			&cli.StringFlag{Name: "base", Usage: "the model the run started from (default: model.path of RUN/config.toml)"},
			&cli.StringFlag{Name: "dtype", Value: "bf16", Usage: "bf16, f16 or f32"},
		},
		Action: runExport,
	}
}

func runExport(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("unexpected arguments %q", c.Args().Slice()), 2)
	}
	dtype := map[string]ckpt.DType{"bf16": ckpt.BF16, "f16": ckpt.F16, "f32": ckpt.F32}[c.String("dtype")]
	if dtype == "" {
		return cli.Exit(fmt.Sprintf("--dtype %q: use bf16, f16 or f32", c.String("dtype")), 2)
	}
	step := c.String("ckpt")
	base := c.String("base")
	if base == "" {
		// RUN/checkpoints/step-N -> RUN/config.toml
		run := filepath.Dir(filepath.Dir(filepath.Clean(step)))
		cfgPath := filepath.Join(run, "config.toml")
		if _, err := os.Stat(cfgPath); err != nil {
			return fmt.Errorf("export: no --base given and %s is not readable (%v): name the base model with --base", cfgPath, err)
		}
		cfg, err := train.Load(cfgPath, nil)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		base = cfg.Model.Path
	}
	if err := train.Export(step, base, c.String("out"), dtype); err != nil {
		return err
	}
	fmt.Printf("exported %s (base %s) to %s as %s\n", step, base, c.String("out"), dtype)
	return nil
}
