package collective

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"earl/kernels"
)

const (
	defaultTimeout    = 60 * time.Second
	defaultChunkBytes = 1 << 20
	maxChunkBytes     = 1 << 30
)

// ErrMismatch is wrapped by the error every rank returns when ranks call
// different collectives, counts, roots or orders: a bug in the program,
// reported instead of a hang or silently wrong data.
var ErrMismatch = errors.New("ranks called different collectives")

// ErrClosed is returned by calls on a closed communicator.
var ErrClosed = errors.New("communicator is closed")

func (o Options) withDefaults() (Options, error) {
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.ChunkBytes == 0 {
		o.ChunkBytes = defaultChunkBytes
	}
	if o.Timeout < 0 {
		return o, fmt.Errorf("collective: Options.Timeout %v is negative", o.Timeout)
	}
	if o.ChunkBytes < 64 || o.ChunkBytes > maxChunkBytes {
		return o, fmt.Errorf("collective: Options.ChunkBytes %d is outside [64, %d]", o.ChunkBytes, maxChunkBytes)
	}
	return o, nil
}

// call is one collective's arguments, validated and resolved to host
// slices; both host backends take it.
type call struct {
	kind  kind
	op    Op
	root  int
	count int // elements of the full vector
	x     []float32
	shard []float32
	x64   []float64
	// inPlace: shard is exactly this rank's Range of x.
	inPlace bool
}

func argError(k kind, rank int, format string, a ...any) error {
	return fmt.Errorf("collective %s on rank %d: %s", k, rank, fmt.Sprintf(format, a...))
}

func checkOp(k kind, rank int, op Op) error {
	switch op {
	case Sum, Avg, Max:
		return nil
	}
	return argError(k, rank, "unknown reduction %v: use Sum, Avg or Max", op)
}

func hostSlice(k kind, rank int, name string, t kernels.T) ([]float32, error) {
	if t.N == 0 {
		return nil, nil
	}
	h := kernels.Host(t)
	if h == nil {
		return nil, argError(k, rank, "%s is not in host memory (kernels.Host returned nil): the TCP and in-process backends need CPU buffers; device memory goes through the NCCL backend", name)
	}
	return h, nil
}

// newCall validates a call's arguments the same way on every backend,
// so a size-1 job rejects what a larger one would.
func newCall(k kind, rank, size int, op Op, root int, x, shard kernels.T) (call, error) {
	c := call{kind: k, op: op, root: root, count: x.N}
	if k == kAllReduce || k == kReduceScatter {
		if err := checkOp(k, rank, op); err != nil {
			return c, err
		}
	}
	var err error
	if c.x, err = hostSlice(k, rank, "x", x); err != nil {
		return c, err
	}
	switch k {
	case kBroadcast:
		if root < 0 || root >= size {
			return c, argError(k, rank, "root %d is outside the job's ranks 0 to %d", root, size-1)
		}
	case kReduceScatter, kAllGather:
		off, n := Range(x.N, rank, size)
		if shard.N != n {
			return c, argError(k, rank, "shard has %d elements, but this rank's Range of %d elements over %d ranks is %d (offset %d)",
				shard.N, x.N, size, n, off)
		}
		if c.shard, err = hostSlice(k, rank, "shard", shard); err != nil {
			return c, err
		}
		if c.inPlace, err = checkAlias(c.x, c.shard, off); err != nil {
			return c, argError(k, rank, "%v", err)
		}
	}
	return c, nil
}

// checkAlias accepts a shard that is separate from x or exactly x's
// elements [off, off+len(shard)) (the in-place form NCCL also accepts),
// and rejects any other overlap, which would read values already
// overwritten.
func checkAlias(x, shard []float32, off int) (inPlace bool, err error) {
	if len(x) == 0 || len(shard) == 0 {
		return false, nil
	}
	x0 := uintptr(unsafe.Pointer(&x[0]))
	x1 := x0 + 4*uintptr(len(x))
	s0 := uintptr(unsafe.Pointer(&shard[0]))
	s1 := s0 + 4*uintptr(len(shard))
	if s1 <= x0 || s0 >= x1 {
		return false, nil
	}
	if s0 == x0+4*uintptr(off) {
		return true, nil
	}
	return false, fmt.Errorf("shard overlaps x at element %d, not at this rank's Range offset %d: pass x.View(off, n) for an in-place call, or a separate buffer",
		(int64(s0)-int64(x0))/4, off)
}

// solo is the whole of a one-rank job: every collective is a local copy
// at most, but arguments are checked as in a larger job.
type solo struct {
	closed bool
}

func (s *solo) Rank() int { return 0 }
func (s *solo) Size() int { return 1 }

func (s *solo) check(k kind, op Op, root int, x, shard kernels.T) (call, error) {
	if s.closed {
		return call{}, fmt.Errorf("collective %s on rank 0: %w", k, ErrClosed)
	}
	return newCall(k, 0, 1, op, root, x, shard)
}

func (s *solo) AllReduce(x kernels.T, op Op) error {
	_, err := s.check(kAllReduce, op, 0, x, kernels.T{})
	return err
}

func (s *solo) AllReduce64(x []float64, op Op) error {
	if s.closed {
		return fmt.Errorf("collective allreduce64 on rank 0: %w", ErrClosed)
	}
	return checkOp(kAllReduce64, 0, op)
}

func (s *solo) ReduceScatter(shard, x kernels.T, op Op) error {
	c, err := s.check(kReduceScatter, op, 0, x, shard)
	if err == nil && !c.inPlace {
		copy(c.shard, c.x)
	}
	return err
}

func (s *solo) AllGather(x, shard kernels.T) error {
	c, err := s.check(kAllGather, 0, 0, x, shard)
	if err == nil && !c.inPlace {
		copy(c.x, c.shard)
	}
	return err
}

func (s *solo) Broadcast(x kernels.T, root int) error {
	_, err := s.check(kBroadcast, 0, root, x, kernels.T{})
	return err
}

func (s *solo) Barrier() error {
	if s.closed {
		return fmt.Errorf("collective barrier on rank 0: %w", ErrClosed)
	}
	return nil
}

func (s *solo) Close() error {
	s.closed = true
	return nil
}
