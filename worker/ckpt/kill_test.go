package ckpt

import (
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

// killSpec tells a child test process where to save and where to stop.
type killSpec struct {
	Run    string
	Step   int
	File   string // stop before block Block of this file ("" : in Finalize, before DONE)
	Block  int
	Marker string // created when the child reaches the stop point
}

// TestMain lets the test binary act as a saving rank, so a test can kill a
// real save with SIGKILL (no deferred clean-up runs) at a chosen point.
func TestMain(m *testing.M) {
	if spec := os.Getenv("EARL_CKPT_CHILD"); spec != "" {
		var k killSpec
		if err := json.Unmarshal([]byte(spec), &k); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		stop := func() {
			os.WriteFile(k.Marker, nil, 0o644)
			time.Sleep(time.Hour) // until killed
		}
		testHookBlock = func(path string, block int) error {
			if filepath.Base(path) == k.File && block == k.Block {
				stop()
			}
			return nil
		}
		if k.File == "" {
			testHookBeforeDone = stop
		}
		if err := killSave(k.Run, k.Step); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// killSave is one complete save of step by 2 ranks (the child plays both).
func killSave(run string, step int) error {
	dir := StepDir(run, step)
	opt := SaveOptions{BlockBytes: 4096}
	if err := SaveWeights(dir, ckBuffers(uint64(step)), opt); err != nil {
		return err
	}
	st := ckOptimState()
	for r := range 2 {
		if err := SaveShards(dir, r, ckShardsOf(st, r, 2), opt); err != nil {
			return err
		}
	}
	return Finalize(dir, State{Step: step, WorldSize: 2})
}

// A save killed with SIGKILL mid-way — in the weights file, in a rank's
// optimizer file, or in Finalize between trainer_state.json and DONE —
// leaves no DONE and no partial file under a final name; Latest falls back
// to the previous checkpoint; saving the step again completes it.
func TestKilledSave(t *testing.T) {
	for _, c := range []struct {
		name  string
		file  string
		block int
	}{
		{"weights", WeightsFileName, 3},
		{"optim", OptimFileName(1), 5},
		{"finalize", "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := t.TempDir()
			if err := killSave(run, 1); err != nil {
				t.Fatal(err)
			}
			marker := filepath.Join(t.TempDir(), "stopped")
			spec, _ := json.Marshal(killSpec{Run: run, Step: 2, File: c.file, Block: c.block, Marker: marker})
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "EARL_CKPT_CHILD="+string(spec))
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			deadline := time.After(60 * time.Second)
		wait:
			for {
				select {
				case err := <-exited:
					t.Fatalf("child exited before the stop point: %v", err)
				case <-deadline:
					cmd.Process.Kill()
					t.Fatal("child never reached the stop point")
				case <-time.After(2 * time.Millisecond):
					if _, err := os.Stat(marker); err == nil {
						break wait
					}
				}
			}
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatal("child was not killed")
			}

			dir := StepDir(run, 2)
			if _, err := os.Stat(filepath.Join(dir, DoneFileName)); err == nil {
				t.Fatal("killed save has DONE")
			}
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				n := e.Name()
				names = append(names, n)
				if strings.HasPrefix(n, ".") {
					continue // a temporary file: never read
				}
				if n == c.file {
					t.Errorf("%s exists under its final name", n)
				}
				if strings.HasSuffix(n, ".zst") { // complete, or not there at all
					c, err := openContainer(filepath.Join(dir, n))
					if err != nil {
						t.Errorf("%s under its final name: %v", n, err)
						continue
					}
					c.Close()
					if info, err := fileInfo(filepath.Join(dir, n)); err != nil {
						t.Error(err)
					} else if _, sum, _ := hashFile(filepath.Join(dir, n)); fmt.Sprintf("%x", sum) != info.SHA256 {
						t.Errorf("%s: the sidecar does not match the file", n)
					}
				}
			}
			t.Logf("left by the killed save: %v", names)
			var warned []string
			got, _, err := Latest(run, func(s string) { warned = append(warned, s) })
			if err != nil || got != StepDir(run, 1) {
				t.Fatalf("Latest = %s, %v; want step 1", got, err)
			}
			if len(warned) != 1 || !strings.Contains(warned[0], "incomplete") {
				t.Errorf("warnings %q", warned)
			}
			// The restarted job saves the step again, over the leftovers.
			if err := killSave(run, 2); err != nil {
				t.Fatal(err)
			}
			got, _, err = Latest(run, func(s string) { t.Errorf("warned: %s", s) })
			if err != nil || got != dir {
				t.Fatalf("after the re-save, Latest = %s, %v", got, err)
			}
			entries, _ = os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("Finalize left the temporary %s", e.Name())
				}
			}
		})
	}
}
