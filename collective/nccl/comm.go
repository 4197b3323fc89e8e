//go:build cuda

package nccl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"gorgonia.org/cu"

	"earl/collective"
)

// Store is the rendezvous through which the ranks of a job exchange the
// NCCL unique id; the TCP store of package collective satisfies it.
type Store interface {
	// Set stores value under key.
	Set(key string, value []byte) error
	// Get returns key's value, waiting until some rank has set it or ctx
	// is done.
	Get(ctx context.Context, key string) ([]byte, error)
}

// DevicePtr is implemented by kernels buffers that live in CUDA device
// memory (kernels/cuda's): NCCL reads and writes them in place. The
// address is that of element 0 of the buffer; views add 4 bytes per
// element of offset.
type DevicePtr interface {
	DevicePtr() uintptr
}

// Config places a rank on its GPU.
type Config struct {
	// Device is the CUDA ordinal of this rank's GPU as the process sees
	// them, i.e. after CUDA_VISIBLE_DEVICES (the launcher derives it from
	// SLURM_LOCALID or LOCAL_RANK). NCCL allows one rank per GPU in a
	// communicator.
	Device int
	// Context is the CUDA context the rank's buffers belong to. Zero: the
	// device's primary context, which is what the CUDA runtime inside
	// NCCL uses for its own threads and allocations; a context made with
	// cuCtxCreate works only as far as NCCL tolerates it, so kernels/cuda
	// should use the primary context too.
	Context cu.CUContext
	// Stream is the stream collectives are queued on, normally the one
	// the rank's kernels run on, so that a collective starts after the
	// kernels that produced its input. Zero: a non-blocking stream of the
	// communicator's own (the caller then synchronises before a
	// collective, which Device.Sync does).
	Stream cu.Stream
	// Key prefixes the store keys (default "nccl"); communicators made in
	// one job through one store need distinct keys.
	Key string
}

// Defaults.
const (
	defaultTimeout = 60 * time.Second
	defaultKey     = "nccl"
	// scratchBudget bounds the scratch buffer of a padded reduce-scatter
	// or all-gather, in float32 elements (64 MiB): large enough that each
	// NCCL call runs at full bandwidth, small beside a model.
	scratchBudget = 16 << 20
	// minPiece is the least number of elements per rank in one padded
	// call (256 KiB), so that large jobs do not split a vector into
	// calls too small to be efficient; it raises the scratch above the
	// budget past 64 ranks.
	minPiece = 64 << 10
)

// Comm is one rank's NCCL communicator. It implements collective.Comm on
// views of device memory (buffers implementing DevicePtr). Every method
// waits until its collective has finished on the GPU, polling for NCCL's
// asynchronous errors, so that a failed or missing peer is reported as an
// error naming the operation after Options.Timeout instead of a hang.
// Methods are not safe for concurrent use.
type Comm struct {
	lib        *library
	h          commHandle
	rank, size int
	device     cu.Device
	ctx        cu.CUContext
	ownCtx     bool // primary context retained by New, released by Close
	stream     cu.Stream
	ownStream  bool
	done       cu.Event // recorded after each collective; polled by wait
	timeout    time.Duration

	// scratch serves the padded reduce-scatter / all-gather, the float64
	// staging of AllReduce64 and Barrier; it grows to the largest call
	// and is then reused (no allocation in the step loop).
	scratch      cu.DevicePtr
	scratchBytes int64
	budget       int // scratch elements per padded call

	// nativeAvg: the library has ncclAvg (2.10+); otherwise Avg is a sum
	// followed by the scale kernel. Tests clear it to cover the fallback.
	nativeAvg bool
	scaleMod  cu.Module
	scaleFn   cu.Function
	scaleOK   bool

	broken error // set once the communicator is aborted
	closed bool
}

var _ collective.Comm = (*Comm)(nil)

// New joins rank (of size) to the job's NCCL communicator on the GPU of
// cfg. Rank 0 waits until every rank has checked in through store, makes
// the NCCL unique id and publishes it; every rank then calls
// ncclCommInitRank. Waiting for a rank, and NCCL's initialisation itself,
// are bounded by opt.Timeout (default 60 s) and ctx; a rank that never
// checks in is named in rank 0's error (a *collective.PeerError). Of
// opt only Timeout applies (NCCL chooses interfaces and chunking itself,
// through its NCCL_* environment variables).
func New(ctx context.Context, rank, size int, store Store, cfg Config, opt collective.Options) (collective.Comm, error) {
	if size < 1 || rank < 0 || rank >= size {
		return nil, fmt.Errorf("nccl: rank %d of %d: want 0 <= rank < size", rank, size)
	}
	if store == nil {
		return nil, fmt.Errorf("nccl: rank %d: no rendezvous store", rank)
	}
	l, err := load()
	if err != nil {
		return nil, err
	}
	c := &Comm{
		lib:       l,
		rank:      rank,
		size:      size,
		timeout:   opt.Timeout,
		budget:    max(scratchBudget, size*minPiece),
		nativeAvg: l.version >= avgVersion,
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	key := cfg.Key
	if key == "" {
		key = defaultKey
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := c.setUp(cfg); err != nil {
		c.release()
		return nil, fmt.Errorf("nccl: rank %d: %w", rank, err)
	}
	id, err := c.rendezvous(ctx, store, key)
	if err != nil {
		c.release()
		return nil, err
	}
	var (
		r   int
		msg string
	)
	finished := c.guard(func() {
		if c.h, r = l.commInitRank(size, id, rank); r != resSuccess {
			msg = l.errorText(r, commHandle{})
		}
	})
	if !finished {
		// The init call is left blocked in NCCL: it has no timeout and
		// cannot be aborted before it returns a communicator. The process
		// is expected to exit on this error.
		return nil, &Error{Op: "init", Rank: rank, Limit: c.timeout,
			Msg: fmt.Sprintf("ncclCommInitRank of %d ranks did not finish", size)}
	}
	if r != resSuccess {
		err := &Error{Op: "init", Rank: rank, Result: r, Msg: msg}
		c.release()
		return nil, err
	}
	return c, nil
}

// setUp binds the calling thread to the rank's device and context and
// makes the stream and event the collectives use.
func (c *Comm) setUp(cfg Config) error {
	n, err := cu.NumDevices()
	if err != nil {
		return fmt.Errorf("counting CUDA devices: %w", err)
	}
	if cfg.Device < 0 || cfg.Device >= n {
		return fmt.Errorf("CUDA device %d does not exist: %d visible (CUDA_VISIBLE_DEVICES=%q)",
			cfg.Device, n, os.Getenv("CUDA_VISIBLE_DEVICES"))
	}
	if c.device, err = cu.GetDevice(cfg.Device); err != nil {
		return fmt.Errorf("CUDA device %d: %w", cfg.Device, err)
	}
	c.ctx = cfg.Context
	if c.ctx == (cu.CUContext{}) {
		if c.ctx, err = c.device.RetainPrimaryCtx(); err != nil {
			return fmt.Errorf("CUDA device %d: primary context: %w", cfg.Device, err)
		}
		c.ownCtx = true
	}
	if err := cu.SetCurrentContext(c.ctx); err != nil {
		return fmt.Errorf("CUDA device %d: making the context current: %w", cfg.Device, err)
	}
	c.stream = cfg.Stream
	if c.stream == (cu.Stream{}) {
		// Non-blocking: the legacy default stream used by synchronous
		// copies elsewhere must not serialise with collectives.
		if c.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
			return fmt.Errorf("CUDA device %d: stream: %w", cfg.Device, err)
		}
		c.ownStream = true
	}
	if c.done, err = cu.MakeEvent(cu.DisableTiming); err != nil {
		return fmt.Errorf("CUDA device %d: event: %w", cfg.Device, err)
	}
	return nil
}

// rendezvous checks this rank in and returns the NCCL unique id: rank 0
// waits for every rank's check-in before it makes and publishes the id,
// so that a missing rank is named here rather than left to NCCL, which
// would wait in ncclCommInitRank without saying for whom.
func (c *Comm) rendezvous(ctx context.Context, store Store, key string) ([]byte, error) {
	host, _ := os.Hostname()
	checkIn := func(r int) string { return fmt.Sprintf("%s/rank/%d", key, r) }
	idKey := key + "/id"
	if err := store.Set(checkIn(c.rank), []byte(host)); err != nil {
		return nil, fmt.Errorf("nccl: rank %d: checking in at the store: %w", c.rank, err)
	}
	wctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if c.rank != 0 {
		id, err := store.Get(wctx, idKey)
		if err != nil {
			return nil, fmt.Errorf("nccl: rank %d: no NCCL id from rank 0 within %v: rank 0 has not started, "+
				"or is waiting for another rank (its error names the rank): %w", c.rank, c.timeout, err)
		}
		if len(id) != UniqueIDBytes {
			return nil, fmt.Errorf("nccl: rank %d: the NCCL id at %q has %d bytes, want %d", c.rank, idKey, len(id), UniqueIDBytes)
		}
		return id, nil
	}
	for r := 1; r < c.size; r++ {
		if _, err := store.Get(wctx, checkIn(r)); err != nil {
			return nil, &collective.PeerError{Rank: r, Op: "nccl init",
				Err: fmt.Errorf("did not check in at the store within %v: %w", c.timeout, err)}
		}
	}
	id, r := c.lib.uniqueID()
	if r != resSuccess {
		return nil, &Error{Op: "init", Rank: c.rank, Result: r, Msg: "ncclGetUniqueId: " + c.lib.errorText(r, commHandle{})}
	}
	if err := store.Set(idKey, id); err != nil {
		return nil, fmt.Errorf("nccl: rank 0: publishing the NCCL id: %w", err)
	}
	return id, nil
}

// Rank is this rank's number.
func (c *Comm) Rank() int { return c.rank }

// Size is the number of ranks.
func (c *Comm) Size() int { return c.size }

// Close destroys the communicator (after an abort it only frees what
// remains) and releases the stream, scratch and context New made. It
// does not wait for the other ranks; closing twice is a no-op.
func (c *Comm) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(c.ctx); err != nil {
		return fmt.Errorf("nccl close (rank %d): making the context current: %w", c.rank, err)
	}
	if c.broken == nil {
		var r int
		if !c.guard(func() { r = c.lib.commDestroy(c.h) }) {
			// Freeing buffers under a destroy still running would be
			// worse than leaking them at exit.
			return &Error{Op: "close", Rank: c.rank, Limit: c.timeout, Msg: "ncclCommDestroy did not finish"}
		}
		if r != resSuccess {
			c.release()
			return &Error{Op: "close", Rank: c.rank, Result: r, Msg: c.lib.errorText(r, commHandle{})}
		}
	}
	c.h = commHandle{}
	return c.release()
}

// release frees the CUDA resources New made, in reverse order; it runs
// on a thread where c.ctx is current (or was never made).
func (c *Comm) release() error {
	var errs []error
	if c.scratch != 0 {
		errs = append(errs, cu.MemFree(c.scratch))
		c.scratch, c.scratchBytes = 0, 0
	}
	if c.scaleOK {
		errs = append(errs, c.scaleMod.Unload())
		c.scaleOK = false
	}
	if c.done != (cu.Event{}) {
		errs = append(errs, cu.DestroyEvent(&c.done))
		c.done = cu.Event{}
	}
	if c.ownStream && c.stream != (cu.Stream{}) {
		errs = append(errs, c.stream.Destroy())
		c.ownStream = false
	}
	if c.ownCtx {
		errs = append(errs, c.device.ReleasePrimaryCtx())
		c.ownCtx = false
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nccl close (rank %d): releasing CUDA resources: %w", c.rank, err)
	}
	return nil
}
