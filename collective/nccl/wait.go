//go:build cuda

package nccl

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"gorgonia.org/cu"
)

// wait blocks until everything queued on the stream has finished,
// polling the completion event and NCCL's asynchronous error. A peer that
// died or never arrives leaves the NCCL kernel spinning forever; after
// c.timeout the communicator is aborted, which ends that kernel, and the
// error names the operation. NCCL does not say which peer is missing.
func (c *Comm) wait(op string) error {
	if err := c.done.Record(c.stream); err != nil {
		return c.cudaFail(op, "recording the completion event", err)
	}
	deadline := time.Now().Add(c.timeout)
	for i := 0; ; i++ {
		err := c.done.Query()
		if err == nil {
			return nil
		}
		if !errors.Is(err, cu.NotReady) {
			return c.cudaFail(op, "waiting for the collective", err)
		}
		if r := c.lib.asyncError(c.h); r != resSuccess && r != resInProgress {
			return c.fail(op, r)
		}
		if time.Now().After(deadline) {
			c.abort()
			e := &Error{Op: op, Rank: c.rank, Limit: c.timeout}
			c.broken = e
			return e
		}
		// Spin briefly (most collectives end within microseconds of the
		// slowest rank's arrival), then back off to at most 1 ms.
		switch {
		case i < 100:
			runtime.Gosched()
		case i < 1000:
			time.Sleep(20 * time.Microsecond)
		default:
			time.Sleep(time.Millisecond)
		}
	}
}

// fail turns NCCL result r of op into an error and aborts the
// communicator: after a failed call the ranks no longer agree on what
// was queued, so nothing later could complete.
func (c *Comm) fail(op string, r int) error {
	e := &Error{Op: op, Rank: c.rank, Result: r, Msg: c.lib.errorText(r, c.h)}
	c.abort()
	c.broken = e
	return e
}

// cudaFail is fail for a CUDA error around a collective.
func (c *Comm) cudaFail(op, what string, err error) error {
	e := &Error{Op: op, Rank: c.rank, Msg: what, Err: err}
	c.abort()
	c.broken = e
	return e
}

// abort calls ncclCommAbort, bounded by the timeout like every NCCL call
// that may wait.
func (c *Comm) abort() {
	if c.h == (commHandle{}) {
		return
	}
	h := c.h
	c.guard(func() { c.lib.commAbort(h) })
}

// guard runs f, an NCCL call without a timeout of its own, on a thread
// with the rank's context current and waits at most c.timeout for it. A
// call that does not return is left running (Go cannot cancel C) and
// guard reports false.
func (c *Comm) guard(f func()) bool {
	done := make(chan struct{})
	go func() {
		// The thread ends with the goroutine (locked, never unlocked),
		// taking its current-context state with it.
		runtime.LockOSThread()
		if err := cu.SetCurrentContext(c.ctx); err == nil {
			f()
		}
		close(done)
	}()
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Error is a failed or timed-out NCCL collective. NCCL reports failures
// per communicator, not per peer, so unlike collective.PeerError it
// cannot name the rank at fault: the first error in the other ranks'
// logs (NCCL_DEBUG=WARN adds NCCL's own account) does.
type Error struct {
	Op     string        // "all-reduce", "reduce-scatter", "init", ...
	Rank   int           // the rank reporting
	Result int           // ncclResult_t; 0 for timeouts and CUDA errors
	Limit  time.Duration // the timeout that ran out; 0 for other failures
	Msg    string        // what NCCL said, or what was being done
	Err    error         // the CUDA error, where CUDA failed
}

// Error says what failed and, for timeouts, where to look next.
func (e *Error) Error() string {
	switch {
	case e.Limit > 0:
		return fmt.Sprintf("collective %s (nccl, rank %d): %snot finished after %v: another rank failed, stalled or "+
			"called a different collective; NCCL cannot tell which, so look for the first error in the other ranks' logs "+
			"(NCCL_DEBUG=WARN); the communicator was aborted", e.Op, e.Rank, prefix(e.Msg), e.Limit)
	case e.Err != nil:
		return fmt.Sprintf("collective %s (nccl, rank %d): %s: %v; the communicator was aborted", e.Op, e.Rank, e.Msg, e.Err)
	case e.Result == resRemoteError:
		return fmt.Sprintf("collective %s (nccl, rank %d): a remote rank or the network failed: %s", e.Op, e.Rank, e.Msg)
	}
	return fmt.Sprintf("collective %s (nccl, rank %d): %s", e.Op, e.Rank, e.Msg)
}

// Unwrap returns the CUDA error, if CUDA's failure caused this one.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the operation ran out of time (the
// net.Error convention).
func (e *Error) Timeout() bool { return e.Limit > 0 }

func prefix(msg string) string {
	if msg == "" {
		return ""
	}
	return msg + ": "
}
