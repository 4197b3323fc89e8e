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
