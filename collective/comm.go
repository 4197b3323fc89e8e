// Package collective moves gradients and parameters between ranks: the
// Comm interface (all-reduce, reduce-scatter, all-gather, broadcast,
// barrier) with a Go TCP ring backend for CPUs, an in-process backend for
// tests, an NCCL backend for GPUs (build tag cuda), and the rendezvous
// store through which ranks find each other.
//
// Counts are element counts, never bytes. Buffers are kernels views: the
// TCP backends need host memory (kernels.Host), NCCL device memory.
// Reduce-scatter and all-gather use the contiguous shards of Range, so a
// ZeRO-1 shard of the flat gradient buffer is exactly one rank's range.
package collective

import (
	"fmt"
	"time"

	"earl/kernels"
)

// Op is a reduction.
type Op int

// The reductions.
const (
	Sum Op = iota
	Avg    // sum divided by the world size
	Max
)

func (o Op) String() string {
	switch o {
	case Sum:
		return "sum"
	case Avg:
		return "avg"
	case Max:
		return "max"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Comm is one rank's handle on a job's collectives. Every rank must call
// the same collectives in the same order with the same counts; a mismatch
// is reported as an error, never a hang. Methods are not safe for
// concurrent use.
type Comm interface {
	Rank() int
	Size() int
	// AllReduce reduces x across ranks in place.
	AllReduce(x kernels.T, op Op) error
	// AllReduce64 reduces a small host float64 vector in place (metrics,
	// gradient norms).
	AllReduce64(x []float64, op Op) error
	// ReduceScatter reduces the full vector x (same N on every rank) and
	// leaves this rank's Range of the result in shard.
	ReduceScatter(shard, x kernels.T, op Op) error
	// AllGather fills the full vector x from every rank's shard (this
	// rank's Range of x).
	AllGather(x, shard kernels.T) error
	// Broadcast copies root's x to every rank.
	Broadcast(x kernels.T, root int) error
	Barrier() error
	Close() error
}

// Range is rank's contiguous shard of n elements: the first n % size ranks
// hold one element more than the others.
func Range(n, rank, size int) (off, count int) {
	q, r := n/size, n%size
	if rank < r {
		return rank * (q + 1), q + 1
	}
	return r*(q+1) + (rank-r)*q, q
}

// Options configure a TCP job.
type Options struct {
	// Timeout bounds how long a rank waits for a peer in any one
	// operation (connect, send, receive) before it reports that peer as
	// failed. Default 60 s.
	Timeout time.Duration
	// Interface is the network interface or address to bind to and
	// advertise (default: the one that routes to MASTER_ADDR).
	Interface string
	// ChunkBytes is the ring's pipelining unit (default 1 MiB).
	ChunkBytes int
}

// PeerError reports a failed or stalled peer.
type PeerError struct {
	Rank int    // the peer
	Addr string // its address, when known
	Op   string
	Err  error
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("collective %s: rank %d (%s) failed: %v", e.Op, e.Rank, e.Addr, e.Err)
}

func (e *PeerError) Unwrap() error { return e.Err }
