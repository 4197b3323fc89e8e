package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"earl/slurm"
	"earl/worker/ckpt"
	"earl/worker/score"
	"earl/worker/train"
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "evaluate checkpoints on benchmarks: a Slurm job array (--script) or one task after another here (--local)",
		UsageText: "launcher eval --config FILE [--ckpt RUN|RUN/checkpoints/step-N|MODEL ...] [--bench NAME=SHARDS ...]\n" +
			"      [--set key=value ...] [--out-dir DIR] [--redo]\n" +
			"      (--script FILE [--nodes N] [--gpus-per-node G] [--max-parallel K] [slurm flags] | --local [--nproc N])",
		Description: "Makes one worker eval task per (checkpoint, benchmark) pair. --ckpt names a run directory\n" +
			"(every complete checkpoint in it), one checkpoint, or a Hugging Face model directory; without\n" +
			"it, the config's model.path. --bench names a shard directory; without it, the config's\n" +
			"eval.shards (named after its directory). The other eval settings (rule, samples,\n" +
			"max_completion_length, ...) come from the config and --set.\n" +
			"\n" +
			"Predictions and tables go to RUN/eval/NAME/step-N.jsonl (.txt, .json) for a run's checkpoints\n" +
			"and to evals/NAME/MODEL.jsonl for a model directory; --out-dir DIR puts them all under\n" +
			"DIR/NAME/. A task whose .json table exists is complete and is skipped (--redo runs it again),\n" +
			"so a resubmitted array or a repeated --local run does only what is missing.\n" +
			"\n" +
			"--script writes an sbatch job array, one array task per pair, each on its own allocation of\n" +
			"nodes x GPUs (flags and the config's [slurm] table as for launcher sbatch). SIGUSR1 before\n" +
			"the time limit stops a task and requeues it. --local runs the tasks now, one after another,\n" +
			"each with launcher run --nproc N, and prints the tables side by side.\n" +
			"launcher report RUN/eval shows the results of either.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "worker config (TOML) of the model and the eval settings", Required: true},
			&cli.StringSliceFlag{Name: "ckpt", Usage: "a run directory, a checkpoint (RUN/checkpoints/step-N) or a model directory (repeatable)"},
			&cli.StringSliceFlag{Name: "bench", Usage: "NAME=SHARDS: a benchmark's shard directory (repeatable)"},
			&cli.StringSliceFlag{Name: "set", Usage: "override a config key for every task: --set eval.rule=mmau (repeatable)"},
			&cli.StringFlag{Name: "out-dir", Usage: "put every task's results under DIR/NAME/", DefaultText: "RUN/eval, or evals for model directories"},
			&cli.BoolFlag{Name: "redo", Usage: "run tasks whose results exist too"},
			&cli.StringFlag{Name: "script", Usage: "write a Slurm job array script here"},
			&cli.IntFlag{Name: "max-parallel", Usage: "with --script: array tasks running at once (--array=...%K; 0: no cap)"},
			&cli.BoolFlag{Name: "local", Usage: "run the tasks here, one after another"},
			&cli.IntFlag{Name: "nproc", Value: 1, Usage: "with --local: ranks per task (launcher run --nproc)"},
		}, jobFlags()...),
		Action: runEvalJobs,
	}
}

// evalTask is one (model, benchmark) evaluation.
type evalTask struct {
	bench, label string
	shards       string
	ckpt         string // training checkpoint, or ""
	model        string // model directory when ckpt is "", or "" for model.path
	out          string // predictions JSONL
}

// done is the table worker eval writes last.
func (t evalTask) done() string { return strings.TrimSuffix(t.out, ".jsonl") + ".json" }

func (t evalTask) args(cfg string, sets []string) []string {
	a := []string{"worker", "eval", "--config", cfg}
	for _, s := range sets {
		a = append(a, "--set", s)
	}
	a = append(a, "--set", "eval.shards="+t.shards, "--set", "eval.out="+t.out)
	if t.ckpt != "" {
		a = append(a, "--set", "eval.checkpoint="+t.ckpt)
	}
	if t.model != "" {
		a = append(a, "--set", "model.path="+t.model)
	}
	return a
}

var stepDirName = regexp.MustCompile(`^step-[0-9]{8,}$`)

// evalTarget is what one --ckpt names: checkpoints of a run, or a model.
type evalTarget struct {
	label, ckpt, model, root string
}

func expandCkpt(path, model, outDir string) ([]evalTarget, error) {
	root := func(def string) string {
		if outDir != "" {
			return outDir
		}
		return def
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--ckpt %s: %w", path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("--ckpt %s: not a directory: name a run directory, a checkpoint (RUN/checkpoints/step-N) or a model directory", path)
	}
	switch {
	case exists(filepath.Join(path, "checkpoints")):
		steps, err := ckpt.Complete(path)
		if err != nil {
			return nil, fmt.Errorf("--ckpt %s: %w", path, err)
		}
		if len(steps) == 0 {
			return nil, fmt.Errorf("--ckpt %s: the run has no complete checkpoint yet", path)
		}
		var out []evalTarget
		for _, s := range steps {
			out = append(out, evalTarget{label: filepath.Base(s.Dir), ckpt: s.Dir, root: root(filepath.Join(path, "eval"))})
		}
		return out, nil
	case stepDirName.MatchString(filepath.Base(filepath.Clean(path))):
		if !exists(filepath.Join(path, ckpt.DoneFileName)) {
			return nil, fmt.Errorf("--ckpt %s: the checkpoint is incomplete (no %s): its save was interrupted; name another", path, ckpt.DoneFileName)
		}
		run := filepath.Dir(filepath.Dir(filepath.Clean(path)))
		return []evalTarget{{label: filepath.Base(filepath.Clean(path)), ckpt: path, root: root(filepath.Join(run, "eval"))}}, nil
	case exists(filepath.Join(path, "config.json")):
		m := path
		if path == model {
			m = "" // the config's own model.path
		}
		base := filepath.Base(filepath.Clean(path))
		return []evalTarget{{label: base, model: m, root: root("evals")}}, nil
	}
	return nil, fmt.Errorf("--ckpt %s: neither a run (no checkpoints/), a checkpoint (step-N) nor a model directory (no config.json)", path)
}

func planEval(c *cli.Context) ([]evalTask, *train.Config, error) {
	cfgPath := c.String("config")
	sets := c.StringSlice("set")
	cfg, err := train.Load(cfgPath, sets)
	if err != nil {
		return nil, nil, err
	}
	type bench struct{ name, shards string }
	var benches []bench
	for _, b := range c.StringSlice("bench") {
		name, dir, ok := strings.Cut(b, "=")
		if !ok || name == "" || dir == "" || strings.ContainsAny(name, "/\\ ") {
			return nil, nil, fmt.Errorf("--bench %q: want NAME=SHARD_DIR, NAME without slashes or spaces (e.g. mmau=data/shards/mmau-test-mini)", b)
		}
		benches = append(benches, bench{name, dir})
	}
	if len(benches) == 0 {
		if cfg.Eval.Shards == "" {
			return nil, nil, fmt.Errorf("no benchmark: pass --bench NAME=SHARD_DIR or set eval.shards in %s", cfgPath)
		}
		benches = []bench{{filepath.Base(filepath.Clean(cfg.Eval.Shards)), cfg.Eval.Shards}}
	}
	for _, b := range benches {
		if _, err := os.Stat(filepath.Join(b.shards, "manifest.json")); err != nil {
			return nil, nil, fmt.Errorf("benchmark %s: %s is not a shard directory (no manifest.json): make it with launcher shard", b.name, b.shards)
		}
	}
	paths := c.StringSlice("ckpt")
	if len(paths) == 0 {
		paths = []string{cfg.Model.Path}
	}
	var targets []evalTarget
	for _, p := range paths {
		t, err := expandCkpt(p, cfg.Model.Path, c.String("out-dir"))
		if err != nil {
			return nil, nil, err
		}
		targets = append(targets, t...)
	}
	var tasks []evalTask
	seen := map[string]string{}
	for _, t := range targets {
		for _, b := range benches {
			out := filepath.Join(t.root, b.name, t.label+".jsonl")
			what := t.ckpt + t.model
			if prev, ok := seen[out]; ok && filepath.Clean(prev) == filepath.Clean(what) {
				continue // named twice (a run and one of its checkpoints)
			} else if ok {
				return nil, nil, fmt.Errorf("%s and %s would both write %s: evaluate them with different --out-dir", prev, what, out)
			}
			seen[out] = what
			tasks = append(tasks, evalTask{bench: b.name, label: t.label, shards: b.shards, ckpt: t.ckpt, model: t.model, out: out})
		}
	}
	return tasks, cfg, nil
}

func runEvalJobs(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("eval takes no arguments (got %q): see launcher eval --help", c.Args().Slice()), 2)
	}
	local, script := c.Bool("local"), c.String("script")
	if local == (script != "") {
		return cli.Exit("eval: give --script FILE (a Slurm job array) or --local (run here), one of them", 2)
	}
	tasks, _, err := planEval(c)
	if err != nil {
		return err
	}
	var pending []evalTask
	for _, t := range tasks {
		if _, err := os.Stat(t.done()); err == nil && !c.Bool("redo") {
			fmt.Printf("skip  %-12s %-24s %s exists\n", t.bench, t.label, t.done())
			continue
		}
		pending = append(pending, t)
	}
	fmt.Printf("%d evaluation(s): %d to run, %d done already\n", len(tasks), len(pending), len(tasks)-len(pending))
	if local {
		return runEvalLocal(c, tasks, pending)
	}
	return writeEvalArray(c, pending)
}

func writeEvalArray(c *cli.Context, pending []evalTask) error {
	cfg := c.String("config")
	if len(pending) == 0 {
		fmt.Println("nothing to submit: every evaluation has its results (--redo runs them again)")
		return nil
	}
	def, err := slurm.ReadDefaults(cfg)
	if err != nil {
		return err
	}
	if !c.IsSet("job-name") && def.JobName == "" {
		def.JobName = strings.TrimSuffix(filepath.Base(cfg), filepath.Ext(cfg)) + "-eval"
	}
	s, err := scriptFromFlags(c, cfg, def)
	if err != nil {
		return err
	}
	s.MaxParallel = c.Int("max-parallel")
	for _, t := range pending {
		done := t.done()
		if c.Bool("redo") {
			done = ""
		}
		s.Tasks = append(s.Tasks, slurm.ArrayTask{Command: quoteArgs(t.args(cfg, c.StringSlice("set"))), Done: done})
		// worker eval creates the output directory; make it now too, so
		// that a typo in a path fails here rather than in the queue.
		if err := os.MkdirAll(filepath.Dir(t.out), 0o755); err != nil {
			return fmt.Errorf("eval output directory: %w", err)
		}
	}
	out := c.String("script")
	if err := writeScript(s, out); err != nil {
		return err
	}
	for i, t := range pending {
		fmt.Printf("task %-3d %-12s %-24s -> %s\n", i, t.bench, t.label, t.out)
	}
	fmt.Printf("wrote %s: a job array of %d task(s), each %d node(s) x %d GPU(s); submit from this directory with: sbatch %s\n",
		out, len(pending), s.Nodes, s.GPUsPerNode, out)
	return nil
}

// runEvalLocal runs each task with launcher run, then prints every task's
// tables side by side.
func runEvalLocal(c *cli.Context, all, pending []evalTask) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	worker, err := findWorker(self)
	if err != nil {
		return err
	}
	nproc := c.Int("nproc")
	if nproc < 1 {
		return cli.Exit(fmt.Sprintf("--nproc %d: need at least 1 rank", nproc), 2)
	}
	for i, t := range pending {
		fmt.Printf("== eval %d/%d: %s on %s -> %s\n", i+1, len(pending), t.label, t.bench, t.out)
		args := t.args(c.String("config"), c.StringSlice("set"))
		args[0] = worker
		cmd := exec.Command(self, append([]string{"run", "--nproc", fmt.Sprint(nproc), "--"}, args...)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return cli.Exit(fmt.Sprintf("eval %s on %s failed (exit %d); the evaluations before it are kept, rerun to do the rest", t.label, t.bench, ee.ExitCode()), ee.ExitCode())
			}
			return err
		}
		if _, err := os.Stat(t.done()); err != nil {
			return fmt.Errorf("eval %s on %s stopped before writing %s (interrupted?): rerun to do the rest", t.label, t.bench, t.done())
		}
	}
	var names []string
	var reps []*score.Report
	for _, t := range all {
		r, err := loadReport(t.done())
		if err != nil {
			return err
		}
		names, reps = append(names, t.bench+" "+t.label), append(reps, r)
	}
	fmt.Println()
	return score.Compare(os.Stdout, names, reps)
}

// findWorker returns the worker binary beside the launcher, else the one
// on PATH.
func findWorker(launcher string) (string, error) {
	p := filepath.Join(filepath.Dir(launcher), "worker")
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return p, nil
	}
	p, err := exec.LookPath("worker")
	if err != nil {
		return "", fmt.Errorf("no worker binary beside %s or on PATH: make build", launcher)
	}
	return p, nil
}
