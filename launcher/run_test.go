package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// launcherRun starts `launcher run ARGS...` and returns its exit status,
// stdout and stderr.
func launcherRun(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return run(t, env, launcherBin, append([]string{"run"}, args...)...)
}

func TestRunSetsEnvironmentAndPrefixesLines(t *testing.T) {
	r := launcherRun(t, []string{"GOMAXPROCS=7"}, "--nproc", "3", "--",
		"sh", "-c", `echo "env $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT $EARL_JOB_TOKEN $OMP_NUM_THREADS $GOMAXPROCS"; echo to-stderr >&2; printf no-newline`)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	re := regexp.MustCompile(`(?m)^\[rank (\d)\] env (\d) 3 (\d) 3 127\.0\.0\.1 (\d+) ([0-9a-f]{32}) (\d+) 7$`)
	ms := re.FindAllStringSubmatch(r.stdout, -1)
	if len(ms) != 3 {
		t.Fatalf("want 3 env lines, got:\n%s", r.stdout)
	}
	ranks := map[string]bool{}
	for _, m := range ms {
		if m[1] != m[2] || m[2] != m[3] {
			t.Errorf("prefix / RANK / LOCAL_RANK disagree: %q", m[0])
		}
		if m[4] != ms[0][4] || m[5] != ms[0][5] {
			t.Errorf("ranks got different ports or tokens: %q vs %q", m[0], ms[0][0])
		}
		if m[4] == "0" || m[6] == "0" {
			t.Errorf("port or OMP_NUM_THREADS is 0: %q", m[0])
		}
		ranks[m[1]] = true
	}
	if len(ranks) != 3 {
		t.Errorf("ranks %v", ranks)
	}
	for i := range 3 {
		for _, want := range []string{fmt.Sprintf("[rank %d] no-newline\n", i)} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q", want)
			}
		}
		if !strings.Contains(r.stderr, fmt.Sprintf("[rank %d] to-stderr\n", i)) {
			t.Errorf("stderr lacks rank %d's line:\n%s", i, r.stderr)
		}
	}
	// A fresh token and port every run; --master-port is used as given.
	r2 := launcherRun(t, nil, "--nproc", "1", "--master-port", "34567", "--master-addr", "localhost", "--",
		"sh", "-c", `echo "$MASTER_ADDR:$MASTER_PORT $EARL_JOB_TOKEN"`)
	if r2.code != 0 || !strings.HasPrefix(r2.stdout, "[rank 0] localhost:34567 ") || strings.Contains(r2.stdout, ms[0][5]) {
		t.Errorf("second run: %d %q", r2.code, r2.stdout)
	}
}

// The first failure stops the others and its status is the launcher's.
func TestRunFailureStopsTheOthers(t *testing.T) {
	start := time.Now()
	r := launcherRun(t, nil, "--nproc", "3", "--grace", "20s", "--", "sh", "-c",
		`if [ "$RANK" = 1 ]; then sleep 0.3; exit 3; fi; trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.05; done`)
	if r.code != 3 {
		t.Fatalf("exit %d, want 3\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v: the others were not stopped promptly", d)
	}
	for _, i := range []int{0, 2} {
		if !strings.Contains(r.stdout, fmt.Sprintf("[rank %d] got TERM", i)) {
			t.Errorf("rank %d did not get SIGTERM:\n%s", i, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "rank 1 exited with status 3; stopping the other 2 ranks") {
		t.Errorf("stderr: %s", r.stderr)
	}
}

// A rank killed by a signal gives 128+signal; ranks that ignore SIGTERM
// get SIGKILL after the grace period.
func TestRunSignalStatusAndGrace(t *testing.T) {
	start := time.Now()
	r := launcherRun(t, nil, "--nproc", "2", "--grace", "500ms", "--", "sh", "-c",
		`if [ "$RANK" = 0 ]; then sleep 0.3; kill -SEGV $$; fi; trap '' TERM; sleep 30`)
	if r.code != 128+int(syscall.SIGSEGV) {
		t.Fatalf("exit %d, want %d\n%s", r.code, 128+int(syscall.SIGSEGV), r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v: SIGKILL after --grace 500ms did not come", d)
	}
	for _, want := range []string{"rank 0 was killed by signal 11", "still running after 500ms: SIGKILL"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

func TestRunErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--nproc", "2", "--", "/nonexistent/cmd"}, 127, "start rank 0"},
		{[]string{"--nproc", "0", "--", "true"}, 2, "--nproc 0"},
		{[]string{"--nproc", "2"}, 2, "no command"},
		{[]string{"--nproc", "2", "--master-port", "70000", "--", "true"}, 2, "--master-port 70000"},
		{[]string{"--nproc", "2", "worker", "selftest", "--iters", "1"}, 2, "goes after --"},
	} {
		r := launcherRun(t, nil, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
}

// startLauncher starts `launcher run ARGS...` and waits until every rank
// has printed a line containing ready; it returns the command and a
// function that waits for it and returns its output.
func startLauncher(t *testing.T, n int, ready string, args ...string) (*exec.Cmd, func() result) {
	t.Helper()
	cmd := exec.Command(launcherBin, append([]string{"run"}, args...)...)
	var se bytes.Buffer
	cmd.Stderr = &se
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var mu sync.Mutex
	readyCh := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pipe)
		seen := 0
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), ready) {
				if seen++; seen == n {
					close(readyCh)
				}
			}
		}
	}()
	select {
	case <-readyCh:
	case <-done:
		select {
		case <-readyCh:
		default:
			cmd.Wait()
			t.Fatalf("launcher ended before every rank was ready:\n%s\n%s", out.String(), se.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		t.Fatalf("ranks not ready after 60 s:\n%s\n%s", out.String(), se.String())
	}
	return cmd, func() result {
		<-done
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{out.String(), se.String(), code}
	}
}

func TestRunForwardsSignals(t *testing.T) {
	// SIGUSR1 reaches every rank, which exits 0: the launcher exits 0.
	cmd, wait := startLauncher(t, 3, "ready", "--nproc", "3", "--", "sh", "-c",
		`trap 'echo got USR1; exit 0' USR1; echo ready; while :; do sleep 0.05; done`)
	cmd.Process.Signal(syscall.SIGUSR1)
	r := wait()
	if r.code != 0 {
		t.Errorf("exit %d after SIGUSR1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for i := range 3 {
		if !strings.Contains(r.stdout, fmt.Sprintf("[rank %d] got USR1", i)) {
			t.Errorf("rank %d did not get SIGUSR1:\n%s", i, r.stdout)
		}
	}
	// SIGINT is forwarded once (the ranks have their own process group);
	// ranks that die of it make the launcher exit 130.
	cmd, wait = startLauncher(t, 2, "ready", "--nproc", "2", "--", "sh", "-c", `echo ready; exec sleep 30`)
	cmd.Process.Signal(syscall.SIGINT)
	r = wait()
	if r.code != 130 || !strings.Contains(r.stderr, "forwarding interrupt to 2 ranks") {
		t.Errorf("exit %d after SIGINT, want 130\n%s", r.code, r.stderr)
	}
	// SIGTERM likewise: 143.
	cmd, wait = startLauncher(t, 2, "ready", "--nproc", "2", "--", "sh", "-c", `echo ready; exec sleep 30`)
	cmd.Process.Signal(syscall.SIGTERM)
	if r = wait(); r.code != 143 {
		t.Errorf("exit %d after SIGTERM, want 143\n%s", r.code, r.stderr)
	}
}

var workerOnce struct {
	sync.Once
	bin string
	err error
}

// workerBinary builds the worker command once, beside the launcher.
func workerBinary(t *testing.T) string {
	t.Helper()
	workerOnce.Do(func() {
		workerOnce.bin = filepath.Join(filepath.Dir(launcherBin), "worker")
		if out, err := exec.Command("go", "build", "-o", workerOnce.bin, "earl/worker").CombinedOutput(); err != nil {
			workerOnce.err = fmt.Errorf("go build earl/worker: %v\n%s", err, out)
		}
	})
	if workerOnce.err != nil {
		t.Fatal(workerOnce.err)
	}
	return workerOnce.bin
}

// launcher run + worker selftest: the collectives over TCP between local
// ranks, every result checked by the worker.
func TestRunWorkerSelftest(t *testing.T) {
	worker := workerBinary(t)
	r := launcherRun(t, nil, "--nproc", "3", "--", worker, "selftest", "--size-elements", "10007", "--iters", "2", "--timeout", "20s")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	checksums := map[string]map[string]bool{}
	for i := range 3 {
		for _, op := range []string{"allreduce sum", "allreduce avg", "allreduce max", "reducescatter sum", "allgather", "broadcast", "barrier", "allreduce64 sum", "allreduce64 max"} {
			re := regexp.MustCompile(fmt.Sprintf(`(?m)^\[rank %d\] rank %d/3: %s ok \d+ elements x 2 iters \S+ checksum ([0-9a-f]{16})$`, i, i, op))
			m := re.FindStringSubmatch(r.stdout)
			if m == nil {
				t.Errorf("rank %d: no %q line", i, op)
				continue
			}
			if checksums[op] == nil {
				checksums[op] = map[string]bool{}
			}
			checksums[op][m[1]] = true
		}
		for _, want := range []string{fmt.Sprintf("[rank %d] rank %d/3: env torchrun", i, i), fmt.Sprintf("[rank %d] rank %d/3: selftest ok", i, i)} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("no %q", want)
			}
		}
	}
	// Every rank holds the same result of these, so prints the same checksum.
	for _, op := range []string{"allreduce sum", "allreduce avg", "allreduce max", "allgather", "broadcast", "allreduce64 sum"} {
		if len(checksums[op]) != 1 {
			t.Errorf("%s: ranks printed different checksums %v", op, checksums[op])
		}
	}
	if len(checksums["reducescatter sum"]) != 3 {
		t.Errorf("reducescatter: each rank holds its own shard, yet checksums %v", checksums["reducescatter sum"])
	}
	if t.Failed() {
		t.Logf("output:\n%s\n%s", r.stdout, r.stderr)
	}
}

// SIGUSR1 to the launcher reaches every worker, which writes its marker
// and exits 0 (the checkpoint-and-exit stand-in).
func TestRunWorkerUSR1(t *testing.T) {
	worker := workerBinary(t)
	dir := t.TempDir()
	cmd, wait := startLauncher(t, 2, "holding for", "--nproc", "2", "--", worker, "selftest",
		"--size-elements", "100", "--iters", "1", "--hold", "60", "--marker-dir", dir)
	cmd.Process.Signal(syscall.SIGUSR1)
	r := wait()
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for i := range 2 {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("usr1-rank%d", i)))
		if err != nil || !strings.Contains(string(b), fmt.Sprintf("rank %d of 2", i)) {
			t.Errorf("marker of rank %d: %q, %v", i, b, err)
		}
	}
}
