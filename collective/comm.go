// Package collective moves gradients and parameters between ranks: the
// Comm interface (all-reduce, reduce-scatter, all-gather, broadcast,
// barrier) with a Go TCP ring backend for CPUs (Dial), an in-process
// backend for tests (NewInProcess), an NCCL backend for GPUs (build tag
// cuda), and the rendezvous store through which ranks find each other
// (ListenStore, ConnectStore).
//
// Counts are element counts, never bytes. Buffers are kernels views: the
// TCP backends need host memory (kernels.Host), NCCL device memory.
// Reduce-scatter and all-gather use the contiguous shards of Range, so a
// ZeRO-1 shard of the flat gradient buffer is exactly one rank's range.
//
// # The ring
//
// Every rank holds a connection to its left and right neighbour (rank-1
// and rank+1, modulo the world size). All-reduce is a ring reduce-scatter
// followed by a ring all-gather over the shards of Range, in chunks of
// Options.ChunkBytes that stream around the ring, every rank sending and
// receiving at once (plan.go). Ranks on different hosts use TCP; ranks on
// one host use a Unix socket for headers and a shared-memory region per
// link for payloads (one memmove in, the reduction straight out), as
// Open MPI's and NCCL's shared-memory transports do.
// EARL_COLLECTIVE_TRANSPORT=socket keeps payloads on the Unix socket,
// =tcp uses TCP loopback between local ranks too (the path between
// hosts, for testing it on one machine).
//
// # Determinism
//
// The summation order is fixed by the ring: element i of shard k (the
// Range of rank k) is ((x[k+1] + x[k+2]) + ...) + x[k], ranks taken
// modulo the world size, then divided by the world size for Avg. Results
// are bit-identical on every rank, run to run, for the same inputs and
// world size, and the in-process backend sums in the same order.
//
// # Failures
//
// Every connection proves knowledge of the job's secret (EARL_JOB_TOKEN)
// in both directions before data flows, and checks the world size and
// the ranks at either end. Every message carries the collective, the
// call's sequence number and its element count, so ranks that call
// different collectives, counts, roots or orders get an error wrapping
// ErrMismatch that names both sides. A rank that dies, closes, or makes
// no progress within Options.Timeout is reported on every other rank as a
// *PeerError naming it (not merely the neighbour that noticed): the news
// travels around the ring in both directions. A Comm that returned such
// an error stays failed; Close it.
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

// String names the reduction as errors print it: sum, avg, max.
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
// concurrent use. Invalid arguments (a shard of the wrong size, a root
// out of range, device memory on a host backend) are rejected before
// anything is sent, identically at every world size, 1 included.
type Comm interface {
	// Rank is this rank, from 0.
	Rank() int
	// Size is the world size.
	Size() int
	// AllReduce reduces x across ranks in place.
	AllReduce(x kernels.T, op Op) error
	// AllReduce64 reduces a small host float64 vector in place (metrics,
	// gradient norms).
	AllReduce64(x []float64, op Op) error
	// ReduceScatter reduces the full vector x (same N on every rank) and
	// leaves this rank's Range of the result in shard. x is scratch: its
	// contents on return are unspecified (the ring accumulates partial
	// sums in it). shard may be x's own Range (x.View(off, n)) for an
	// in-place call; any other overlap is an error.
	ReduceScatter(shard, x kernels.T, op Op) error
	// AllGather fills the full vector x from every rank's shard (this
	// rank's Range of x). shard may be x's own Range.
	AllGather(x, shard kernels.T) error
	// Broadcast copies root's x to every rank.
	Broadcast(x kernels.T, root int) error
	// Barrier returns once every rank has entered it.
	Barrier() error
	// Close releases the communicator and tells the neighbours, so a rank
	// still waiting for this one learns that it closed. It is idempotent;
	// later calls return ErrClosed.
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

// Options configure a TCP job. Every rank must use the same ChunkBytes
// (Dial checks).
type Options struct {
	// Timeout bounds how long a rank waits for a peer in any one
	// operation (connect, send, receive) before it reports that peer as
	// failed. Default 60 s. It also bounds the rendezvous in Dial. A rank
	// inside a collective tells its neighbour it is alive while it waits,
	// so only a peer that is dead, stopped, or not calling the collective
	// times out — which includes a rank busy elsewhere (a checkpoint
	// written by rank 0 alone) for longer than Timeout while the others
	// wait in a collective: size it above such gaps.
	Timeout time.Duration
	// Interface is the network interface or address to bind to and
	// advertise (default: the one that routes to MASTER_ADDR).
	Interface string
	// ChunkBytes is the ring's pipelining unit (default 1 MiB).
	ChunkBytes int

	// tcpOnly keeps ranks on one host on TCP loopback, and noShm keeps
	// payloads on the socket (tests of those paths; users set
	// EARL_COLLECTIVE_TRANSPORT=tcp or socket).
	tcpOnly, noShm bool
}

// PeerError reports a failed or stalled peer: the rank at the root of the
// failure where it is known, even when a neighbour noticed first.
type PeerError struct {
	Rank int    // the peer
	Addr string // its address, when known
	Op   string // the collective this rank was in, e.g. "allreduce #7 (sum, 1000 elements) on rank 2"
	Err  error
}

// Error says which collective, which peer, and what happened to it.
func (e *PeerError) Error() string {
	return fmt.Sprintf("collective %s: rank %d (%s) failed: %v", e.Op, e.Rank, e.Addr, e.Err)
}

// Unwrap returns the underlying cause (a socket error, where there is one).
func (e *PeerError) Unwrap() error { return e.Err }
