package slurm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestScriptFlow runs a rendered script in bash with stand-ins for srun and
// scontrol, to check its control flow exactly: the status it exits with,
// the USR1 forwarding, and when it requeues. (slurm/integration_test.go
// runs the same scripts on a real Slurm.)
func TestScriptFlow(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	log := filepath.Join(dir, "log")
	// srun: records its arguments and environment, exits with SRUN_RC
	// after SRUN_SLEEP tenths of a second, or with SRUN_USR1_RC on USR1.
	writeExec(t, filepath.Join(bin, "srun"), `#!/bin/bash
trap 'echo "srun got USR1" >> "$LOG"; exit "${SRUN_USR1_RC:-0}"' USR1
echo "srun $* MASTER=$MASTER_ADDR:$MASTER_PORT TOKEN=$EARL_JOB_TOKEN RANK=${RANK:-unset} OMP=$OMP_NUM_THREADS" >> "$LOG"
for ((i = 0; i < ${SRUN_SLEEP:-0}; i++)); do sleep 0.1; done
exit "${SRUN_RC:-0}"
`)
	writeExec(t, filepath.Join(bin, "scontrol"), `#!/bin/bash
case "$1 $2" in
"show hostnames") printf 'gpu007\ngpu008\n' ;;
"requeue "*) echo "scontrol requeue $2" >> "$LOG" ;;
*) echo "scontrol: unexpected $*" >&2; exit 1 ;;
esac
`)
	s := testScript()
	s.Token = strings.Repeat("0f", 16)
	b, err := s.Render()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "job.sh")
	os.WriteFile(script, b, 0o755)

	run := func(env []string, usr1 bool) (int, string, string) {
		t.Helper()
		os.Remove(log)
		cmd := exec.Command("bash", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "LOG="+log, "SLURM_JOB_ID=1234",
			"SLURM_JOB_NODELIST=gpu[007-008]", "SLURM_NTASKS=8", "SLURM_JOB_NUM_NODES=2", "SLURM_CPUS_PER_TASK=8",
			"SLURM_SUBMIT_DIR="+dir, "RANK=3")
		cmd.Env = append(cmd.Env, env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if usr1 {
			deadline := time.Now().Add(10 * time.Second)
			for {
				if b, _ := os.ReadFile(log); strings.Contains(string(b), "srun ") {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("srun never started:\n%s", out.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			cmd.Process.Signal(syscall.SIGUSR1)
		}
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		l, _ := os.ReadFile(log)
		return code, string(l), out.String()
	}

	// A plain run: srun's status is the script's; no requeue.
	code, l, out := run(nil, false)
	if code != 0 || strings.Contains(l, "requeue") {
		t.Errorf("plain run: exit %d\n%s\n%s", code, l, out)
	}
	for _, want := range []string{"--kill-on-bad-exit=1 --cpu-bind=cores --cpus-per-task=8 worker train --config configs/x.toml",
		"MASTER=gpu007:21234", "TOKEN=" + s.Token, "RANK=unset", "OMP=8"} {
		if !strings.Contains(l, want) {
			t.Errorf("srun call lacks %q:\n%s", want, l)
		}
	}
	if code, l, out = run([]string{"SRUN_RC=5"}, false); code != 5 || strings.Contains(l, "requeue") {
		t.Errorf("failed srun: exit %d, want 5\n%s\n%s", code, l, out)
	}
	// USR1: forwarded to srun once; its clean exit leads to a requeue.
	code, l, out = run([]string{"SRUN_SLEEP=100"}, true)
	if code != 0 || strings.Count(l, "srun got USR1") != 1 || !strings.Contains(l, "scontrol requeue 1234") {
		t.Errorf("USR1: exit %d\n%s\n%s", code, l, out)
	}
	if !strings.Contains(out, "earl: USR1: asking the workers") || !strings.Contains(out, "requeueing job 1234") {
		t.Errorf("USR1 messages:\n%s", out)
	}
	// USR1, but the workers fail: no requeue, their status.
	code, l, out = run([]string{"SRUN_SLEEP=100", "SRUN_USR1_RC=7"}, true)
	if code != 7 || strings.Contains(l, "scontrol requeue") || !strings.Contains(out, "exited with status 7 after USR1: not requeueing") {
		t.Errorf("USR1 then failure: exit %d\n%s\n%s", code, l, out)
	}
}

func writeExec(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestArrayScriptFlow runs a job-array script in bash with stand-ins for
// srun and scontrol: each array task runs its own command, with its words
// intact, and a task whose done file exists runs nothing.
func TestArrayScriptFlow(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	log := filepath.Join(dir, "log")
	writeExec(t, filepath.Join(bin, "srun"), `#!/bin/bash
printf 'srun' >> "$LOG"; printf ' [%s]' "$@" >> "$LOG"; echo >> "$LOG"
`)
	writeExec(t, filepath.Join(bin, "scontrol"), `#!/bin/bash
case "$1 $2" in
"show hostnames") printf 'node1\n' ;;
*) echo "scontrol: unexpected $*" >&2; exit 1 ;;
esac
`)
	done0 := filepath.Join(dir, "eval dir", "mmau", "step-00000010.json")
	s := Script{Config: "configs/eval.toml", Nodes: 1, GPUsPerNode: 2, Token: strings.Repeat("0f", 16), JobName: "ev", MaxParallel: 1,
		Tasks: []ArrayTask{
			{Command: "worker eval --config configs/eval.toml --set 'eval.out=" + filepath.Join(dir, "eval dir", "mmau", "step-00000010.jsonl") + "' --set \"eval.rule=mmau\"", Done: done0},
			{Command: "worker eval --config configs/eval.toml --set eval.checkpoint=it\\'s"},
		}}
	b, err := s.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --array=0-1%1\n", "#SBATCH --output=%x-%A_%a.out\n", "a job array of 2 tasks"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("script lacks %q", want)
		}
	}
	script := filepath.Join(dir, "job.sh")
	os.WriteFile(script, b, 0o755)
	run := func(env ...string) (int, string, string) {
		t.Helper()
		os.Remove(log)
		cmd := exec.Command("bash", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "LOG="+log, "SLURM_JOB_ID=77",
			"SLURM_JOB_NODELIST=node1", "SLURM_NTASKS=2", "SLURM_CPUS_PER_TASK=1", "SLURM_SUBMIT_DIR="+dir)
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		l, _ := os.ReadFile(log)
		return code, string(l), string(out)
	}
	code, l, out := run("SLURM_ARRAY_TASK_ID=0")
	want0 := "srun [--kill-on-bad-exit=1] [--cpu-bind=cores] [--cpus-per-task=1] [worker] [eval] [--config] [configs/eval.toml] [--set] [eval.out=" +
		filepath.Join(dir, "eval dir", "mmau", "step-00000010.jsonl") + "] [--set] [eval.rule=mmau]\n"
	if code != 0 || l != want0 {
		t.Errorf("task 0: exit %d\n got %q\nwant %q\n%s", code, l, want0, out)
	}
	if code, l, out = run("SLURM_ARRAY_TASK_ID=1"); code != 0 || !strings.HasSuffix(l, "[--set] [eval.checkpoint=it's]\n") {
		t.Errorf("task 1: exit %d %q\n%s", code, l, out)
	}
	// Task 0's table exists: it is skipped.
	os.MkdirAll(filepath.Dir(done0), 0o755)
	os.WriteFile(done0, []byte("{}"), 0o644)
	if code, l, out = run("SLURM_ARRAY_TASK_ID=0"); code != 0 || l != "" || !strings.Contains(out, "exists; nothing to do") {
		t.Errorf("done task: exit %d, srun log %q\n%s", code, l, out)
	}
	// Not started as an array task: an error, no srun.
	if code, l, out = run(); code == 0 || l != "" || !strings.Contains(out, "not an array task") {
		t.Errorf("no SLURM_ARRAY_TASK_ID: exit %d, srun log %q\n%s", code, l, out)
	}
	// Command and Tasks together are refused.
	s.Command = "worker train"
	if _, err := s.Render(); err == nil {
		t.Error("Command and Tasks both set: no error")
	}
}
