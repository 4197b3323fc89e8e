package collective

// A plan lays one collective out as ring messages: steps, each of nc
// chunks; message (step, chunk) goes from every rank to its right
// neighbour. Ranks compute the same plan from the call's arguments and
// the shared chunk size, so the receiver knows exactly which header and
// how many payload bytes to expect.
//
// Ring all-reduce over the shards of Range (k = 0..n-1), at rank r:
//
//	reduce-scatter, steps s = 0..n-2: send shard (r-s-1), receive shard
//	  (r-s-2) and add it into x; after the last step x's shard r is
//	  complete.
//	all-gather, steps s = n-1..2n-3: send shard (r-s-1), which is the
//	  shard completed or received one step earlier; receive shard (r-s-2)
//	  and copy it into x.
//
// Message (s, c) can go as soon as message (s-1, c) has arrived and been
// reduced, so chunks stream around the ring with every link busy (the
// pipelining); the sender and receiver run in separate goroutines.
//
// Summation order: shard k's sum starts at rank k+1 and picks up one rank
// per hop, ((x[k+1] + x[k+2]) + ...) + x[k] (ranks mod n), on the rank
// that receives the partial. The order depends only on k and the world
// size, so results are bit-identical run to run; the in-process backend
// sums in the same order, so the two agree bit for bit too.
//
// ReduceScatter is the first half (the final step writes into shard),
// AllGather the second (its first send is the caller's shard). Broadcast
// pipelines chunks from the root around the ring (root → root+1 → ... →
// root-1), and the last rank then sends the root a header-only "done", so
// every rank receives something its left neighbour sent and a mismatch
// (say, ranks disagreeing on the root) is caught instead of passing
// silently. Barrier is n-1 header-only steps: a rank's last message
// depends, hop by hop, on every other rank having entered.
type plan struct {
	kind  kind
	op    Op
	root  int
	count int // elements of the full vector
	esize int // bytes per element: 4 (float32) or 8 (float64)
	rank  int
	size  int
	seq   uint64
	x     []byte // the full vector, native floats
	shard []byte // reduce-scatter output / all-gather input
	steps int
	nc    int // chunks per step (broadcast: per data step)
}

func mod(a, n int) int { return ((a % n) + n) % n }

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// layout sets steps and nc from the call and the chunk size.
func (p *plan) layout(chunkBytes int) {
	n := p.size
	switch p.kind {
	case kAllReduce, kAllReduce64:
		p.steps = 2 * (n - 1)
	case kReduceScatter, kAllGather, kBarrier:
		p.steps = n - 1
	case kBroadcast:
		p.steps = 2
	}
	unit := ceilDiv(p.count, n) // the largest shard
	if p.kind == kBroadcast {
		unit = p.count
	}
	p.nc = max(1, ceilDiv(unit*p.esize, chunkBytes))
	if p.kind == kBarrier {
		p.nc = 1
	}
}

// chunks is the number of messages in step s.
func (p *plan) chunks(s int) int {
	if p.kind == kBroadcast && s == 1 {
		return 1
	}
	return p.nc
}

func (p *plan) sends(s int) bool {
	if p.kind == kBroadcast {
		last := mod(p.root-1, p.size)
		return (s == 0 && p.rank != last) || (s == 1 && p.rank == last)
	}
	return true
}

func (p *plan) recvs(s int) bool {
	if p.kind == kBroadcast {
		return (s == 0 && p.rank != p.root) || (s == 1 && p.rank == p.root)
	}
	return true
}

// sendDep is how many receives must be complete before message (s, c)
// can be sent (0: none).
func (p *plan) sendDep(s, c int) int64 {
	if p.kind == kBroadcast {
		switch {
		case s == 1:
			return int64(p.nc) // the last rank has everything
		case p.rank == p.root:
			return 0
		}
		return int64(c) + 1 // forward chunk c once it is here
	}
	if s == 0 {
		return 0
	}
	return int64((s-1)*p.nc+c) + 1
}

// shardChunk is chunk c of shard k as a byte range of x.
func (p *plan) shardChunk(k, c int) (off, n int) {
	so, sn := Range(p.count, k, p.size)
	co, cn := Range(sn, c, p.nc)
	return (so + co) * p.esize, cn * p.esize
}

// ownChunk is chunk c of this rank's shard as a byte range of shard.
func (p *plan) ownChunk(c int) (off, n int) {
	_, sn := Range(p.count, p.rank, p.size)
	co, cn := Range(sn, c, p.nc)
	return co * p.esize, cn * p.esize
}

// sendBuf is the payload of message (s, c).
func (p *plan) sendBuf(s, c int) []byte {
	switch p.kind {
	case kBarrier:
		return nil
	case kBroadcast:
		if s == 1 {
			return nil
		}
		o, n := Range(p.count, c, p.nc)
		return p.x[o*p.esize : (o+n)*p.esize]
	case kAllGather:
		if s == 0 {
			o, n := p.ownChunk(c)
			return p.shard[o : o+n]
		}
		o, n := p.shardChunk(mod(p.rank-s, p.size), c)
		return p.x[o : o+n]
	}
	o, n := p.shardChunk(mod(p.rank-s-1, p.size), c)
	return p.x[o : o+n]
}

// recvTarget says where message (s, c) goes: copied into dst, or, when
// reduce is set, dst = a op received (dst may be a).
func (p *plan) recvTarget(s, c int) (dst, a []byte, op Op, reduce bool) {
	switch p.kind {
	case kBarrier:
		return nil, nil, 0, false
	case kBroadcast:
		if s == 1 {
			return nil, nil, 0, false
		}
		o, n := Range(p.count, c, p.nc)
		return p.x[o*p.esize : (o+n)*p.esize], nil, 0, false
	case kAllGather:
		o, n := p.shardChunk(mod(p.rank-s-1, p.size), c)
		return p.x[o : o+n], nil, 0, false
	}
	o, n := p.shardChunk(mod(p.rank-s-2, p.size), c)
	last := p.size - 2 // the step that completes this rank's shard
	if s > last {
		return p.x[o : o+n], nil, 0, false // all-gather phase of an all-reduce
	}
	op = p.op
	if op == Avg && s < last {
		op = Sum // divide once, after the whole sum
	}
	if p.kind == kReduceScatter && s == last {
		so, sn := p.ownChunk(c)
		return p.shard[so : so+sn], p.x[o : o+n], op, true
	}
	return p.x[o : o+n], p.x[o : o+n], op, true
}

// header is the header of message (s, c) carrying payload bytes.
func (p *plan) header(s, c, bytes int) header {
	h := header{typ: msgData, kind: p.kind, seq: p.seq, count: uint64(p.count),
		step: uint32(s), chunk: uint32(c), bytes: uint32(bytes)}
	switch p.kind {
	case kAllReduce, kAllReduce64, kReduceScatter:
		h.op = p.op
	case kBroadcast:
		h.root = uint32(p.root)
	}
	return h
}
