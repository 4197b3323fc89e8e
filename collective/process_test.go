package collective

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"earl/kernels/cpu"
)

// childSpec tells a re-executed test binary to act as one rank.
type childSpec struct {
	Rank, Size, Port int
	Token            string
	Timeout          time.Duration
	Mode             string // "suite": run every collective and check it; "loop": all-reduce until an error
	N                int    // vector length in loop mode
	Transport        string // EARL_COLLECTIVE_TRANSPORT for the child
}

const childEnv = "EARL_COLLECTIVE_CHILD"

// TestMain lets the test binary run as a rank in its own process, so the
// multi-process path — and a rank killed or stopped for real — is tested.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

func runChild(spec string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	c, err := Dial(context.Background(), s.Rank, s.Size, "127.0.0.1", s.Port, s.Token, Options{Timeout: s.Timeout})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	switch s.Mode {
	case "suite":
		if err := runSuite(c, suiteSizes, 21); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "loop":
		x := cpu.Wrap(make([]float32, s.N))
		for {
			if err := c.AllReduce(x, Sum); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	}
	return 3
}

func startChild(t *testing.T, s childSpec) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	spec, _ := json.Marshal(s)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec), transportEnv+"="+s.Transport)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, &out
}

// Three ranks, each its own OS process, run the whole suite.
func TestMultiProcess(t *testing.T) {
	port := freePort(t)
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for r := range 3 {
		cmd, out := startChild(t, childSpec{Rank: r, Size: 3, Port: port, Token: testToken, Timeout: 20 * time.Second, Mode: "suite"})
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for r, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("rank %d: %v\n%s", r, err, outs[r])
		}
	}
}

// faultJob runs ranks 0 and 2 of a 3-rank job in this process, all-reducing
// 64 MiB vectors in a loop, beside rank 1 in a child process; once rank 0
// is inside its third all-reduce, hurt does something to the child. It
// returns, for ranks 0 and 2, the error and how long after hurt it came.
func faultJob(t *testing.T, transport string, timeout time.Duration, hurt func(*exec.Cmd)) ([2]error, [2]time.Duration, *bytes.Buffer) {
	const n = 16 << 20
	port := freePort(t)
	child, out := startChild(t, childSpec{Rank: 1, Size: 3, Port: port, Token: testToken, Timeout: timeout, Mode: "loop", N: n, Transport: transport})
	var iters atomic.Int64
	var inCall atomic.Bool
	var hurtAt atomic.Int64
	var errs [2]error
	var took [2]time.Duration
	var wg sync.WaitGroup
	for i, r := range []int{0, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(context.Background(), r, 3, "127.0.0.1", port, testToken, Options{Timeout: timeout, tcpOnly: transport == "tcp"})
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			x := cpu.Wrap(make([]float32, n))
			for {
				if r == 0 {
					inCall.Store(true)
				}
				err := c.AllReduce(x, Sum)
				if err != nil {
					errs[i] = err
					took[i] = time.Since(time.Unix(0, hurtAt.Load()))
					return
				}
				if r == 0 {
					inCall.Store(false)
					iters.Add(1)
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for iters.Load() < 2 || !inCall.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("the job never got going: %v\n%s", errs, out)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // well inside the all-reduce (~100 ms)
	if !inCall.Load() {
		t.Fatal("rank 0 left the all-reduce before the fault")
	}
	hurtAt.Store(time.Now().UnixNano())
	hurt(child)
	wg.Wait()
	return errs, took, out
}

// kill -9 of a rank in the middle of a large all-reduce: the others return
// a *PeerError naming it within a bound far below the timeout (the
// kernel closes the dead process's sockets; nobody waits for a timer).
func TestKilledRank(t *testing.T) {
	for _, transport := range []string{"auto", "tcp"} {
		t.Run(transport, func(t *testing.T) { killedRank(t, transport) })
	}
}

func killedRank(t *testing.T, transport string) {
	const timeout, bound = 10 * time.Second, 2 * time.Second
	errs, took, _ := faultJob(t, transport, timeout, func(c *exec.Cmd) { c.Process.Signal(syscall.SIGKILL) })
	for i, r := range []int{0, 2} {
		var pe *PeerError
		if !errors.As(errs[i], &pe) || pe.Rank != 1 || !strings.HasPrefix(pe.Addr, "127.0.0.1:") {
			t.Errorf("rank %d: %v, want a PeerError naming rank 1 and its address", r, errs[i])
			continue
		}
		t.Logf("rank %d, %v after the kill: %v", r, took[i].Round(time.Millisecond), errs[i])
		if took[i] > bound {
			t.Errorf("rank %d took %v to report the dead rank (bound %v)", r, took[i], bound)
		}
	}
}

// A stopped rank (SIGSTOP: alive, sockets open, silent) is reported within
// the timeout, by the rank that waits on it and, through the abort
// message, by the one that does not.
func TestStalledRank(t *testing.T) {
	const timeout = 2 * time.Second
	errs, took, _ := faultJob(t, "auto", timeout, func(c *exec.Cmd) { c.Process.Signal(syscall.SIGSTOP) })
	for i, r := range []int{0, 2} {
		var pe *PeerError
		if !errors.As(errs[i], &pe) || pe.Rank != 1 {
			t.Errorf("rank %d: %v, want a PeerError naming rank 1", r, errs[i])
			continue
		}
		t.Logf("rank %d, %v after SIGSTOP: %v", r, took[i].Round(time.Millisecond), errs[i])
		if took[i] < timeout/2 || took[i] > timeout+2*time.Second {
			t.Errorf("rank %d reported the stall after %v, want about the timeout %v", r, took[i], timeout)
		}
	}
}
