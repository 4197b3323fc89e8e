package slurm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func testScript() Script {
	return Script{Config: "configs/x.toml", Nodes: 2, GPUsPerNode: 4, Token: strings.Repeat("ab", 16),
		Partition: "gpu", Account: "proj1", QoS: "high", Time: "1-12:00:00", CPUsPerTask: 8, Generator: "launcher sbatch ..."}
}

func TestRenderScript(t *testing.T) {
	b, err := testScript().Render()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"#!/bin/bash\n",
		"#SBATCH --job-name=x\n", "#SBATCH --nodes=2\n", "#SBATCH --ntasks-per-node=4\n", "#SBATCH --gpus-per-task=1\n",
		"#SBATCH --cpus-per-task=8\n", "#SBATCH --time=1-12:00:00\n", "#SBATCH --partition=gpu\n", "#SBATCH --account=proj1\n",
		"#SBATCH --qos=high\n", "#SBATCH --output=%x-%j.out\n", "#SBATCH --open-mode=append\n", "#SBATCH --signal=B:USR1@120\n",
		"#SBATCH --requeue\n", "set -euo pipefail\n",
		`nodes=$(scontrol show hostnames "$SLURM_JOB_NODELIST")`,
		"export MASTER_PORT=$((20000 + SLURM_JOB_ID % 10000))\n",
		"export EARL_JOB_TOKEN=" + strings.Repeat("ab", 16) + "\n",
		"export NCCL_ASYNC_ERROR_HANDLING=1\n", "# export NCCL_SOCKET_IFNAME=",
		"srun --kill-on-bad-exit=1 --cpu-bind=cores", "  worker train --config configs/x.toml &\n",
		"trap on_usr1 USR1\n", `kill -USR1 "$srun_pid"`, `scontrol requeue "$SLURM_JOB_ID"`, `exit "$rc"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	if strings.Contains(s, "--gres") {
		t.Error("per-task script asks for --gres")
	}
	// #SBATCH lines must all come before the first command, or sbatch
	// ignores them.
	seenCmd := false
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "#SBATCH") && seenCmd {
			t.Errorf("%q after the first command", l)
		}
		if l != "" && !strings.HasPrefix(l, "#") {
			seenCmd = true
		}
	}
	if _, err := exec.LookPath("bash"); err == nil {
		p := filepath.Join(t.TempDir(), "s.sh")
		os.WriteFile(p, b, 0o644)
		if out, err := exec.Command("bash", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v\n%s", err, out)
		}
	}

	g := testScript()
	g.GPUFlag, g.Partition, g.Account, g.QoS, g.Time, g.LogDir = GPUGres, "", "", "", "", "logs"
	g.Command = "worker selftest --marker-dir '/tmp/a b'"
	b, err = g.Render()
	if err != nil {
		t.Fatal(err)
	}
	s = string(b)
	for _, want := range []string{"#SBATCH --gres=gpu:4\n", "#SBATCH --output=logs/%x-%j.out\n", "  worker selftest --marker-dir '/tmp/a b' &\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("gres script lacks %q", want)
		}
	}
	for _, not := range []string{"--gpus-per-task", "--partition", "--account", "--qos", "--time"} {
		if strings.Contains(s, "#SBATCH "+not) {
			t.Errorf("script has #SBATCH %s though it was not asked for", not)
		}
	}
}

// Two renderings of the same job differ only in the token line.
func TestRenderIsDeterministic(t *testing.T) {
	a, _ := testScript().Render()
	s := testScript()
	s.Token = strings.Repeat("cd", 16)
	b, _ := s.Render()
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	if len(al) != len(bl) {
		t.Fatalf("%d lines vs %d", len(al), len(bl))
	}
	diff := 0
	for i := range al {
		if al[i] != bl[i] {
			diff++
			if !strings.HasPrefix(al[i], "export EARL_JOB_TOKEN=") {
				t.Errorf("line %d differs: %q vs %q", i+1, al[i], bl[i])
			}
		}
	}
	if diff != 1 {
		t.Errorf("%d lines differ, want 1", diff)
	}
}

func TestRenderErrors(t *testing.T) {
	for _, c := range []struct {
		edit func(*Script)
		want string
	}{
		{func(s *Script) { s.Config = "" }, "pass --config"},
		{func(s *Script) { s.Nodes = 0 }, "--nodes 0"},
		{func(s *Script) { s.GPUsPerNode = -1 }, "--gpus-per-node -1"},
		{func(s *Script) { s.CPUsPerTask = -2 }, "--cpus-per-task -2"},
		{func(s *Script) { s.GPUFlag = "gpus" }, `--gpu-flag "gpus"`},
		{func(s *Script) { s.Time = "1 day" }, `--time "1 day"`},
		{func(s *Script) { s.Token = "" }, "job token"},
		{func(s *Script) { s.Command = "a\nb" }, "one line"},
		{func(s *Script) { s.Partition = "gpu a" }, `--partition "gpu a"`},
		{func(s *Script) { s.JobName = "x;rm" }, `--job-name "x;rm"`},
	} {
		s := testScript()
		c.edit(&s)
		if _, err := s.Render(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Render: %v, want an error mentioning %q", err, c.want)
		}
	}
	for _, ok := range []string{"30", "30:00", "12:00:00", "2-00", "2-12:30", "2-12:30:00"} {
		s := testScript()
		s.Time = ok
		if _, err := s.Render(); err != nil {
			t.Errorf("time %q: %v", ok, err)
		}
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "job.sh")
	if err := testScript().WriteFile(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), "#   sbatch "+p+"\n") {
		t.Errorf("header does not name the script:\n%s", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	bad := testScript()
	bad.Nodes = 0
	if err := bad.WriteFile(filepath.Join(dir, "bad.sh")); err == nil {
		t.Error("WriteFile of an invalid script succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.sh")); err == nil {
		t.Error("an invalid script was written")
	}
	if err := testScript().WriteFile(filepath.Join(dir, "no", "such", "dir.sh")); err == nil || !strings.Contains(err.Error(), "does the directory") {
		t.Errorf("WriteFile into a missing directory: %v", err)
	}
}

func TestReadDefaults(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	d, err := ReadDefaults(write("a.toml", "[model]\nname = \"x\"\n[slurm]\nnodes = 2\ngpus_per_node = 4\npartition = \"p\"\ngpu_flag = \"gres\"\n"))
	if err != nil || d != (Defaults{Nodes: 2, GPUsPerNode: 4, Partition: "p", GPUFlag: "gres"}) {
		t.Errorf("ReadDefaults = %+v, %v", d, err)
	}
	if d, err := ReadDefaults(write("b.toml", "[model]\nname = \"x\"\n")); err != nil || d != (Defaults{}) {
		t.Errorf("no [slurm]: %+v, %v", d, err)
	}
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "nope.toml"), "does not exist"},
		{write("c.toml", "[slurm]\nnodes = \n"), "c.toml"},
		{write("d.toml", "[slurm]\nnode = 2\n"), `unknown key "slurm.node"`},
		{write("e.toml", "[slurm]\nnodes = \"two\"\n"), "e.toml"},
	} {
		if _, err := ReadDefaults(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadDefaults(%s): %v, want an error mentioning %q", c.path, err, c.want)
		}
	}
	// The committed config parses and holds the committed script's defaults.
	d, err = ReadDefaults("../configs/grpo_omni7b.toml")
	if err != nil || d.GPUsPerNode != 8 || d.Nodes != 1 {
		t.Errorf("configs/grpo_omni7b.toml: %+v, %v", d, err)
	}
}
