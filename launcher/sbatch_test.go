package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runIn runs the launcher with dir as its working directory.
func runIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(launcherBin, args...)
	cmd.Dir = dir
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{so.String(), se.String(), code}
}

// The committed slurm/grpo_8xh100.sh is what the documented command makes
// from configs/grpo_omni7b.toml, but for the token line.
func TestSbatchRegeneratesCommittedScript(t *testing.T) {
	committed, err := os.ReadFile("../slurm/grpo_8xh100.sh")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile("../configs/grpo_omni7b.toml")
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the repository's layout, so that the command line is
	// exactly the documented one.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "configs"), 0o755)
	os.MkdirAll(filepath.Join(root, "slurm"), 0o755)
	os.WriteFile(filepath.Join(root, "configs", "grpo_omni7b.toml"), cfg, 0o644)
	var tokens []string
	for range 2 {
		r := runIn(t, root, "sbatch", "--config", "configs/grpo_omni7b.toml", "--nodes", "1", "--gpus-per-node", "8", "--out", "slurm/grpo_8xh100.sh")
		if r.code != 0 {
			t.Fatalf("launcher sbatch: exit %d: %s", r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, "sbatch slurm/grpo_8xh100.sh") {
			t.Errorf("stdout: %q", r.stdout)
		}
		fresh, _ := os.ReadFile(filepath.Join(root, "slurm", "grpo_8xh100.sh"))
		cl, fl := strings.Split(string(committed), "\n"), strings.Split(string(fresh), "\n")
		if len(cl) != len(fl) {
			t.Fatalf("regenerated script has %d lines, the committed one %d: regenerate it with\n  launcher sbatch --config configs/grpo_omni7b.toml --nodes 1 --gpus-per-node 8 --out slurm/grpo_8xh100.sh", len(fl), len(cl))
		}
		for i := range cl {
			if strings.HasPrefix(fl[i], "export EARL_JOB_TOKEN=") {
				if !strings.HasPrefix(cl[i], "export EARL_JOB_TOKEN=") {
					t.Errorf("line %d: token line %q where the committed script has %q", i+1, fl[i], cl[i])
				}
				tokens = append(tokens, fl[i])
				if fl[i] == cl[i] {
					t.Errorf("line %d: the regenerated token equals the committed one", i+1)
				}
				continue
			}
			if cl[i] != fl[i] {
				t.Errorf("line %d differs:\ncommitted:   %q\nregenerated: %q\n(regenerate slurm/grpo_8xh100.sh if the template changed)", i+1, cl[i], fl[i])
			}
		}
	}
	if len(tokens) != 2 || tokens[0] == tokens[1] {
		t.Errorf("token lines %q: want two different ones", tokens)
	}
}

func TestSbatchFlagsWinOverConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "job.toml")
	os.WriteFile(cfg, []byte(`[train]
steps = 10
[slurm]
nodes = 4
gpus_per_node = 8
gpu_flag = "gres"
partition = "big"
account = "acct"
time = "2-00:00:00"
cpus_per_task = 6
job_name = "fromconfig"
`), 0o644)
	out := filepath.Join(dir, "job.sh")
	r := runIn(t, dir, "sbatch", "--config", cfg, "--out", out, "--nodes", "2", "--partition", "small", "--qos", "q1",
		"--log-dir", "logs", "--command", "worker selftest --iters 1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(out)
	s := string(b)
	for _, want := range []string{"--nodes=2\n", "--ntasks-per-node=8\n", "--gres=gpu:8\n", "--partition=small\n", "--account=acct\n",
		"--qos=q1\n", "--time=2-00:00:00\n", "--cpus-per-task=6\n", "--job-name=fromconfig\n", "--output=logs/%x-%j.out\n",
		"  worker selftest --iters 1 &\n"} {
		if !strings.Contains(s, "#SBATCH "+want) && !strings.Contains(s, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "logs")); err != nil || !fi.IsDir() {
		t.Errorf("--log-dir logs was not created: %v", err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o700 {
		t.Errorf("script mode %v, want 0700 (it holds the token)", fi.Mode().Perm())
	}
	// Without a [slurm] table: defaults, and the config's base name.
	plain := filepath.Join(dir, "plain.toml")
	os.WriteFile(plain, []byte("[model]\npath = \"m\"\n"), 0o644)
	r = runIn(t, dir, "sbatch", "--config", plain, "--gpus-per-node", "2", "--out", out)
	b, _ = os.ReadFile(out)
	if r.code != 0 || !strings.Contains(string(b), "#SBATCH --job-name=plain\n#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=2\n#SBATCH --gpus-per-task=1\n#SBATCH --cpus-per-task=1\n#SBATCH --output") {
		t.Errorf("defaults: exit %d %s\n%s", r.code, r.stderr, b)
	}
}

func TestSbatchErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[model]\npath = \"m\"\n[slurm]\ngpus_per_node = 2\n"), 0o644)
	// Parses, but worker train would refuse it.
	badTrain := filepath.Join(dir, "badtrain.toml")
	os.WriteFile(badTrain, []byte("[model]\npath = \"m\"\n[grpo]\nbeta = -1\n[slurm]\ngpus_per_node = 2\n"), 0o644)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[slurm\n"), 0o644)
	unknown := filepath.Join(dir, "unknown.toml")
	os.WriteFile(unknown, []byte("[slurm]\ngpus = 2\n"), 0o644)
	nogpus := filepath.Join(dir, "nogpus.toml")
	os.WriteFile(nogpus, []byte("a = 1\n"), 0o644)
	out := filepath.Join(dir, "o.sh")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--config", filepath.Join(dir, "nope.toml")}, 1, "does not exist"},
		{[]string{"--config", bad}, 1, "bad.toml"},
		{[]string{"--config", unknown}, 1, `unknown key "slurm.gpus"`},
		{[]string{"--config", nogpus}, 2, "--gpus-per-node"},
		{[]string{"--config", good, "--gpu-flag", "gpus"}, 1, `--gpu-flag "gpus"`},
		{[]string{"--config", good, "--time", "forever"}, 1, `--time "forever"`},
		{[]string{"--config", good, "--nodes", "0"}, 1, "--nodes 0"},
		{[]string{"--config", good, "--partition", "a b"}, 1, `--partition "a b"`},
		{[]string{"--config", good, "extra"}, 2, "takes no arguments"},
		{[]string{"--config", badTrain}, 1, "badtrain.toml: invalid config: grpo: beta must be non-negative"},
		{[]string{"--config", filepath.Join(dir, "nogpus.toml"), "--gpus-per-node", "2"}, 1, `unknown keys a`},
	} {
		r := runIn(t, dir, append([]string{"sbatch", "--out", out}, c.args...)...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed launcher sbatch wrote its script")
	}
}
