package collective

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"earl/kernels"
)

// ringConn is a ring connection: TCP, or a Unix socket between ranks on
// one host.
type ringConn interface {
	net.Conn
	CloseWrite() error
}

// ringComm is one rank of the ring. It holds two connections: right
// (this rank dialled its right neighbour; data flows to the right on it)
// and left (its left neighbour dialled in; data arrives on it). Three
// goroutines work them:
//
//   - the caller's goroutine receives from the left and reduces
//     (recvAll);
//   - a sender goroutine, started once, writes to the right (sendAll),
//     each message as soon as the receive it depends on is done, and
//     sends keepalives while it waits;
//   - a watcher goroutine reads the right connection's other direction,
//     which carries shared-memory credits, and the right neighbour's
//     abort or goodbye (watchRight).
//
// Failures travel both ways around the ring as abort messages naming the
// rank at fault: forward on a right connection (read by the receiver),
// backward on a left connection (read by the watcher). A rank that learns
// of a failure passes it on away from where it came from, then closes
// both connections; the communicator stays failed.
//
// Stalls are told from slowness by keepalives: while a rank is inside a
// collective, its right neighbour hears from it at least every Timeout/4,
// so only the rank just right of a stopped or hung process times out on
// it, and everyone else learns the culprit's rank from the abort.
type ringComm struct {
	rank, size int
	opt        Options
	self       string // this rank's advertised address

	left, right ringConn
	lr          *bufio.Reader
	// Shared memory between ranks on one host (shm_linux.go): the left
	// link's region, read by this rank, and the right link's, filled by
	// it; each shmSlots slots of slotBytes, used in turn. credits counts
	// the right link's free slots: the sender takes one per chunk, the
	// watcher gives one back per credit message from the right neighbour.
	shmRecv, shmSend    []byte
	slotBytes           int
	credits             atomic.Int64
	sendSlot            int // sender goroutine: the next slot to fill
	recvSlot            int // receiver: the next slot to read
	creditHdr           [hdrSize]byte
	leftRank, rightRank int
	leftAddr, rightAddr string

	seq    uint64
	curSeq atomic.Uint64 // seq of the call in progress, for the watcher
	p      plan

	// sender side
	sendReq   chan struct{}
	sendDone  chan sendResult
	wake      chan struct{} // cap 1: a receive completed, the call ended, or abort
	recvDone  atomic.Int64  // receives completed in this call
	callOver  atomic.Bool
	aborting  atomic.Bool
	kaEvery   time.Duration
	kaTimer   *time.Timer
	lastSend  time.Time
	whdr      [hdrSize]byte
	small     []byte      // header + small payload, sent in one write
	wbufs     net.Buffers // header + payload, one writev
	wback     [2][]byte
	sbuf      []byte // little-endian copy of a payload (encodeWire only)
	sendFail  atomic.Pointer[failure]
	watchFail atomic.Pointer[failure]
	watchDone chan struct{}

	// receiver side
	rhdr [hdrSize]byte
	rbuf []byte

	broken    error // sticky: the first failure, as returned
	closeOnce sync.Once
	closing   atomic.Bool
	closed    bool
}

type sendResult struct {
	mid bool // stopped in the middle of a message: the right stream is unusable
	f   *failure
}

// side is where news of a failure came from.
type side uint8

const (
	sideLeft side = 1 + iota
	sideRight
)

// failure is what went wrong, and who is to blame.
type failure struct {
	cause  int    // the rank at fault (-1: unknown)
	addr   string // its address
	origin int    // the rank that detected it
	why    reason
	text   string
	from   side
	direct bool   // seen on this rank's own socket, not reported by an abort
	err    error  // the socket error, when direct
	seq    uint64 // of an abort or goodbye: the sender's call sequence number
}

const (
	// recvPiece is how much of a reduced payload is read before it is
	// added in: small enough to still be in cache when the add loop reads
	// it, large enough that syscalls stay cheap (64 KiB to 1 MiB measure
	// alike in BenchmarkAllReduceTCP; 256 KiB leaves room in a 512 KiB L2).
	recvPiece = 256 << 10
	// smallMsg payloads are copied behind their header and sent in one
	// write instead of a two-buffer writev.
	smallMsg = 16 << 10
	// shmMin is the smallest payload sent through shared memory: below
	// it, copying on the socket is cheaper than the credit message.
	shmMin = 16 << 10
	// abortWait bounds the writes of abort and goodbye messages, and how
	// long Close waits for neighbours to hang up.
	abortWait = time.Second
	// witnessWait is how long a rank whose right neighbour broke its
	// connection waits for that neighbour's abort message, which names the
	// real culprit if the neighbour was only passing a failure on.
	witnessWait = 500 * time.Millisecond
)

func newRingComm(rank, size int, opt Options, self string, left, right link, leftAddr, rightAddr string) *ringComm {
	c := &ringComm{
		rank: rank, size: size, opt: opt, self: self,
		left: left.conn, right: right.conn, lr: bufio.NewReaderSize(left.conn, 4096),
		shmRecv: left.shm, shmSend: right.shm, slotBytes: shmSlotBytes(opt.ChunkBytes),
		leftRank: mod(rank-1, size), rightRank: mod(rank+1, size),
		leftAddr: leftAddr, rightAddr: rightAddr,
		sendReq: make(chan struct{}), sendDone: make(chan sendResult), wake: make(chan struct{}, 1),
		kaEvery: max(opt.Timeout/4, time.Millisecond), kaTimer: time.NewTimer(time.Hour),
		small:     make([]byte, hdrSize+smallMsg),
		rbuf:      bytesOf64(make([]float64, recvPiece/8)),
		watchDone: make(chan struct{}),
	}
	c.kaTimer.Stop()
	c.credits.Store(shmSlots)
	go c.sendLoop()
	go c.watchRight()
	return c
}

func (c *ringComm) Rank() int { return c.rank }
func (c *ringComm) Size() int { return c.size }

func (c *ringComm) AllReduce(x kernels.T, op Op) error {
	a, err := newCall(kAllReduce, c.rank, c.size, op, 0, x, kernels.T{})
	if err != nil {
		return err
	}
	return c.run(&a, 4, bytesOf32(a.x), nil)
}

func (c *ringComm) AllReduce64(x []float64, op Op) error {
	if err := checkOp(kAllReduce64, c.rank, op); err != nil {
		return err
	}
	a := call{kind: kAllReduce64, op: op, count: len(x)}
	return c.run(&a, 8, bytesOf64(x), nil)
}

func (c *ringComm) ReduceScatter(shard, x kernels.T, op Op) error {
	a, err := newCall(kReduceScatter, c.rank, c.size, op, 0, x, shard)
	if err != nil {
		return err
	}
	return c.run(&a, 4, bytesOf32(a.x), bytesOf32(a.shard))
}

func (c *ringComm) AllGather(x, shard kernels.T) error {
	a, err := newCall(kAllGather, c.rank, c.size, 0, 0, x, shard)
	if err != nil {
		return err
	}
	if !a.inPlace {
		off, _ := Range(a.count, c.rank, c.size)
		copy(a.x[off:], a.shard)
	}
	return c.run(&a, 4, bytesOf32(a.x), bytesOf32(a.shard))
}

func (c *ringComm) Broadcast(x kernels.T, root int) error {
	a, err := newCall(kBroadcast, c.rank, c.size, 0, root, x, kernels.T{})
	if err != nil {
		return err
	}
	return c.run(&a, 4, bytesOf32(a.x), nil)
}

func (c *ringComm) Barrier() error {
	a := call{kind: kBarrier}
	return c.run(&a, 4, nil, nil)
}

// run performs one collective on this rank.
func (c *ringComm) run(a *call, esize int, x, shard []byte) error {
	// The description is only built for errors: formatting it on every
	// call would allocate.
	desc := func() string { return callDesc(a.kind, a.op, a.root, uint64(a.count), c.seq) }
	if c.closed {
		return fmt.Errorf("collective %s on rank %d: %w", desc(), c.rank, ErrClosed)
	}
	if c.broken != nil {
		return fmt.Errorf("collective %s on rank %d: the communicator failed earlier: %w", desc(), c.rank, c.broken)
	}
	if f := c.watchNews(); f != nil {
		return c.fail(f, desc(), false)
	}
	c.curSeq.Store(c.seq)
	c.p = plan{kind: a.kind, op: a.op, root: a.root, count: a.count, esize: esize,
		rank: c.rank, size: c.size, seq: c.seq, x: x, shard: shard}
	c.p.layout(c.opt.ChunkBytes)
	// Do not keep the caller's buffers alive after the call (the sender
	// is done with them whenever run returns).
	defer func() { c.p.x, c.p.shard = nil, nil }()
	c.recvDone.Store(0)
	c.callOver.Store(false)
	c.aborting.Store(false)
	select {
	case <-c.wake:
	default:
	}
	c.sendReq <- struct{}{}

	f := c.recvAll()
	if f == nil {
		c.callOver.Store(true)
		c.poke()
		r := <-c.sendDone
		if r.f == nil {
			c.seq++
			return nil
		}
		return c.fail(r.f, desc(), r.mid)
	}
	// Stop the sender. When the news came from the right, there is nothing
	// more to tell that side: cut the write short. Otherwise let the
	// message in flight finish (briefly) so an abort can follow it.
	c.aborting.Store(true)
	rightGone := f.from == sideRight || (f.cause == c.rightRank && f.why != reasonMismatch && f.why != reasonProtocol)
	if rightGone {
		c.right.SetWriteDeadline(time.Now())
	} else {
		c.right.SetWriteDeadline(time.Now().Add(min(c.opt.Timeout, abortWait)))
	}
	c.poke()
	r := <-c.sendDone
	return c.fail(f, desc(), r.mid || rightGone)
}

func (c *ringComm) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// fail makes f this communicator's permanent failure: it passes f on to
// the neighbours that may not know yet, closes both connections, and
// returns the error for the caller.
func (c *ringComm) fail(f *failure, desc string, rightUnusable bool) error {
	if f.direct && f.from == sideRight {
		// Our right neighbour broke the connection. If it was only passing
		// on someone else's failure, its abort message names the culprit:
		// give the watcher a moment to read it.
		t := time.NewTimer(witnessWait)
		select {
		case <-c.watchDone:
		case <-t.C:
		}
		t.Stop()
		if w := c.watchFail.Load(); w != nil && !w.direct {
			f = w
		}
	}
	c.broken = c.toError(f, desc)
	// Pass the news on, except back to the side that told us, to the rank
	// that first reported it, and to a culprit that is dead, stopped or
	// closed (a rank that called the wrong collective is alive and must
	// hear).
	am := abortMsg{cause: f.cause, origin: f.origin, why: f.why, addr: f.addr, text: f.text}
	gone := f.why == reasonFailed || f.why == reasonStalled || f.why == reasonClosed
	skip := func(r int, s side) bool {
		return (f.from == s && !f.direct) || r == f.origin || (gone && r == f.cause)
	}
	if !rightUnusable && !skip(c.rightRank, sideRight) {
		c.writeAbort(c.right, &am)
	}
	if !skip(c.leftRank, sideLeft) {
		c.writeAbort(c.left, &am)
	}
	c.closing.Store(true)
	c.left.Close()
	c.right.Close()
	c.unmap()
	return c.broken
}

// unmap releases the shared-memory regions; the sender and the receiver
// are idle (no call is in progress).
func (c *ringComm) unmap() {
	shmUnmap(c.shmSend)
	shmUnmap(c.shmRecv)
	c.shmSend, c.shmRecv = nil, nil
}

func (c *ringComm) toError(f *failure, desc string) error {
	text := f.text
	if f.origin != c.rank && f.origin != f.cause && f.origin >= 0 {
		text += fmt.Sprintf(" (reported by rank %d)", f.origin)
	}
	if f.why == reasonMismatch {
		return fmt.Errorf("collective %s on rank %d: %w: %s", desc, c.rank, ErrMismatch, text)
	}
	var err error = errors.New(text)
	if f.err != nil {
		err = fmt.Errorf("%s: %w", text, f.err)
	}
	return &PeerError{Rank: f.cause, Addr: f.addr, Op: fmt.Sprintf("%s on rank %d", desc, c.rank), Err: err}
}

// writeAbort sends an abort message on conn, best effort: the neighbour
// may be gone too.
func (c *ringComm) writeAbort(conn ringConn, am *abortMsg) {
	payload := am.encode(nil)
	h := header{typ: msgAbort, seq: c.seq, bytes: uint32(len(payload))}
	b := make([]byte, hdrSize, hdrSize+len(payload))
	h.encode(b)
	conn.SetWriteDeadline(time.Now().Add(min(c.opt.Timeout, abortWait)))
	conn.Write(append(b, payload...))
}

// --- sender ---

func (c *ringComm) sendLoop() {
	for range c.sendReq {
		mid, f := c.sendAll()
		c.sendDone <- sendResult{mid, f}
	}
}

func (c *ringComm) sendAll() (mid bool, f *failure) {
	p := &c.p
	c.lastSend = time.Now()
	for s := 0; s < p.steps; s++ {
		if !p.sends(s) {
			continue
		}
		for ch := 0; ch < p.chunks(s); ch++ {
			for need := p.sendDep(s, ch); c.recvDone.Load() < need; {
				if c.aborting.Load() {
					return false, nil
				}
				if f := c.idle(); f != nil {
					return false, f
				}
			}
			payload := p.sendBuf(s, ch)
			h := p.header(s, ch, len(payload))
			if c.shmSend != nil && len(payload) >= shmMin {
				// Into the next free slot; only the header goes on the
				// socket (native layout: same host, same byte order).
				if f := c.waitCredit(); f != nil || c.aborting.Load() {
					return false, f
				}
				copy(c.shmSend[c.sendSlot*c.slotBytes:], payload)
				h.flags, h.addr = flagShm, uint64(c.sendSlot)
				c.sendSlot = (c.sendSlot + 1) % shmSlots
				c.credits.Add(-1)
				payload = nil
			}
			if mid, err := c.writeMsg(&h, payload); err != nil || c.aborting.Load() {
				return mid, c.sendFailed(err)
			}
		}
	}
	// Done sending; keep telling the right neighbour this rank is alive
	// until this rank's own receives are done.
	for !c.callOver.Load() && !c.aborting.Load() {
		if f := c.idle(); f != nil {
			return false, f
		}
	}
	return false, nil
}

// idle waits for the receiver's progress (or the end of the call), and
// sends a keepalive when the right neighbour has not heard from this rank
// for kaEvery — unless that neighbour has already finished this call and
// closed, which is no failure of this call.
func (c *ringComm) idle() *failure {
	// The watcher's news stops the sender too: when this rank's receives
	// are all done, nobody else would notice that the right neighbour,
	// whose credits the sender waits for, has died.
	if w := c.watchFail.Load(); w != nil && (w.why != reasonClosed || w.seq <= c.p.seq) {
		return w
	}
	wait := c.kaEvery - time.Since(c.lastSend)
	if c.rightFinished() {
		wait = time.Hour
	}
	if wait <= 0 {
		h := header{typ: msgKeepalive, seq: c.p.seq}
		if _, err := c.writeMsg(&h, nil); err != nil && !c.aborting.Load() {
			// A neighbour that finished the call and closed resets the
			// connection; its goodbye, read by the watcher, says so.
			t := time.NewTimer(witnessWait)
			select {
			case <-c.watchDone:
			case <-t.C:
			}
			t.Stop()
			if c.rightFinished() {
				return nil
			}
			return c.sendFailed(err)
		}
		return nil
	}
	c.kaTimer.Reset(wait)
	select {
	case <-c.wake:
		c.kaTimer.Stop()
	case <-c.kaTimer.C:
	}
	return nil
}

// waitCredit waits for a free slot on the right link, sending keepalives
// meanwhile; a right neighbour that frees none within Options.Timeout is
// stalled, as one whose socket accepts no bytes would be.
func (c *ringComm) waitCredit() *failure {
	start := time.Now()
	for c.credits.Load() == 0 {
		if c.aborting.Load() {
			return nil
		}
		if time.Since(start) > c.opt.Timeout {
			return c.sendFailed(os.ErrDeadlineExceeded)
		}
		if f := c.idle(); f != nil {
			return f
		}
	}
	return nil
}

// rightFinished reports whether the right neighbour said goodbye after
// completing the call in progress.
func (c *ringComm) rightFinished() bool {
	w := c.watchFail.Load()
	return w != nil && w.why == reasonClosed && w.seq > c.p.seq
}

// sendFailed turns a write error into the right neighbour's failure and
// interrupts the receiver (nil for no error or an abort in progress).
func (c *ringComm) sendFailed(err error) *failure {
	if err == nil || c.aborting.Load() {
		return nil
	}
	f := c.rightFailure(err)
	c.sendFail.Store(f)
	c.left.SetReadDeadline(time.Now())
	return f
}

// writeMsg sends one message to the right. mid reports a write that
// stopped part-way, after which the stream is unusable.
func (c *ringComm) writeMsg(h *header, payload []byte) (mid bool, err error) {
	if encodeWire && len(payload) > 0 {
		if cap(c.sbuf) < len(payload) {
			c.sbuf = make([]byte, len(payload))
		}
		toWire(c.sbuf[:len(payload)], payload, c.p.esize)
		payload = c.sbuf[:len(payload)]
	}
	h.encode(c.whdr[:])
	c.right.SetWriteDeadline(time.Now().Add(c.opt.Timeout))
	// Checked after setting the deadline: an abort sets its own short
	// deadline after raising the flag, so a write never outlives it.
	if c.aborting.Load() {
		return false, nil
	}
	var n int64
	total := int64(hdrSize + len(payload))
	if len(payload) <= smallMsg {
		b := append(append(c.small[:0], c.whdr[:]...), payload...)
		var k int
		k, err = c.right.Write(b)
		n = int64(k)
	} else {
		c.wback[0], c.wback[1] = c.whdr[:], payload
		c.wbufs = c.wback[:]
		n, err = c.wbufs.WriteTo(c.right)
	}
	c.lastSend = time.Now()
	return n > 0 && n < total, err
}

func (c *ringComm) rightFailure(err error) *failure {
	f := &failure{cause: c.rightRank, addr: c.rightAddr, origin: c.rank, why: reasonFailed, from: sideRight, direct: true, err: err}
	if isTimeout(err) {
		f.why, f.err = reasonStalled, nil
		f.text = fmt.Sprintf("sending to it made no progress for %v (Options.Timeout): the process is stopped, hung, or stuck outside the collective", c.opt.Timeout)
	} else {
		f.text = "sending to it failed: the process died or closed its connection"
	}
	return f
}

// --- receiver ---

func (c *ringComm) recvAll() *failure {
	p := &c.p
	for s := 0; s < p.steps; s++ {
		if !p.recvs(s) {
			continue
		}
		for ch := 0; ch < p.chunks(s); ch++ {
			if f := c.recvMsg(s, ch); f != nil {
				return f
			}
			c.recvDone.Add(1)
			c.poke()
		}
	}
	return nil
}

// armRead sets the read deadline for the next read from the left, and
// returns a failure already recorded by the sender or the watcher (which
// interrupt the receiver by setting a deadline in the past, so the check
// must follow the set).
func (c *ringComm) armRead() *failure {
	c.left.SetReadDeadline(time.Now().Add(c.opt.Timeout))
	if f := c.watchNews(); f != nil {
		return f
	}
	return c.sendFail.Load()
}

// watchNews is the watcher's news if it concerns the call in progress: a
// goodbye from a right neighbour that finished this call only fails the
// next one.
func (c *ringComm) watchNews() *failure {
	f := c.watchFail.Load()
	if f != nil && f.why == reasonClosed && f.seq > c.seq {
		return nil
	}
	return f
}

func (c *ringComm) recvMsg(s, ch int) *failure {
	p := &c.p
	var h header
	for {
		if f := c.armRead(); f != nil {
			return f
		}
		if _, err := io.ReadFull(c.lr, c.rhdr[:]); err != nil {
			return c.leftFailure(err)
		}
		if err := h.decode(c.rhdr[:]); err != nil {
			return c.leftProtocol(err)
		}
		if h.typ == msgKeepalive {
			continue
		}
		if h.typ == msgAbort {
			return c.readAbort(&h)
		}
		break
	}
	dst, a, op, reduce := p.recvTarget(s, ch)
	want := p.header(s, ch, len(dst))
	inShm, slot := h.flags&flagShm != 0, h.addr
	h.flags, h.addr = 0, 0
	if h != want {
		return c.mismatch(&h, &want)
	}
	if inShm {
		return c.readShm(dst, a, op, reduce, slot)
	}
	if !reduce {
		if _, err := io.ReadFull(c.lr, dst); err != nil {
			return c.leftFailure(err)
		}
		if encodeWire {
			fromWire(dst, dst, p.esize)
		}
		return nil
	}
	for off := 0; off < len(dst); off += recvPiece {
		n := min(recvPiece, len(dst)-off)
		if f := c.armRead(); f != nil {
			return f
		}
		if _, err := io.ReadFull(c.lr, c.rbuf[:n]); err != nil {
			return c.leftFailure(err)
		}
		if encodeWire {
			fromWire(c.rbuf[:n], c.rbuf[:n], p.esize)
		}
		reduceBytes(dst[off:off+n], a[off:off+n], c.rbuf[:n], p.esize, op, p.size)
	}
	return nil
}

// readShm adds or copies a payload straight out of its shared-memory
// slot, then gives the slot back to the left neighbour.
func (c *ringComm) readShm(dst, a []byte, op Op, reduce bool, slot uint64) *failure {
	if c.shmRecv == nil || slot != uint64(c.recvSlot) || len(dst) > c.slotBytes {
		return c.leftProtocol(fmt.Errorf("shared-memory slot %d for %d bytes (expected slot %d of %d bytes, region %v)",
			slot, len(dst), c.recvSlot, c.slotBytes, c.shmRecv != nil))
	}
	src := c.shmRecv[c.recvSlot*c.slotBytes:][:len(dst)]
	if reduce {
		reduceBytes(dst, a, src, c.p.esize, op, c.size)
	} else {
		copy(dst, src)
	}
	c.recvSlot = (c.recvSlot + 1) % shmSlots
	h := header{typ: msgCredit, seq: c.seq}
	h.encode(c.creditHdr[:])
	c.left.SetWriteDeadline(time.Now().Add(c.opt.Timeout))
	if _, err := c.left.Write(c.creditHdr[:]); err != nil {
		return c.leftFailure(err)
	}
	return nil
}

func (c *ringComm) leftFailure(err error) *failure {
	// An interrupt from the sender or the watcher looks like a timeout.
	if f := c.watchNews(); f != nil {
		return f
	}
	if f := c.sendFail.Load(); f != nil {
		return f
	}
	f := &failure{cause: c.leftRank, addr: c.leftAddr, origin: c.rank, why: reasonFailed, from: sideLeft, direct: true, err: err}
	if isTimeout(err) {
		f.why, f.err = reasonStalled, nil
		f.text = fmt.Sprintf("no message from it for %v (Options.Timeout) while rank %d waited in the collective: the process is stopped, hung, or stuck outside the collective",
			c.opt.Timeout, c.rank)
	} else {
		f.text = "its connection closed: the process died or exited; check its log"
	}
	return f
}

func (c *ringComm) leftProtocol(err error) *failure {
	return &failure{cause: c.leftRank, addr: c.leftAddr, origin: c.rank, why: reasonProtocol, from: sideLeft, direct: true,
		text: fmt.Sprintf("it sent garbage: %v", err)}
}

func (c *ringComm) readAbort(h *header) *failure {
	f, err := readAbortBody(c.lr, h)
	if err != nil {
		return c.leftProtocol(err)
	}
	f.from = sideLeft
	return f
}

func readAbortBody(r io.Reader, h *header) (*failure, error) {
	if h.bytes > 2*maxAbortText {
		return nil, fmt.Errorf("abort message of %d bytes", h.bytes)
	}
	b := make([]byte, h.bytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	var am abortMsg
	if err := am.decode(b); err != nil {
		return nil, err
	}
	return &failure{cause: am.cause, addr: am.addr, origin: am.origin, why: am.why, text: am.text, seq: h.seq}, nil
}

func (c *ringComm) mismatch(got, want *header) *failure {
	mine := callDesc(want.kind, want.op, int(want.root), want.count, want.seq)
	theirs := callDesc(got.kind, got.op, int(got.root), got.count, got.seq)
	var text string
	if mine != theirs {
		text = fmt.Sprintf("rank %d is in %s, but its left neighbour rank %d sent %s: every rank must call the same collectives, with the same counts and roots, in the same order",
			c.rank, mine, c.leftRank, theirs)
	} else {
		text = fmt.Sprintf("rank %d expected step %d chunk %d of %s (%d bytes), but rank %d sent step %d chunk %d (%d bytes)",
			c.rank, want.step, want.chunk, mine, want.bytes, c.leftRank, got.step, got.chunk, got.bytes)
	}
	return &failure{cause: c.leftRank, addr: c.leftAddr, origin: c.rank, why: reasonMismatch, from: sideLeft, direct: true, text: text}
}

// --- watcher ---

// watchRight reads the right connection's backward direction for the
// whole life of the communicator: credits (the right neighbour is done
// with a shared-memory slot), and finally an abort or goodbye from the
// right neighbour, or the connection dying under it, which is recorded
// and interrupts whatever this rank is doing.
func (c *ringComm) watchRight() {
	defer close(c.watchDone)
	defer c.poke() // a sender waiting for credit sees the news
	f := c.watchNext()
	if c.closing.Load() || !c.watchFail.CompareAndSwap(nil, f) {
		return
	}
	if f.why == reasonClosed && f.seq > c.curSeq.Load() {
		return // it finished the call in progress: the next call fails
	}
	c.left.SetReadDeadline(time.Now())
	c.right.SetWriteDeadline(time.Now())
}

// watchNext consumes credits until something else arrives, and returns
// it as a failure.
func (c *ringComm) watchNext() *failure {
	var b [hdrSize]byte
	var h header
	for {
		if _, err := io.ReadFull(c.right, b[:]); err != nil {
			return &failure{cause: c.rightRank, addr: c.rightAddr, origin: c.rank, why: reasonFailed, from: sideRight, direct: true, err: err,
				text: "its connection closed: the process died or exited; check its log"}
		}
		err := h.decode(b[:])
		switch {
		case err == nil && h.typ == msgCredit:
			c.credits.Add(1)
			c.poke()
			continue
		case err == nil && h.typ == msgAbort:
			f, err := readAbortBody(c.right, &h)
			if err != nil {
				return &failure{cause: c.rightRank, addr: c.rightAddr, origin: c.rank, why: reasonProtocol, from: sideRight, direct: true,
					text: fmt.Sprintf("it sent a broken abort message (%v)", err)}
			}
			f.from = sideRight
			return f
		}
		return &failure{cause: c.rightRank, addr: c.rightAddr, origin: c.rank, why: reasonProtocol, from: sideRight, direct: true,
			text: fmt.Sprintf("it sent garbage on the return path (%v, type %d)", err, h.typ)}
	}
}

// Close says goodbye to both neighbours (so a rank still waiting on this
// one is told it closed rather than that it died), shuts the connections
// down gracefully — waiting briefly for the neighbours to hang up, since
// closing a socket with unread bytes resets it and can destroy this
// rank's last, still-queued messages — and stops the goroutines. It is
// idempotent.
func (c *ringComm) Close() error {
	c.closeOnce.Do(func() {
		c.closed = true
		// A neighbour's goodbye is no failure of this rank: say goodbye
		// too, so that a neighbour still finishing the last call learns
		// this rank finished it rather than that it died.
		w := c.watchFail.Load()
		healthy := c.broken == nil && (w == nil || w.why == reasonClosed)
		c.closing.Store(true)
		if healthy {
			bye := abortMsg{cause: c.rank, origin: c.rank, why: reasonClosed, addr: c.self,
				text: "it closed its communicator (Close) while this rank still expected a collective"}
			c.writeAbort(c.right, &bye)
			c.writeAbort(c.left, &bye)
			c.right.CloseWrite()
			c.left.CloseWrite()
			deadline := time.Now().Add(abortWait)
			c.left.SetReadDeadline(deadline)
			io.Copy(io.Discard, c.left)
			t := time.NewTimer(time.Until(deadline))
			select {
			case <-c.watchDone:
			case <-t.C:
			}
			t.Stop()
		}
		c.left.Close()
		c.right.Close()
		<-c.watchDone
		close(c.sendReq)
		c.unmap()
	})
	return nil
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
