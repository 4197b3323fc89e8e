// Command worker runs one rank of an earl job, started once per GPU by srun
// (the scripts of launcher sbatch) or by launcher run on one machine:
//
//	worker selftest   check the job environment and every collective
//	worker train      GRPO / SFT / ReST training (not built yet)
//	worker eval       offline evaluation (not built yet)
//
// Each subcommand reads its rank, world size and rendezvous from the
// environment (package earl/slurm: Slurm's or torchrun's variables).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"earl/launcher/argorder"
)

func main() {
	app := newApp()
	if err := app.Run(argorder.FlagsFirst(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:      "worker",
		Usage:     "one rank of an earl job (one process per GPU)",
		UsageText: "worker COMMAND [options]   (started by srun or launcher run, which set the job environment)",
		Commands: []*cli.Command{
			selftestCommand(),
			notBuilt("train", "train a policy: GRPO, SFT or ReST (not built yet)"),
			notBuilt("eval", "evaluate a model on shard directories (not built yet)"),
		},
		Action: func(c *cli.Context) error {
			cli.ShowAppHelp(c)
			return cli.Exit("name a command: selftest, train or eval", 2)
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints errors once
	}
}

// notBuilt is a placeholder subcommand that fails loudly, with status 2,
// until its issue lands, so that scripts never mistake it for success.
func notBuilt(name, usage string) *cli.Command {
	return &cli.Command{
		Name:            name,
		Usage:           usage,
		SkipFlagParsing: true,
		Action: func(*cli.Context) error {
			return cli.Exit("train and eval are not built yet in this version of earl (see README: Status)", 2)
		},
	}
}
