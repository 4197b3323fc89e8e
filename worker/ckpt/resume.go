package ckpt

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// incompleteError marks a checkpoint directory without DONE.
type incompleteError struct{ dir string }

func (e *incompleteError) Error() string {
	return fmt.Sprintf("checkpoint %s is incomplete (no %s): its save was interrupted", e.dir, DoneFileName)
}

// Verify checks that stepDir is a complete, intact checkpoint and returns
// its state: DONE is present and holds the sha256 of trainer_state.json,
// which lists the weights file and one optimizer file per rank, and every
// listed file has the recorded size and sha256 (the files are read in
// full, several at a time). Errors name the file and what is wrong.
func Verify(stepDir string) (*State, error) {
	st, err := checkDir(stepDir, true)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// checkDir is Verify; with full false it checks only sizes, not hashes.
func checkDir(stepDir string, full bool) (*State, error) {
	done, err := os.ReadFile(filepath.Join(stepDir, DoneFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &incompleteError{stepDir}
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", stepDir, err)
	}
	fail := func(format string, args ...any) error {
		return corruptf("checkpoint %s: %s", stepDir, fmt.Sprintf(format, args...))
	}
	f := strings.Fields(string(done))
	if len(f) != 2 || f[1] != StateFileName || len(f[0]) != 64 {
		return nil, fail("%s is damaged (want %q)", DoneFileName, "<sha256>  "+StateFileName)
	}
	js, err := os.ReadFile(filepath.Join(stepDir, StateFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fail("%s is missing", StateFileName)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", stepDir, err)
	}
	if got := sha256Hex(js); got != f[0] {
		return nil, fail("%s has sha256 %.12s…, %s records %.12s…: the file is corrupted", StateFileName, got, DoneFileName, f[0])
	}
	st, err := parseState(filepath.Join(stepDir, StateFileName), js)
	if err != nil {
		return nil, err
	}
	if st.WorldSize < 1 {
		return nil, fail("%s: world size %d", StateFileName, st.WorldSize)
	}
	want := []string{WeightsFileName}
	for r := range st.WorldSize {
		want = append(want, OptimFileName(r))
	}
	for _, name := range want {
		if _, ok := st.Files[name]; !ok {
			return nil, fail("%s does not list %s", StateFileName, name)
		}
	}
	// Sizes first, for every file: a missing or truncated file is named
	// without hashing the rest.
	names := slices.Sorted(maps.Keys(st.Files))
	for _, name := range names {
		if name != filepath.Base(name) || name == "." || name == ".." {
			return nil, fail("%s lists %q, not a file of the directory", StateFileName, name)
		}
		info, err := os.Stat(filepath.Join(stepDir, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil, fail("%s is missing", name)
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", stepDir, err)
		}
		if want := st.Files[name].Bytes; info.Size() != want {
			how := "truncated"
			if info.Size() > want {
				how = "longer than written"
			}
			return nil, fail("%s is %d bytes, %s records %d: %s", name, info.Size(), StateFileName, want, how)
		}
	}
	if !full {
		return st, nil
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, sum, err := hashFile(filepath.Join(stepDir, name))
			if err != nil {
				errs[i] = fmt.Errorf("checkpoint %s: %w", stepDir, err)
				return
			}
			if got, want := hex.EncodeToString(sum[:]), st.Files[name].SHA256; got != want {
				errs[i] = fail("%s has sha256 %.12s…, %s records %.12s…: the file is corrupted", name, got, StateFileName, want)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err // the first file's, in name order
		}
	}
	return st, nil
}

// Latest finds the checkpoint to resume runDir from: the newest
// RUN/checkpoints/step-N that Verify accepts. Newer ones that are
// incomplete (no DONE: the save was interrupted) or damaged (a file
// missing, truncated or not matching its sha256) are skipped, each
// reported through warn (which may be nil) with the file and the problem.
// When the run has no checkpoint, or only incomplete ones, the error wraps
// ErrNoCheckpoint: a fresh start. When all are incomplete or damaged and
// some are damaged, it does not: the run has progress that a damaged disk
// should not silently discard. Verify reads every file, so the data is in the page cache for
// the loads that follow; on many ranks, let rank 0 call Latest and
// broadcast the step.
func Latest(runDir string, warn func(string)) (stepDir string, st *State, err error) {
	steps, err := sortedSteps(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, fmt.Errorf("run %s: %w: %s does not exist", runDir, ErrNoCheckpoint, filepath.Join(runDir, "checkpoints"))
	}
	if err != nil {
		return "", nil, fmt.Errorf("run %s: %w", runDir, err)
	}
	damaged := 0
	for _, s := range steps {
		st, err := Verify(s.dir)
		if err == nil {
			return s.dir, st, nil
		}
		var ie *incompleteError
		incomplete := errors.As(err, &ie)
		if !incomplete {
			damaged++
		}
		if warn != nil {
			if incomplete {
				warn(err.Error() + "; skipped")
			} else {
				warn(err.Error() + "; skipped, trying an older checkpoint")
			}
		}
	}
	dir := filepath.Join(runDir, "checkpoints")
	if damaged > 0 {
		// Not ErrNoCheckpoint: starting afresh would silently throw away
		// the run's progress, which a person should decide.
		return "", nil, fmt.Errorf("run %s: every checkpoint under %s is incomplete or damaged (%d damaged, see the warnings): restore the files, or delete the checkpoints to start afresh",
			runDir, dir, damaged)
	}
	if len(steps) > 0 {
		return "", nil, fmt.Errorf("run %s: %w in %s: %d incomplete (interrupted saves)", runDir, ErrNoCheckpoint, dir, len(steps))
	}
	return "", nil, fmt.Errorf("run %s: %w in %s", runDir, ErrNoCheckpoint, dir)
}

// Prune deletes checkpoints of runDir: complete ones beyond the newest
// keep (at least 1), and incomplete or damaged ones older than the newest
// complete one (left by interrupted saves). Directories newer than the
// newest complete checkpoint are left alone. "Complete" here is DONE, an
// intact trainer_state.json and every file at its recorded size — the
// files are not hashed, so Prune stays cheap after every save. A
// checkpoint is deleted DONE first, so one interrupted mid-delete is
// incomplete, never a complete one missing files.
func Prune(runDir string, keep int) error {
	if keep < 1 {
		return fmt.Errorf("prune %s: keep %d: keep at least the newest checkpoint (1)", runDir, keep)
	}
	steps, err := sortedSteps(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("prune %s: %w", runDir, err)
	}
	kept := 0
	for _, s := range steps {
		_, err := checkDir(s.dir, false)
		var del bool
		if err == nil {
			kept++
			del = kept > keep
		} else {
			del = kept > 0 // older than the newest complete
		}
		if !del {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, DoneFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("prune %s: %w", s.dir, err)
		}
		if err := os.RemoveAll(s.dir); err != nil {
			return fmt.Errorf("prune %s: %w", s.dir, err)
		}
	}
	return nil
}

// Step is one checkpoint of a run.
type Step struct {
	Step int
	Dir  string
}

// Complete lists runDir's complete checkpoints, oldest first: those with
// DONE, an intact trainer_state.json and every file at its recorded size
// (the cheap check of Prune; loading one hashes nothing either, so a
// damaged file is found by Verify or by the loader's own checks).
func Complete(runDir string) ([]Step, error) {
	steps, err := sortedSteps(runDir)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", runDir, err)
	}
	var out []Step
	for i := len(steps) - 1; i >= 0; i-- {
		if _, err := checkDir(steps[i].dir, false); err == nil {
			out = append(out, Step{steps[i].step, steps[i].dir})
		}
	}
	return out, nil
}
