package shards

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as a sharder child process, so a test
// can kill a real run with SIGKILL mid-way.
func TestMain(m *testing.M) {
	if spec := os.Getenv("EARL_SHARD_CHILD"); spec != "" {
		var o BuildOptions
		if err := json.Unmarshal([]byte(spec), &o); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		// Slow the writer down so the parent can kill it between shards.
		o.Progress = func(Progress) { time.Sleep(15 * time.Millisecond) }
		if _, err := Build(context.Background(), o); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A run killed with SIGKILL (no chance to clean up) leaves only complete
// shards under final names; --resume finishes it with exactly the bytes of
// an uninterrupted run.
func TestKilledRunResumes(t *testing.T) {
	o := synthSet(t, "avqa", 40, 21)
	o.ShardSize = 4
	clean := o
	clean.Out += "-clean"
	mustBuild(t, clean)
	want := dirFiles(t, clean.Out)

	spec, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EARL_SHARD_CHILD="+string(spec))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Kill once a few shards are complete, well before the end.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(o.Out, shardFileName(3))); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("child exited before the kill: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("child never completed 4 shards")
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	err = <-exited
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child was not killed (it finished first?): %v", err)
	}
	if _, err := os.Stat(filepath.Join(o.Out, ManifestName)); !os.IsNotExist(err) {
		t.Fatal("killed run has a manifest")
	}
	kept, _ := filepath.Glob(filepath.Join(o.Out, "shard-*.h5"))
	if len(kept) >= 10 {
		t.Fatalf("child finished all %d shards before the kill", len(kept))
	}
	// Every shard under a final name is one the clean run also wrote.
	for _, p := range kept {
		b, _ := os.ReadFile(p)
		if string(b) != string(want[filepath.Base(p)]) {
			t.Errorf("%s under its final name differs from the clean run's", filepath.Base(p))
		}
	}
	if _, err := Open(o.Out); err == nil {
		t.Error("Open accepted an unfinished directory")
	}
	o.Resume = true
	res := mustBuild(t, o)
	t.Logf("killed after %d complete shards; resume kept %d", len(kept), res.Resumed)
	sameFiles(t, want, dirFiles(t, o.Out))
}
