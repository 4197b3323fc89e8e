package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// evalFixture trains a tiny model for 4 steps on one rank (checkpoints at
// steps 2 and 4) and returns the working directory and the config.
func evalFixture(t *testing.T) (dir, cfg string) {
	t.Helper()
	worker := workerBinary(t)
	dir = t.TempDir()
	for _, args := range [][]string{
		{toolsBin, "synth", "--task", "sweep", "--format", "jsonl", "-n", "12", "--seed", "1", "--out", "src", "--duration", "1:1.5"},
		{launcherBin, "shard", "--in", "jsonl", "--src", "src/synth.jsonl", "--out", "shards", "--family", "qwen2.5-omni"},
		{toolsBin, "init-model", "--family", "qwen2.5-omni", "--preset", "tiny", "--seed", "1", "--dtype", "f32", "--out", "model"},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	cfg = filepath.Join(dir, "job.toml")
	os.WriteFile(cfg, []byte(`mode = "sft"
run_dir = "run"
[model]
path = "model"
[data]
train = "shards"
[train]
learning_rate = 1e-3
max_steps = 4
prompts_per_rank = 2
save_steps = 2
[eval]
shards = "shards"
max_completion_length = 8
`), 0o644)
	cmd := exec.Command(worker, "train", "--config", cfg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("worker train: %v\n%s", err, out)
	}
	return dir, cfg
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func TestEvalLocalThenReport(t *testing.T) {
	dir, cfg := evalFixture(t)
	// The run (both checkpoints), one of them again, and the base model.
	r := runIn(t, dir, "eval", "--config", cfg, "--ckpt", "run", "--ckpt", "run/checkpoints/step-00000004", "--ckpt", "model",
		"--bench", "syn=shards", "--set", "eval.limit=4", "--local", "--nproc", "2")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "3 evaluation(s): 3 to run, 0 done already") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	outs := []string{"run/eval/syn/step-00000002", "run/eval/syn/step-00000004", "evals/syn/model"}
	for _, o := range outs {
		if n := countLines(t, filepath.Join(dir, o+".jsonl")); n != 4 {
			t.Errorf("%s.jsonl: %d predictions, want 4", o, n)
		}
		if _, err := os.Stat(filepath.Join(dir, o+".json")); err != nil {
			t.Errorf("no table: %v", err)
		}
	}
	for _, want := range []string{"syn step-00000002", "syn step-00000004", "syn model", "overall", "(n=4)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("side-by-side table lacks %q:\n%s", want, r.stdout)
		}
	}
	// The checkpoint evaluated is the one named: step 2 and the base model
	// differ after training at lr 1e-3 (their outputs are compared).
	a, _ := os.ReadFile(filepath.Join(dir, outs[0]+".jsonl"))
	b, _ := os.ReadFile(filepath.Join(dir, outs[2]+".jsonl"))
	if string(a) == string(b) {
		t.Error("step 2 and the base model gave identical predictions: the checkpoint was not loaded")
	}

	// Again: everything is done.
	r = runIn(t, dir, "eval", "--config", cfg, "--ckpt", "run", "--bench", "syn=shards", "--set", "eval.limit=4", "--local")
	if r.code != 0 || !strings.Contains(r.stdout, "2 evaluation(s): 0 to run, 2 done already") {
		t.Errorf("rerun: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The script of the same: nothing to submit; with --redo, an array of
	// both tasks without done files.
	script := filepath.Join(dir, "ev.sh")
	r = runIn(t, dir, "eval", "--config", cfg, "--ckpt", "run", "--bench", "syn=shards", "--script", script, "--gpus-per-node", "2")
	if r.code != 0 || !strings.Contains(r.stdout, "nothing to submit") {
		t.Errorf("script, all done: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runIn(t, dir, "eval", "--config", cfg, "--ckpt", "run", "--bench", "syn=shards", "--script", script, "--gpus-per-node", "2",
		"--redo", "--max-parallel", "1", "--set", "eval.limit=4")
	sb, _ := os.ReadFile(script)
	for _, want := range []string{"#SBATCH --array=0-1%1\n", "#SBATCH --job-name=job-eval\n", "#SBATCH --ntasks-per-node=2\n",
		"'worker eval --config " + cfg + " --set eval.limit=4 --set eval.shards=shards --set eval.out=run/eval/syn/step-00000002.jsonl --set eval.checkpoint=run/checkpoints/step-00000002'",
		"done_files=(\n  ''\n  ''\n)"} {
		if r.code != 0 || !strings.Contains(string(sb), want) {
			t.Errorf("--redo script lacks %q (exit %d %s)\n%s", want, r.code, r.stderr, sb)
		}
	}

	// launcher report on the run's eval directory: one column per
	// checkpoint, in step order.
	r = runIn(t, dir, "report", "run/eval", "evals")
	if r.code != 0 {
		t.Fatalf("report: exit %d\n%s", r.code, r.stderr)
	}
	// With --png: one held-out series per run and benchmark.
	if r := runIn(t, dir, "report", "--png", "curve.png", "--metrics", "run/metrics.jsonl", "run/eval", "evals"); r.code != 0 {
		t.Errorf("report --png: exit %d\n%s", r.code, r.stderr)
	} else if b, err := os.ReadFile(filepath.Join(dir, "curve.png")); err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
		t.Errorf("curve.png: %v", err)
	}
	head := strings.SplitN(r.stdout, "\n", 2)[0]
	i2, i4, im := strings.Index(head, "run syn step-2"), strings.Index(head, "run syn step-4"), strings.Index(head, "evals syn model")
	if i2 < 0 || i4 < i2 || im < i4 {
		t.Errorf("report columns: %q", head)
	}
}

func TestEvalErrors(t *testing.T) {
	dir, cfg := evalFixture(t)
	os.MkdirAll(filepath.Join(dir, "broken", "checkpoints"), 0o755)
	os.MkdirAll(filepath.Join(dir, "incomplete", "checkpoints", "step-00000001"), 0o755)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--ckpt", "run"}, 2, "give --script FILE"},
		{[]string{"--ckpt", "run", "--local", "--script", "x.sh"}, 2, "give --script FILE"},
		{[]string{"--ckpt", "nope", "--local"}, 1, "--ckpt nope"},
		{[]string{"--ckpt", "job.toml", "--local"}, 1, "not a directory"},
		{[]string{"--ckpt", "src", "--local"}, 1, "neither a run"},
		{[]string{"--ckpt", "broken", "--local"}, 1, "no complete checkpoint"},
		{[]string{"--ckpt", "incomplete/checkpoints/step-00000001", "--local"}, 1, "incomplete (no DONE)"},
		{[]string{"--ckpt", "run", "--bench", "syn", "--local"}, 1, `--bench "syn": want NAME=SHARD_DIR`},
		{[]string{"--ckpt", "run", "--bench", "syn=src", "--local"}, 1, "benchmark syn: src is not a shard directory"},
		{[]string{"--ckpt", "run", "--set", "eval.rule=best", "--local"}, 1, "eval.rule"},
		{[]string{"--ckpt", "run", "--script", "x.sh"}, 2, "how many GPUs per node"},
		{[]string{"--ckpt", "run", "--local", "--nproc", "0"}, 2, "--nproc 0"},
	} {
		r := runIn(t, dir, append([]string{"eval", "--config", cfg}, c.args...)...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.sh")); err == nil {
		t.Error("a failed launcher eval wrote its script")
	}
	if _, err := os.Stat(filepath.Join(dir, "run", "eval")); err == nil {
		t.Error("a failed launcher eval evaluated something")
	}
}
