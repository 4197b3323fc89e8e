//go:build cuda

package nccl

import (
	"fmt"
	"runtime"
	"unsafe"

	"gorgonia.org/cu"

	"earl/collective"
	"earl/kernels"
)

// AllReduce reduces the device view x across ranks in place.
func (c *Comm) AllReduce(x kernels.T, op collective.Op) error {
	const name = "all-reduce"
	p, err := c.begin(name, "x", x)
	if err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	nop, scale, err := c.redOp(name, op)
	if err != nil || x.N == 0 {
		return err
	}
	if r := c.lib.allReduceCall(p, p, x.N, typeFloat32, nop, c.h, c.streamPtr()); r != resSuccess {
		return c.fail(name, r)
	}
	if scale {
		if err := c.scale(name, p, x.N); err != nil {
			return err
		}
	}
	return c.wait(name)
}

// AllReduce64 reduces the host vector x across ranks in place, staged
// through device scratch as float64 (NCCL reduces device memory only).
func (c *Comm) AllReduce64(x []float64, op collective.Op) error {
	const name = "all-reduce64"
	if _, err := c.begin(name, "", kernels.T{}); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	nop, scale, err := c.redOp(name, op)
	if err != nil || len(x) == 0 {
		return err
	}
	bytes := int64(len(x)) * 8
	if err := c.ensureScratch(name, bytes); err != nil {
		return err
	}
	// Synchronous copies: the host slice is Go memory, which the driver
	// must not hold after the call returns.
	if err := cu.MemcpyHtoD(c.scratch, unsafe.Pointer(&x[0]), bytes); err != nil {
		return c.cudaFail(name, "copying the vector to the GPU", err)
	}
	s := uintptr(c.scratch)
	if r := c.lib.allReduceCall(s, s, len(x), typeFloat64, nop, c.h, c.streamPtr()); r != resSuccess {
		return c.fail(name, r)
	}
	if err := c.wait(name); err != nil {
		return err
	}
	if err := cu.MemcpyDtoH(unsafe.Pointer(&x[0]), c.scratch, bytes); err != nil {
		return c.cudaFail(name, "copying the result from the GPU", err)
	}
	if scale {
		for i := range x {
			x[i] /= float64(c.size)
		}
	}
	return nil
}

// ReduceScatter reduces the device vector x (the same length on every
// rank) and leaves this rank's collective.Range of the result in shard.
// shard may be x's own range (ZeRO-1 in place); it must not overlap x
// otherwise. When len(x) is not a multiple of the world size, NCCL's equal
// per-rank counts are met by padding every shard to ceil(n/size) through
// scratch, which copies x into the scratch and the result out of it
// (n + n/size elements on the device); see padPlan.
func (c *Comm) ReduceScatter(shard, x kernels.T, op collective.Op) error {
	const name = "reduce-scatter"
	xp, sp, err := c.shardArgs(name, shard, x)
	if err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	nop, scale, err := c.redOp(name, op)
	if err != nil || x.N == 0 {
		return err
	}
	if x.N%c.size == 0 {
		// Equal shards: one NCCL call straight between the caller's
		// buffers, in place when shard is x's range (NCCL's in-place
		// rule: recvbuff == sendbuff + rank*recvcount).
		cnt := x.N / c.size
		if r := c.lib.reduceScatterCall(xp, sp, cnt, typeFloat32, nop, c.h, c.streamPtr()); r != resSuccess {
			return c.fail(name, r)
		}
		if scale {
			if err := c.scale(name, sp, cnt); err != nil {
				return err
			}
		}
		return c.wait(name)
	}
	plan := newPadPlan(x.N, c.size, c.budget)
	if err := c.ensureScratch(name, int64(plan.scratch())*4); err != nil {
		return err
	}
	s := uintptr(c.scratch)
	for k := range plan.calls() {
		start, count := plan.call(k)
		// Zero the call's scratch so that the one pad slot of a short
		// shard holds 0: its reduced value is dropped, but garbage (a
		// NaN) there would mislead anyone inspecting the buffer.
		if err := cu.MemsetD32Async(c.scratch, 0, int64(c.size*count), c.stream); err != nil {
			return c.cudaFail(name, "clearing scratch", err)
		}
		for r := range c.size {
			src, m := plan.piece(k, r)
			if m == 0 {
				continue
			}
			if err := cu.MemcpyDtoDAsync(cu.DevicePtr(s+uintptr(r*count)*4), cu.DevicePtr(xp+uintptr(src)*4), int64(m)*4, c.stream); err != nil {
				return c.cudaFail(name, "copying into scratch", err)
			}
		}
		mine := s + uintptr(c.rank*count)*4 // in place: slot rank of the scratch
		if r := c.lib.reduceScatterCall(s, mine, count, typeFloat32, nop, c.h, c.streamPtr()); r != resSuccess {
			return c.fail(name, r)
		}
		if _, m := plan.piece(k, c.rank); m > 0 {
			if scale {
				if err := c.scale(name, mine, m); err != nil {
					return err
				}
			}
			if err := cu.MemcpyDtoDAsync(cu.DevicePtr(sp+uintptr(start)*4), cu.DevicePtr(mine), int64(m)*4, c.stream); err != nil {
				return c.cudaFail(name, "copying the shard out of scratch", err)
			}
		}
		// One wait per NCCL call: the timeout bounds each call, and the
		// scratch is reused by the next.
		if err := c.wait(name); err != nil {
			return err
		}
	}
	return nil
}

// AllGather fills the device vector x from every rank's shard (this
// rank's collective.Range of x; shard may be that range itself). Uneven
// shards are padded through scratch as in ReduceScatter, copying n/size
// elements in and n out.
func (c *Comm) AllGather(x, shard kernels.T) error {
	const name = "all-gather"
	xp, sp, err := c.shardArgs(name, shard, x)
	if err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	if x.N == 0 {
		return nil
	}
	if x.N%c.size == 0 {
		// In place when shard is x's range (sendbuff == recvbuff +
		// rank*sendcount).
		if r := c.lib.allGatherCall(sp, xp, x.N/c.size, typeFloat32, c.h, c.streamPtr()); r != resSuccess {
			return c.fail(name, r)
		}
		return c.wait(name)
	}
	plan := newPadPlan(x.N, c.size, c.budget)
	if err := c.ensureScratch(name, int64(plan.scratch())*4); err != nil {
		return err
	}
	s := uintptr(c.scratch)
	for k := range plan.calls() {
		start, count := plan.call(k)
		mine := s + uintptr(c.rank*count)*4
		if err := cu.MemsetD32Async(cu.DevicePtr(mine), 0, int64(count), c.stream); err != nil {
			return c.cudaFail(name, "clearing scratch", err)
		}
		if _, m := plan.piece(k, c.rank); m > 0 {
			if err := cu.MemcpyDtoDAsync(cu.DevicePtr(mine), cu.DevicePtr(sp+uintptr(start)*4), int64(m)*4, c.stream); err != nil {
				return c.cudaFail(name, "copying the shard into scratch", err)
			}
		}
		if r := c.lib.allGatherCall(mine, s, count, typeFloat32, c.h, c.streamPtr()); r != resSuccess {
			return c.fail(name, r)
		}
		for r := range c.size {
			dst, m := plan.piece(k, r)
			if m == 0 {
				continue
			}
			if err := cu.MemcpyDtoDAsync(cu.DevicePtr(xp+uintptr(dst)*4), cu.DevicePtr(s+uintptr(r*count)*4), int64(m)*4, c.stream); err != nil {
				return c.cudaFail(name, "copying out of scratch", err)
			}
		}
		if err := c.wait(name); err != nil {
			return err
		}
	}
	return nil
}

// Broadcast copies root's device view x to every rank.
func (c *Comm) Broadcast(x kernels.T, root int) error {
	const name = "broadcast"
	if root < 0 || root >= c.size {
		return fmt.Errorf("nccl %s: root %d of %d ranks", name, root, c.size)
	}
	p, err := c.begin(name, "x", x)
	if err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	if x.N == 0 {
		return nil
	}
	if r := c.lib.broadcastCall(p, p, x.N, typeFloat32, root, c.h, c.streamPtr()); r != resSuccess {
		return c.fail(name, r)
	}
	return c.wait(name)
}

// Barrier returns once every rank has called it: an all-reduce of one
// element, waited for.
func (c *Comm) Barrier() error {
	const name = "barrier"
	if _, err := c.begin(name, "", kernels.T{}); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	if err := c.ensureScratch(name, 4); err != nil {
		return err
	}
	s := uintptr(c.scratch)
	if r := c.lib.allReduceCall(s, s, 1, typeFloat32, redSum, c.h, c.streamPtr()); r != resSuccess {
		return c.fail(name, r)
	}
	return c.wait(name)
}

// begin checks that the communicator is usable and x a device view, then
// locks the goroutine to its OS thread with the rank's context current
// (CUDA contexts are per thread; the caller unlocks). what == "" skips
// the view.
func (c *Comm) begin(op, what string, x kernels.T) (uintptr, error) {
	if c.closed {
		return 0, fmt.Errorf("nccl %s (rank %d): communicator closed", op, c.rank)
	}
	if c.broken != nil {
		return 0, fmt.Errorf("nccl %s (rank %d): communicator aborted after an earlier failure: %w", op, c.rank, c.broken)
	}
	var p uintptr
	if what != "" {
		var err error
		if p, err = devicePtr(op, what, x); err != nil {
			return 0, err
		}
	}
	runtime.LockOSThread()
	if err := cu.SetCurrentContext(c.ctx); err != nil {
		runtime.UnlockOSThread()
		return 0, fmt.Errorf("nccl %s (rank %d): making the context current: %w", op, c.rank, err)
	}
	return p, nil
}

// shardArgs checks the arguments of ReduceScatter and AllGather, then
// begins: shard must hold exactly this rank's Range of x, and may overlap
// x only by being that range.
func (c *Comm) shardArgs(op string, shard, x kernels.T) (xp, sp uintptr, err error) {
	xp, err = devicePtr(op, "x", x)
	if err != nil {
		return 0, 0, err
	}
	off, cnt := collective.Range(x.N, c.rank, c.size)
	if shard.N != cnt {
		return 0, 0, fmt.Errorf("nccl %s (rank %d of %d): shard has %d elements, want %d (this rank's range [%d, %d) of %d)",
			op, c.rank, c.size, shard.N, cnt, off, off+cnt, x.N)
	}
	if sp, err = devicePtr(op, "shard", shard); err != nil {
		return 0, 0, err
	}
	xEnd, sEnd := xp+uintptr(x.N)*4, sp+uintptr(cnt)*4
	if cnt > 0 && sp < xEnd && xp < sEnd && sp != xp+uintptr(off)*4 {
		return 0, 0, fmt.Errorf("nccl %s (rank %d): shard overlaps x other than as this rank's range [%d, %d)", op, c.rank, off, off+cnt)
	}
	if _, err = c.begin(op, "", kernels.T{}); err != nil {
		return 0, 0, err
	}
	return xp, sp, nil
}

// devicePtr is the device address of view t's first element.
func devicePtr(op, what string, t kernels.T) (uintptr, error) {
	if t.B == nil && t.N == 0 {
		return 0, nil // an empty view needs no buffer; nothing is read or written
	}
	if t.B == nil {
		return 0, fmt.Errorf("nccl %s: %s has no buffer", op, what)
	}
	d, ok := t.B.(DevicePtr)
	if !ok {
		return 0, fmt.Errorf("nccl %s: %s is a %T, not device memory: NCCL needs buffers of the CUDA device (kernels/cuda); "+
			"host buffers go through the TCP backend", op, what, t.B)
	}
	if t.Off < 0 || t.N < 0 || t.Off+t.N > t.B.Len() {
		return 0, fmt.Errorf("nccl %s: %s view [%d, %d) outside its buffer of %d", op, what, t.Off, t.Off+t.N, t.B.Len())
	}
	return d.DevicePtr() + uintptr(t.Off)*4, nil
}

// redOp maps op to NCCL's; scale reports that the result must then be
// divided by the world size (Avg on NCCL before 2.10).
func (c *Comm) redOp(name string, op collective.Op) (nop int, scale bool, err error) {
	switch op {
	case collective.Sum:
		return redSum, false, nil
	case collective.Max:
		return redMax, false, nil
	case collective.Avg:
		if c.nativeAvg {
			return redAvg, false, nil
		}
		return redSum, c.size > 1, nil
	}
	return 0, false, fmt.Errorf("nccl %s: unknown reduction %v", name, op)
}

// streamPtr is the stream as NCCL's cudaStream_t (the same handle as the
// driver's CUstream).
func (c *Comm) streamPtr() unsafe.Pointer { return unsafe.Pointer(c.stream.C()) }

// ensureScratch grows the scratch buffer to at least bytes. Only a
// larger call than any before allocates; every collective has finished
// when it returns, so the old buffer is free to go.
func (c *Comm) ensureScratch(op string, bytes int64) error {
	if bytes <= c.scratchBytes {
		return nil
	}
	if c.scratch != 0 {
		if err := cu.MemFree(c.scratch); err != nil {
			return c.cudaFail(op, "freeing scratch", err)
		}
		c.scratch, c.scratchBytes = 0, 0
	}
	p, err := cu.MemAlloc(bytes)
	if err != nil {
		return fmt.Errorf("nccl %s (rank %d): allocating %d bytes of scratch on the GPU: %w", op, c.rank, bytes, err)
	}
	c.scratch, c.scratchBytes = p, bytes
	return nil
}

// scale queues x[i] /= size over n float32 values at device address p.
func (c *Comm) scale(op string, p uintptr, n int) error {
	if !c.scaleOK {
		m, err := cu.LoadData(scalePTX)
		if err != nil {
			return fmt.Errorf("nccl %s (rank %d): loading the scale kernel: %w", op, c.rank, err)
		}
		fn, err := m.Function(scaleKernel)
		if err != nil {
			m.Unload()
			return fmt.Errorf("nccl %s (rank %d): scale kernel: %w", op, c.rank, err)
		}
		c.scaleMod, c.scaleFn, c.scaleOK = m, fn, true
	}
	const block = 256
	grid := min((n+block-1)/block, 4096) // grid-stride loop covers the rest
	x, count, alpha := uint64(p), uint64(n), 1/float64(c.size)
	args := []unsafe.Pointer{unsafe.Pointer(&x), unsafe.Pointer(&count), unsafe.Pointer(&alpha)}
	if err := c.scaleFn.Launch(grid, 1, 1, block, 1, 1, 0, c.stream, args); err != nil {
		return c.cudaFail(op, "scaling the sum to the average", err)
	}
	return nil
}
