package collective

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"earl/kernels"
)

// NewInProcess returns the ranks of a job whose ranks are goroutines of
// this process: one Comm per rank, each to be used from its own
// goroutine. It has the TCP ring's semantics — the same argument checks,
// the same mismatch errors, and the same summation order, so results
// agree with a TCP job bit for bit — with shared memory instead of
// sockets, for fast tests of the code above collective. A rank that does
// not join a collective within 60 s is reported as a *PeerError, and a
// rank that closes its Comm fails the others' later calls. It panics if
// size < 1.
func NewInProcess(size int) []Comm {
	if size < 1 {
		panic(fmt.Sprintf("collective.NewInProcess(%d): need at least one rank", size))
	}
	if size == 1 {
		return []Comm{&solo{}}
	}
	h := &hub{size: size, timeout: inprocTimeout, here: make([]bool, size),
		release: make(chan struct{}), brokenCh: make(chan struct{})}
	for i := range h.posts {
		h.posts[i] = make([]post, size)
	}
	comms := make([]Comm, size)
	for r := range comms {
		comms[r] = &inproc{h: h, rank: r, acc: make([]float32, inprocBlock), acc64: make([]float64, inprocBlock)}
	}
	return comms
}

// inprocTimeout is how long an in-process rank waits for the others.
var inprocTimeout = defaultTimeout

// inprocBlock is the block of elements a rank sums across all ranks
// before writing it back: small enough for the L1 cache.
const inprocBlock = 2048

type post struct {
	c   *call
	seq uint64
}

// hub is the meeting point of an in-process job: a cyclic barrier where
// every rank posts its call, so each can read the others' arguments.
// Every collective takes two rounds — post (then every rank computes its
// own part, reading the others' buffers) and done (nobody returns while
// another still reads its buffers). The posts of round r live in slot
// r%2: a rank can only post round r+2 after round r+1 completed, when
// everyone has finished reading round r.
type hub struct {
	size    int
	timeout time.Duration

	mu       sync.Mutex
	round    uint64
	arrived  int
	here     []bool
	posts    [2][]post
	release  chan struct{}
	broken   error
	brokenCh chan struct{}
}

func (h *hub) breakLocked(err error) {
	if h.broken == nil {
		h.broken = err
		close(h.brokenCh)
	}
}

// arrive posts p for rank and waits for every rank to arrive; it returns
// the round's posts.
func (h *hub) arrive(rank int, p post, desc string) ([]post, error) {
	h.mu.Lock()
	if h.broken != nil {
		err := h.broken
		h.mu.Unlock()
		return nil, err
	}
	r := h.round
	slot := h.posts[r%2]
	slot[rank] = p
	h.here[rank] = true
	h.arrived++
	ch := h.release
	if h.arrived == h.size {
		h.arrived = 0
		clear(h.here)
		h.round++
		close(h.release)
		h.release = make(chan struct{})
		h.mu.Unlock()
		return slot, nil
	}
	h.mu.Unlock()
	t := time.NewTimer(h.timeout)
	defer t.Stop()
	select {
	case <-ch:
		return slot, nil
	case <-h.brokenCh:
	case <-t.C:
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.round != r {
		return slot, nil // released as the timer fired
	}
	if h.broken == nil {
		missing := 0
		for i, ok := range h.here {
			if !ok {
				missing = i
				break
			}
		}
		h.breakLocked(&PeerError{Rank: missing, Addr: "in-process", Op: fmt.Sprintf("%s on rank %d", desc, rank),
			Err: fmt.Errorf("it did not enter the collective within %v: it is hung, or stuck outside the collective", h.timeout)})
	}
	return nil, h.broken
}

type inproc struct {
	h      *hub
	rank   int
	seq    uint64
	err    error
	closed bool
	acc    []float32
	acc64  []float64
}

func (c *inproc) Rank() int { return c.rank }
func (c *inproc) Size() int { return c.h.size }

func (c *inproc) AllReduce(x kernels.T, op Op) error {
	a, err := newCall(kAllReduce, c.rank, c.h.size, op, 0, x, kernels.T{})
	if err != nil {
		return err
	}
	return c.run(&a)
}

func (c *inproc) AllReduce64(x []float64, op Op) error {
	if err := checkOp(kAllReduce64, c.rank, op); err != nil {
		return err
	}
	a := call{kind: kAllReduce64, op: op, count: len(x), x64: x}
	return c.run(&a)
}

func (c *inproc) ReduceScatter(shard, x kernels.T, op Op) error {
	a, err := newCall(kReduceScatter, c.rank, c.h.size, op, 0, x, shard)
	if err != nil {
		return err
	}
	return c.run(&a)
}

func (c *inproc) AllGather(x, shard kernels.T) error {
	a, err := newCall(kAllGather, c.rank, c.h.size, 0, 0, x, shard)
	if err != nil {
		return err
	}
	return c.run(&a)
}

func (c *inproc) Broadcast(x kernels.T, root int) error {
	a, err := newCall(kBroadcast, c.rank, c.h.size, 0, root, x, kernels.T{})
	if err != nil {
		return err
	}
	return c.run(&a)
}

func (c *inproc) Barrier() error {
	a := call{kind: kBarrier}
	return c.run(&a)
}

// Close marks this rank gone: the other ranks' calls fail from now on
// with a *PeerError naming it. It is idempotent.
func (c *inproc) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.h.mu.Lock()
	c.h.breakLocked(&PeerError{Rank: c.rank, Addr: "in-process", Op: "close",
		Err: errors.New("it closed its communicator (Close) while this rank still expected a collective")})
	c.h.mu.Unlock()
	return nil
}

func (c *inproc) desc(a *call) string {
	op := a.op
	if a.kind == kAllGather || a.kind == kBroadcast || a.kind == kBarrier {
		op = 0
	}
	return callDesc(a.kind, op, a.root, uint64(a.count), c.seq)
}

func (c *inproc) run(a *call) error {
	desc := c.desc(a)
	if c.closed {
		return fmt.Errorf("collective %s on rank %d: %w", desc, c.rank, ErrClosed)
	}
	if c.err != nil {
		return fmt.Errorf("collective %s on rank %d: the communicator failed earlier: %w", desc, c.rank, c.err)
	}
	fail := func(err error) error {
		c.err = err
		// Name the failed rank in this rank's terms, as the TCP ring does.
		var pe *PeerError
		if errors.As(err, &pe) {
			return &PeerError{Rank: pe.Rank, Addr: pe.Addr, Op: fmt.Sprintf("%s on rank %d", desc, c.rank), Err: pe.Err}
		}
		return fmt.Errorf("collective %s on rank %d: %w", desc, c.rank, err)
	}
	posts, err := c.h.arrive(c.rank, post{a, c.seq}, desc)
	if err != nil {
		return fail(err)
	}
	for j, p := range posts {
		other := callDesc(p.c.kind, p.c.op, p.c.root, uint64(p.c.count), p.seq)
		if p.c.kind == kAllGather || p.c.kind == kBroadcast || p.c.kind == kBarrier {
			other = callDesc(p.c.kind, 0, p.c.root, uint64(p.c.count), p.seq)
		}
		if other != desc {
			c.err = fmt.Errorf("%w: rank %d called %s", ErrMismatch, j, other)
			return fmt.Errorf("collective %s on rank %d: %w: rank %d called %s: every rank must call the same collectives, with the same counts and roots, in the same order",
				desc, c.rank, ErrMismatch, j, other)
		}
	}
	c.compute(a, posts)
	if _, err := c.h.arrive(c.rank, post{}, desc); err != nil {
		return fail(err)
	}
	c.seq++
	return nil
}

// compute does this rank's part of the collective: it reduces its own
// shard across every rank (in the ring's order: rank+1, rank+2, ...,
// rank) and writes it where it belongs, or copies what it needs.
func (c *inproc) compute(a *call, posts []post) {
	n, k := c.h.size, c.rank
	switch a.kind {
	case kAllReduce, kReduceScatter:
		off, cnt := Range(a.count, k, n)
		for b := 0; b < cnt; b += inprocBlock {
			m := min(inprocBlock, cnt-b)
			lo := off + b
			acc := c.acc[:m]
			copy(acc, posts[(k+1)%n].c.x[lo:lo+m])
			for i := 2; i <= n; i++ {
				op := a.op
				if op == Avg && i < n {
					op = Sum
				}
				reduce32(acc, posts[(k+i)%n].c.x[lo:lo+m], acc, op, n)
			}
			if a.kind == kReduceScatter {
				copy(a.shard[b:b+m], acc)
				continue
			}
			for _, p := range posts {
				copy(p.c.x[lo:lo+m], acc)
			}
		}
	case kAllReduce64:
		off, cnt := Range(a.count, k, n)
		for b := 0; b < cnt; b += inprocBlock {
			m := min(inprocBlock, cnt-b)
			lo := off + b
			acc := c.acc64[:m]
			copy(acc, posts[(k+1)%n].c.x64[lo:lo+m])
			for i := 2; i <= n; i++ {
				op := a.op
				if op == Avg && i < n {
					op = Sum
				}
				reduce64(acc, posts[(k+i)%n].c.x64[lo:lo+m], acc, op, n)
			}
			for _, p := range posts {
				copy(p.c.x64[lo:lo+m], acc)
			}
		}
	case kAllGather:
		for j, p := range posts {
			if j == k && a.inPlace {
				continue
			}
			off, _ := Range(a.count, j, n)
			copy(a.x[off:], p.c.shard)
		}
	case kBroadcast:
		if k != a.root {
			copy(a.x, posts[a.root].c.x)
		}
	}
}
