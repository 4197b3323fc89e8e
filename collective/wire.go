package collective

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// The ring's wire format. Every message is a 48-byte header followed by
// its payload:
//
//	[0:2]   magic 0xEA 0x71 (catches a desynchronised stream)
//	[2]     message type: data, keepalive, abort or credit
//	[3]     collective kind (allreduce, reduce_scatter, ...)
//	[4]     reduction op
//	[5]     flags: 1 = the payload is not on the socket but in
//	        shared-memory slot addr (shm_linux.go)
//	[6:8]   zero
//	[8:12]  broadcast root
//	[12:16] ring step
//	[16:24] call sequence number (per communicator, from 0)
//	[24:32] element count of the whole collective
//	[32:36] chunk index within the step
//	[36:40] payload bytes
//	[40:48] shared-memory slot (flag 1 only)
//
// All integers and float payloads are little-endian. The receiver checks
// every field of a data header against the call it is in, so ranks that
// call different collectives, counts or orders get an error naming both
// sides before a single payload byte is read.
const hdrSize = 48

var magic = [2]byte{0xEA, 0x71}

// msgType is the first thing a receiver looks at.
type msgType uint8

const (
	msgData      msgType = 1
	msgKeepalive msgType = 2 // "I am alive and in a collective", sent while waiting
	msgAbort     msgType = 3 // the job failed; payload says where (see abortMsg)
	msgCredit    msgType = 4 // backward: "done with one of your shared-memory slots"
)

// flagShm marks a data message whose payload is in a shared-memory slot.
const flagShm = 1

// kind is the collective a message belongs to.
type kind uint8

const (
	kAllReduce kind = 1 + iota
	kAllReduce64
	kReduceScatter
	kAllGather
	kBroadcast
	kBarrier
)

func (k kind) String() string {
	switch k {
	case kAllReduce:
		return "allreduce"
	case kAllReduce64:
		return "allreduce64"
	case kReduceScatter:
		return "reduce_scatter"
	case kAllGather:
		return "allgather"
	case kBroadcast:
		return "broadcast"
	case kBarrier:
		return "barrier"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

type header struct {
	typ   msgType
	kind  kind
	op    Op
	flags uint8
	root  uint32
	step  uint32
	seq   uint64
	count uint64
	chunk uint32
	bytes uint32
	addr  uint64
}

func (h *header) encode(b []byte) {
	_ = b[hdrSize-1]
	b[0], b[1] = magic[0], magic[1]
	b[2], b[3], b[4] = byte(h.typ), byte(h.kind), byte(h.op)
	b[5], b[6], b[7] = h.flags, 0, 0
	binary.LittleEndian.PutUint32(b[8:], h.root)
	binary.LittleEndian.PutUint32(b[12:], h.step)
	binary.LittleEndian.PutUint64(b[16:], h.seq)
	binary.LittleEndian.PutUint64(b[24:], h.count)
	binary.LittleEndian.PutUint32(b[32:], h.chunk)
	binary.LittleEndian.PutUint32(b[36:], h.bytes)
	binary.LittleEndian.PutUint64(b[40:], h.addr)
}

func (h *header) decode(b []byte) error {
	_ = b[hdrSize-1]
	if b[0] != magic[0] || b[1] != magic[1] {
		return fmt.Errorf("corrupt stream: bad message magic % x", b[:4])
	}
	h.typ, h.kind, h.op, h.flags = msgType(b[2]), kind(b[3]), Op(b[4]), b[5]
	h.root = binary.LittleEndian.Uint32(b[8:])
	h.step = binary.LittleEndian.Uint32(b[12:])
	h.seq = binary.LittleEndian.Uint64(b[16:])
	h.count = binary.LittleEndian.Uint64(b[24:])
	h.chunk = binary.LittleEndian.Uint32(b[32:])
	h.bytes = binary.LittleEndian.Uint32(b[36:])
	h.addr = binary.LittleEndian.Uint64(b[40:])
	switch h.typ {
	case msgData, msgKeepalive, msgAbort, msgCredit:
	default:
		return fmt.Errorf("corrupt stream: unknown message type %d", h.typ)
	}
	return nil
}

// callDesc names a call for error messages: "allreduce #7 (sum, 1000
// elements)".
func callDesc(k kind, op Op, root int, count uint64, seq uint64) string {
	switch k {
	case kBarrier:
		return fmt.Sprintf("barrier #%d", seq)
	case kBroadcast:
		return fmt.Sprintf("broadcast #%d (root %d, %d elements)", seq, root, count)
	case kAllGather:
		return fmt.Sprintf("allgather #%d (%d elements)", seq, count)
	}
	return fmt.Sprintf("%s #%d (%s, %d elements)", k, seq, op, count)
}

// Abort payload: why the job failed and which rank is to blame, so a
// failure is reported by its root cause on every rank, not as "my
// neighbour hung up".
//
//	[0:4] cause rank (int32, -1 unknown)   [4:8] origin rank (who detected it)
//	[8]   reason                           [9:11] len(addr)  addr
//	      then u16 len(text), text
type reason uint8

const (
	reasonFailed   reason = 1 // the process died or its connection broke
	reasonStalled  reason = 2 // no progress within Options.Timeout
	reasonMismatch reason = 3 // ranks called different collectives
	reasonClosed   reason = 4 // Close was called
	reasonProtocol reason = 5 // garbage on the wire
)

type abortMsg struct {
	cause, origin int
	why           reason
	addr, text    string
}

const maxAbortText = 4000

func (a *abortMsg) encode(b []byte) []byte {
	text := a.text
	if len(text) > maxAbortText {
		text = text[:maxAbortText]
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(a.cause)))
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(a.origin)))
	b = append(b, byte(a.why))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(a.addr)))
	b = append(b, a.addr...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(text)))
	return append(b, text...)
}

func (a *abortMsg) decode(b []byte) error {
	bad := fmt.Errorf("corrupt abort message (%d bytes)", len(b))
	if len(b) < 11 {
		return bad
	}
	a.cause = int(int32(binary.LittleEndian.Uint32(b)))
	a.origin = int(int32(binary.LittleEndian.Uint32(b[4:])))
	a.why = reason(b[8])
	n := int(binary.LittleEndian.Uint16(b[9:]))
	b = b[11:]
	if len(b) < n+2 {
		return bad
	}
	a.addr = string(b[:n])
	b = b[n:]
	m := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+m {
		return bad
	}
	a.text = string(b[2 : 2+m])
	return nil
}

// Float payloads go on the wire as little-endian IEEE values. On a
// little-endian machine (every platform earl targets) that is the memory
// layout, so payloads are sent from and received into the caller's
// buffers through byte views, without a copy; encodeWire switches to an
// explicit binary.LittleEndian copy (the big-endian path, forced in tests:
// measured with BenchmarkAllReduceTCP, the copy costs a third of a 16 MiB
// loopback TCP all-reduce's throughput and two thirds of a 256 KiB one's).
var encodeWire = binary.NativeEndian.Uint16([]byte{1, 0}) != 1

func bytesOf32(x []float32) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
}

func bytesOf64(x []float64) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 8*len(x))
}

// floats32 views b (native layout) as float32s; len(b) is a multiple of 4
// and b is 4-aligned (it always comes from a float slice or a buffer
// allocated as one).
func floats32(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func floats64(b []byte) []float64 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(&b[0])), len(b)/8)
}

// toWire copies native floats (as bytes, element size esize) into dst in
// little-endian order.
func toWire(dst, src []byte, esize int) {
	if esize == 4 {
		s := floats32(src)
		for i, v := range s {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
		return
	}
	s := floats64(src)
	for i, v := range s {
		binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(v))
	}
}

// fromWire decodes little-endian floats from src into native dst.
func fromWire(dst, src []byte, esize int) {
	if esize == 4 {
		d := floats32(dst)
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return
	}
	d := floats64(dst)
	for i := range d {
		d[i] = math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:]))
	}
}
