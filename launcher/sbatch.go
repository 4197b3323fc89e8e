package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"earl/slurm"
	"earl/worker/train"
)

func sbatchCommand() *cli.Command {
	return &cli.Command{
		Name:      "sbatch",
		Usage:     "write an sbatch script that runs one worker per GPU with srun",
		UsageText: "launcher sbatch --config FILE --nodes N --gpus-per-node G --out FILE [options]",
		Description: "Writes a batch script with the #SBATCH options of the job, the rendezvous and NCCL\n" +
			"environment, a fresh job token, srun --kill-on-bad-exit, and a USR1 trap that lets the\n" +
			"workers checkpoint before the time limit or a preemption and then requeues the job.\n" +
			"Flags left unset come from the config's optional [slurm] table (docs/slurm.md). Without\n" +
			"--command the config is checked as worker train will read it.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "job config (TOML), as the workers open it from the submit directory", Required: true},
			&cli.StringFlag{Name: "out", Usage: "script to write", Required: true},
			&cli.StringFlag{Name: "command", Usage: "each task's command line", DefaultText: "worker train --config CONFIG"},
		}, jobFlags()...),
		Action: runSbatch,
	}
}

func runSbatch(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("sbatch takes no arguments (got %q): see launcher sbatch --help", c.Args().Slice()), 2)
	}
	cfg := c.String("config")
	def, err := slurm.ReadDefaults(cfg)
	if err != nil {
		return err
	}
	s, err := scriptFromFlags(c, cfg, def)
	if err != nil {
		return err
	}
	s.Command = c.String("command")
	// The job runs worker train on this config: check it now rather than
	// after the job has waited in the queue. Another command (worker
	// selftest) may use a config that holds only the [slurm] table.
	if !c.IsSet("command") {
		if _, err := train.Load(cfg, nil); err != nil {
			return cli.Exit(fmt.Sprintf("%v\n(the job would run worker train --config %s; fix the config, or give --command)", err, cfg), 1)
		}
	}
	out := c.String("out")
	if err := writeScript(s, out); err != nil {
		return err
	}
	gpu := "--gpus-per-task=1"
	if s.GPUFlag == slurm.GPUGres {
		gpu = fmt.Sprintf("--gres=gpu:%d", s.GPUsPerNode)
	}
	fmt.Printf("wrote %s: %d node(s) x %d GPU(s) (%s), %d ranks; submit from this directory with: sbatch %s\n",
		out, s.Nodes, s.GPUsPerNode, gpu, s.Nodes*s.GPUsPerNode, out)
	return nil
}

// writeScript creates the job's log directory (Slurm will not) and
// writes the script.
func writeScript(s slurm.Script, out string) error {
	if s.LogDir != "" {
		if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
			return fmt.Errorf("log directory: %w", err)
		}
	}
	return s.WriteFile(out)
}

// jobFlags are the flags of a Slurm job's shape and place, shared by
// launcher sbatch and launcher eval; unset ones come from the config's
// [slurm] table.
func jobFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "nodes", Usage: "nodes", DefaultText: "[slurm] nodes, else 1"},
		&cli.IntFlag{Name: "gpus-per-node", Usage: "GPUs per node = ranks per node", DefaultText: "[slurm] gpus_per_node"},
		&cli.StringFlag{Name: "gpu-flag", Usage: "how to ask for GPUs: per-task (--gpus-per-task=1) or gres (--gres=gpu:G)", DefaultText: "[slurm] gpu_flag, else per-task"},
		&cli.IntFlag{Name: "cpus-per-task", Usage: "CPUs per rank", DefaultText: "[slurm] cpus_per_task, else 1"},
		&cli.StringFlag{Name: "time", Usage: "time limit, e.g. 24:00:00 or 2-00:00:00", DefaultText: "[slurm] time, else the partition's"},
		&cli.StringFlag{Name: "partition", Usage: "partition", DefaultText: "[slurm] partition, else the site's"},
		&cli.StringFlag{Name: "account", Usage: "account to charge", DefaultText: "[slurm] account"},
		&cli.StringFlag{Name: "qos", Usage: "quality of service", DefaultText: "[slurm] qos"},
		&cli.StringFlag{Name: "job-name", Usage: "job name", DefaultText: "[slurm] job_name, else the config's base name"},
		&cli.StringFlag{Name: "log-dir", Usage: "directory of the job's output file %x-%j.out, created now", DefaultText: "[slurm] log_dir, else the submit directory"},
	}
}

// scriptFromFlags builds a script from the job flags over the config's
// [slurm] defaults, with a fresh token.
func scriptFromFlags(c *cli.Context, cfg string, def slurm.Defaults) (slurm.Script, error) {
	str := func(flag, fromConfig string) string {
		if c.IsSet(flag) {
			return c.String(flag)
		}
		return fromConfig
	}
	num := func(flag string, fromConfig, dflt int) int {
		if c.IsSet(flag) {
			return c.Int(flag)
		}
		if fromConfig != 0 {
			return fromConfig
		}
		return dflt
	}
	token, err := slurm.NewToken()
	if err != nil {
		return slurm.Script{}, err
	}
	s := slurm.Script{
		Config:      cfg,
		JobName:     str("job-name", def.JobName),
		Nodes:       num("nodes", def.Nodes, 1),
		GPUsPerNode: num("gpus-per-node", def.GPUsPerNode, 0),
		GPUFlag:     str("gpu-flag", def.GPUFlag),
		CPUsPerTask: num("cpus-per-task", def.CPUsPerTask, 1),
		Time:        str("time", def.Time),
		Partition:   str("partition", def.Partition),
		Account:     str("account", def.Account),
		QoS:         str("qos", def.QoS),
		LogDir:      str("log-dir", def.LogDir),
		Token:       token,
		Generator:   "launcher " + quoteArgs(os.Args[1:]),
	}
	if s.GPUsPerNode == 0 {
		return s, cli.Exit(fmt.Sprintf("%s: how many GPUs per node? pass --gpus-per-node G or set gpus_per_node in the [slurm] table of %s", c.Command.Name, cfg), 2)
	}
	return s, nil
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = slurm.ShellQuote(a)
	}
	return strings.Join(q, " ")
}
