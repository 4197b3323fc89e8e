package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests run the real binaries, as a user or a Slurm script would.
var launcherBin, toolsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "earl-launcher-test")
	if err != nil {
		panic(err)
	}
	launcherBin, toolsBin = filepath.Join(dir, "launcher"), filepath.Join(dir, "tools")
	for bin, pkg := range map[string]string{launcherBin: "earl/launcher", toolsBin: "earl/tools"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, env []string, bin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
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

func synthesize(t *testing.T, n int, args ...string) (dir, ann string) {
	dir = t.TempDir()
	r := run(t, nil, toolsBin, append([]string{"synth", "--format", "jsonl", "--n", fmt.Sprint(n), "--out", dir}, args...)...)
	if r.code != 0 {
		t.Fatalf("tools synth: %s", r.stderr)
	}
	return dir, filepath.Join(dir, "synth.jsonl")
}

func TestShardInspectJSON(t *testing.T) {
	src, ann := synthesize(t, 30, "--duration", "0.5:2")
	out := filepath.Join(t.TempDir(), "shards")
	// Flags after positional arguments work too; progress goes to stderr as
	// plain lines when stderr is not a terminal.
	r := run(t, []string{"EARL_PROGRESS_INTERVAL=1ns"}, launcherBin, "shard", "--in", "jsonl", "--src", ann, "--audio-root", src,
		"--out", out, "--shard-size", "8")
	if r.code != 0 {
		t.Fatalf("shard failed (%d): %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "wrote 30 samples in 4 shards") {
		t.Errorf("stdout: %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "shard jsonl: 30/30 records (100.0%)") || !strings.Contains(r.stderr, "ETA") {
		t.Errorf("no plain progress lines on stderr: %q", r.stderr)
	}
	r = run(t, nil, launcherBin, "inspect", out, "--json", "--verify")
	if r.code != 0 {
		t.Fatalf("inspect failed: %s", r.stderr)
	}
	var doc struct {
		Samples  int               `json:"samples"`
		Shards   []json.RawMessage `json:"shards"`
		ByTask   map[string]int    `json:"by_task"`
		Verified bool              `json:"verified"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("inspect --json is not JSON: %v\n%s", err, r.stdout)
	}
	if doc.Samples != 30 || len(doc.Shards) != 4 || !doc.Verified {
		t.Errorf("inspect --json: %+v", doc)
	}
	total := 0
	for _, n := range doc.ByTask {
		total += n
	}
	if total != 30 {
		t.Errorf("by_task adds up to %d", total)
	}
	// A corrupted shard fails --verify with exit status 1.
	p := filepath.Join(out, "shard-00001.h5")
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	os.WriteFile(p, b, 0o644)
	r = run(t, nil, launcherBin, "inspect", "--verify", out)
	if r.code != 1 || !strings.Contains(r.stdout, "shard-00001.h5: sha256") {
		t.Errorf("verify of a corrupted shard: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestShardErrorsNameTheProblem(t *testing.T) {
	src, ann := synthesize(t, 3)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--in", "jsonl", "--src", filepath.Join(src, "nope.jsonl")}, "nope.jsonl"},
		{[]string{"--in", "wav", "--src", ann}, "known formats are audsem, avqa"},
		{[]string{"--in", "jsonl", "--src", ann, "--family", "qwen3"}, `unknown model family "qwen3"`},
		{[]string{"--in", "jsonl", "--src", ann, "--dtype", "bf16"}, `unknown feature dtype "bf16"`},
		{[]string{"--in", "jsonl", "--src", ann, "--audio-root", t.TempDir(), "--strict"}, "missing-audio"},
	} {
		args := append([]string{"shard", "--out", filepath.Join(t.TempDir(), "o")}, c.args...)
		r := run(t, nil, launcherBin, args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want it to mention %q", c.args, r.code, r.stderr, c.want)
		}
	}
	r := run(t, nil, launcherBin, "inspect", t.TempDir())
	if r.code != 1 || !strings.Contains(r.stderr, "not a complete shard directory") {
		t.Errorf("inspect of an empty dir: %d %q", r.code, r.stderr)
	}
}

// Ctrl-C stops the run cleanly: exit 130, a hint to --resume, no partial
// file; --resume then completes the directory.
func TestInterruptThenResume(t *testing.T) {
	src, ann := synthesize(t, 400, "--duration", "2:4", "--rates", "44100,48000")
	out := filepath.Join(t.TempDir(), "shards")
	cmd := exec.Command(launcherBin, "shard", "--in", "jsonl", "--src", ann, "--audio-root", src, "--out", out, "--shard-size", "10", "--workers", "1")
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(out, "shard-00001.h5")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no complete shard after 60 s")
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("interrupted shard: %v (want exit 130)\n%s", err, se.String())
	}
	if !strings.Contains(se.String(), "--resume") {
		t.Errorf("no --resume hint: %q", se.String())
	}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") || e.Name() == "manifest.json" {
			t.Errorf("interrupted run left %s", e.Name())
		}
	}
	r := run(t, nil, launcherBin, "shard", "--in", "jsonl", "--src", ann, "--audio-root", src, "--out", out, "--shard-size", "10", "--resume")
	if r.code != 0 || !strings.Contains(r.stdout, "wrote 400 samples in 40 shards") || !strings.Contains(r.stdout, "kept from the earlier run") {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, nil, launcherBin, "inspect", "--verify", out); r.code != 0 {
		t.Fatalf("verify after resume: %s %s", r.stdout, r.stderr)
	}
}
