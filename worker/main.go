// Command worker runs one rank of an earl job, started once per GPU by srun
// (the scripts of launcher sbatch) or by launcher run on one machine:
//
//	worker selftest   check the job environment and every collective
//	worker train      GRPO / SFT / ReST training
//	worker eval       offline evaluation
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
			trainCommand(),
			evalCommand(),
		},
		Action: func(c *cli.Context) error {
			cli.ShowAppHelp(c)
			return cli.Exit("name a command: selftest, train or eval", 2)
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints errors once
	}
}
