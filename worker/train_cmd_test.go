package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"earl/collective"
	"earl/kernels/cpu"
	"earl/shards/audio"
	"earl/worker/ckpt"
	"earl/worker/model"
	"earl/worker/train"
	"earl/worker/train/traintest"
)

// buildWorker compiles this command for tests that run it as a process.
func buildWorker(t *testing.T) string { return buildCommand(t, ".", "worker") }

func buildCommand(t *testing.T, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// resumeFixture is a warm-started tiny model (a short SFT run, exported)
// and the shards to run GRPO on: rewards then differ within groups, so
// every step moves the weights.
func resumeFixture(t *testing.T) (modelDir, data string) {
	d := traintest.Shards(t, "loudness", 24, 3, audio.Qwen25Omni)
	cfg := train.Default()
	cfg.Mode = "sft"
	cfg.Model.Path = traintest.TinyModel(t, model.Qwen25Omni, 11)
	cfg.Model.FreezeAudio = false
	cfg.Data.Train = d.Path
	cfg.RunDir = filepath.Join(t.TempDir(), "sft")
	cfg.Train.PromptsPerRank = 4
	cfg.Train.LearningRate = 3e-3
	cfg.Train.MaxSteps = 30
	cfg.Train.SaveSteps = 0
	if err := train.Run(context.Background(), cpu.New(), cfg, soloComm(t), train.Options{Log: io.Discard}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "warm")
	if err := train.Export(ckpt.StepDir(cfg.RunDir, 30), cfg.Model.Path, out, ckpt.F32); err != nil {
		t.Fatal(err)
	}
	return out, d.Path
}

func writeConfig(t *testing.T, modelDir, data, run string) string {
	p := filepath.Join(t.TempDir(), "grpo.toml")
	cfg := fmt.Sprintf(`mode = "grpo"
run_dir = %q
[model]
path = %q
freeze_audio = false
[data]
train = %q
[train]
learning_rate = 1e-3
warmup_steps = 1
prompts_per_rank = 2
save_steps = 3
save_total_limit = 5
[grpo]
num_generations = 4
max_completion_length = 24
`, run, modelDir, data)
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runWorker(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("worker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func weightsAt(t *testing.T, run string, step int) []float32 {
	t.Helper()
	b, err := ckpt.LoadWeights(ckpt.StepDir(run, step))
	if err != nil {
		t.Fatal(err)
	}
	return b[0].Values
}

func sameBits(t *testing.T, what string, a, b []float32) {
	t.Helper()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("%s: weight %d is %v straight, %v resumed", what, i, a[i], b[i])
		}
	}
}

// Bitwise resume through real processes: 6 GRPO steps straight equal 3
// steps, kill -9 in the middle of step 4, a resume and 3 more steps; and a
// corrupted newest checkpoint is reported, set aside, and the run resumes
// from the one before it, again to the same bits.
func TestKillResumeIsBitwise(t *testing.T) {
	bin := buildWorker(t)
	modelDir, data := resumeFixture(t)

	straight := filepath.Join(t.TempDir(), "straight")
	runWorker(t, bin, "train", "--config", writeConfig(t, modelDir, data, straight), "--set", "train.max_steps=6")
	want := weightsAt(t, straight, 6)
	moved := false
	for i, v := range weightsAt(t, straight, 3) {
		moved = moved || v != want[i]
	}
	if !moved {
		t.Fatal("steps 4-6 left the weights unchanged: the test could not see a broken resume")
	}

	// The killed run is told to go on for long; it is killed as soon as
	// step 3's checkpoint is complete. (max_steps is outside the config
	// hash, and the schedule is constant after warmup.)
	killed := filepath.Join(t.TempDir(), "killed")
	cfg := writeConfig(t, modelDir, data, killed)
	cmd := exec.Command(bin, "train", "--config", cfg, "--set", "train.max_steps=1000")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := filepath.Join(ckpt.StepDir(killed, 3), ckpt.DoneFileName)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(done); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no step-3 checkpoint after 2 minutes:\n%s", out.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if _, err := os.Stat(ckpt.StepDir(killed, 6)); err == nil {
		t.Fatalf("the killed run got to step 6 before the kill:\n%s", out.String())
	}
	log := runWorker(t, bin, "train", "--config", cfg, "--set", "train.max_steps=6")
	if !strings.Contains(log, "resuming from "+ckpt.StepDir(killed, 3)) {
		t.Fatalf("the run did not resume from step 3:\n%s", log)
	}
	sameBits(t, "kill -9 at step 4, resume", want, weightsAt(t, killed, 6))

	// Corrupt the newest checkpoint: one flipped byte in the middle of
	// its weights file.
	p := filepath.Join(ckpt.StepDir(killed, 6), ckpt.WeightsFileName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	log = runWorker(t, bin, "train", "--config", cfg, "--set", "train.max_steps=6")
	if !strings.Contains(log, "warning:") || !strings.Contains(log, "step-00000006") || !strings.Contains(log, "resuming from "+ckpt.StepDir(killed, 3)) {
		t.Fatalf("a corrupted step-6 checkpoint was not reported and skipped:\n%s", log)
	}
	sameBits(t, "corrupted step 6, resumed from step 3", want, weightsAt(t, killed, 6))
	set, _ := filepath.Glob(ckpt.StepDir(killed, 6) + ".damaged-*")
	if len(set) != 1 {
		t.Fatalf("the damaged checkpoint was not kept aside: %v", set)
	}
}

func soloComm(t *testing.T) collective.Comm {
	c := collective.NewInProcess(1)[0]
	t.Cleanup(func() { c.Close() })
	return c
}

// SIGUSR1 to the ranks of a 2-rank job (through launcher run's
// forwarding, as srun does on a cluster): they agree at the next step
// boundary, write a checkpoint of the step they reached, and exit 0; the
// same command then resumes from it.
func TestUSR1CheckpointsAndExits(t *testing.T) {
	bin := buildWorker(t)
	launcher := buildCommand(t, "../launcher", "launcher")
	modelDir, data := resumeFixture(t)
	run := filepath.Join(t.TempDir(), "run")
	cfg := writeConfig(t, modelDir, data, run)
	cmd := exec.Command(launcher, "run", "--nproc", "2", "--", bin, "train", "--config", cfg, "--set", "train.max_steps=1000", "--set", "train.save_steps=0")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	metrics := filepath.Join(run, "metrics.jsonl")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(metrics)
		if bytes.Count(b, []byte("\n")) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no progress after 2 minutes:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGUSR1 the job exited with %v, want status 0:\n%s", err, out.String())
	}
	if st, err := ckpt.ReadState(latestStep(t, run)); err != nil || st.WorldSize != 2 {
		t.Fatalf("the checkpoint was not written by both ranks (%v):\n%s", err, out.String())
	}
	st, err := ckpt.ReadState(latestStep(t, run))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(metrics)
	if n := bytes.Count(b, []byte("\n")); st.Step != n || st.Step < 2 {
		t.Fatalf("checkpoint at step %d after %d logged steps:\n%s", st.Step, n, out.String())
	}
	if !strings.Contains(out.String(), "checkpointing step") {
		t.Fatalf("no checkpoint message:\n%s", out.String())
	}
	log := runWorker(t, bin, "train", "--config", cfg, "--set", fmt.Sprintf("train.max_steps=%d", st.Step+1))
	if !strings.Contains(log, fmt.Sprintf("resuming from %s", ckpt.StepDir(run, st.Step))) {
		t.Fatalf("the next run did not resume from step %d:\n%s", st.Step, log)
	}
}

func latestStep(t *testing.T, run string) string {
	dir, _, err := ckpt.Latest(run, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// SIGUSR1 stops worker eval and exits 0 without results (an eval array
// task is then requeued and run again). Here rank 0 of two is waiting for
// its peer in the rendezvous when the signal comes.
func TestEvalUSR1ExitsWithoutResults(t *testing.T) {
	bin := buildWorker(t)
	d := traintest.Shards(t, "loudness", 4, 3, audio.Qwen25Omni)
	out := filepath.Join(t.TempDir(), "pred.jsonl")
	cfg := filepath.Join(t.TempDir(), "eval.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[model]\npath = %q\n[eval]\nshards = %q\nout = %q\n",
		traintest.TinyModel(t, model.Qwen25Omni, 3), d.Path, out)), 0o644)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "eval", "--config", cfg)
	cmd.Env = append(os.Environ(), "RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", fmt.Sprintf("MASTER_PORT=%d", port),
		"EARL_JOB_TOKEN=0123456789abcdef0123456789abcdef")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for { // until rank 0 hosts the rendezvous store
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("rank 0 never listened:\n%s", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGUSR1: %v, want exit 0\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), "worker eval: SIGUSR1: stopped before the end, no predictions written") {
		t.Errorf("output:\n%s", buf.String())
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("predictions written after SIGUSR1")
	}
}
