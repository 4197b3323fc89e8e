package ckpt

import (
	"encoding/binary"
	"errors"

	"github.com/klauspost/compress/huff0"
	"github.com/klauspost/compress/zstd"
)

// The block encoder. A block's byte planes become one standard zstd frame
// each, concatenated (a zstd decoder reads concatenated frames as one
// stream, so DecodeAll returns the planes back to back).
//
// Why not hand each block to klauspost's zstd encoder: measured on 8 MiB
// blocks of N(0, 0.02) weights (BenchmarkPlanes), its LZ match finder
// spends ~90 % of the time on the one compressible plane — sign and
// exponent bytes, a few symbols with no long repeats — at 170 MB/s, and
// its many short matches leave that plane at 0.41 of its size, where an
// order-0 Huffman code (the plane's entropy is ~2.7 bits) reaches 0.34 at
// 520 MB/s. The three mantissa planes are noise in every case. So levels
// 1-2 write literal-only zstd blocks — Huffman-coded with klauspost's huff0,
// the entropy coder of its zstd, RLE for a constant chunk, raw for noise —
// and levels 3-22 also run klauspost's LZ encoder at that level on each
// plane and keep the smaller frame, for data with real repeats (sparse or
// quantised values).

const (
	zstdFrameMagic = 0xFD2FB528
	zstdMaxBlock   = 128 << 10 // a zstd block holds at most 128 KiB of content
	// Block types and the compressed-literals type of the zstd format
	// (RFC 8878, 3.1.1.2 and 3.1.1.3.1.1).
	zstdBlockRaw        = 0
	zstdBlockRLE        = 1
	zstdBlockCompressed = 2
	zstdLitCompressed   = 2
)

// blockEncoder encodes blocks; one per worker (huff0's scratch is not
// safe for concurrent use). lz, shared, is nil at levels 1-2.
type blockEncoder struct {
	lz   *zstd.Encoder
	huff huff0.Scratch
	tmp  []byte
}

func newBlockEncoder(lz *zstd.Encoder) *blockEncoder {
	e := &blockEncoder{lz: lz}
	e.huff.Reuse = huff0.ReusePolicyNone // every zstd block carries its own table
	return e
}

// encode appends the frames of raw, cut into planes equal planes (4 for
// shuffled float32, 1 for unshuffled bytes), to dst.
func (e *blockEncoder) encode(dst, raw []byte, planes int) []byte {
	n := len(raw) / planes
	for k := range planes {
		p := raw[k*n : (k+1)*n]
		start := len(dst)
		dst = e.literalFrame(dst, p)
		if e.lz != nil {
			e.tmp = e.lz.EncodeAll(p, e.tmp[:0])
			if len(e.tmp) < len(dst)-start {
				dst = append(dst[:start], e.tmp...)
			}
		}
	}
	return dst
}

// literalFrame appends a zstd frame holding p: single-segment, with a
// 4-byte content size, no checksum (the container checks every block's
// raw bytes with crc32c), blocks of at most 128 KiB, each RLE, raw or
// Huffman-compressed literals with no sequences.
func (e *blockEncoder) literalFrame(dst, p []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, zstdFrameMagic)
	// Frame_Header_Descriptor: Frame_Content_Size_flag 2 (4 bytes),
	// Single_Segment_flag 1, no checksum, no dictionary.
	dst = append(dst, 2<<6|1<<5)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p)))
	if len(p) == 0 {
		return appendBlockHeader(dst, true, zstdBlockRaw, 0)
	}
	for off := 0; off < len(p); off += zstdMaxBlock {
		c := p[off:min(off+zstdMaxBlock, len(p))]
		dst = e.literalBlock(dst, c, off+len(c) == len(p))
	}
	return dst
}

// literalBlock appends one zstd block holding c.
func (e *blockEncoder) literalBlock(dst, c []byte, last bool) []byte {
	if len(c) < 1024 || looksRandom(c) {
		return append(appendBlockHeader(dst, last, zstdBlockRaw, len(c)), c...)
	}
	out, _, err := huff0.Compress4X(c, &e.huff)
	switch {
	case errors.Is(err, huff0.ErrUseRLE):
		return append(appendBlockHeader(dst, last, zstdBlockRLE, len(c)), c[0])
	case err != nil: // ErrIncompressible, or anything else: store raw
		return append(appendBlockHeader(dst, last, zstdBlockRaw, len(c)), c...)
	}
	// Literals_Section_Header: type, Size_Format, Regenerated_Size and
	// Compressed_Size in 10, 14 or 18 bits each (3, 4 or 5 bytes); 4
	// streams, as Compress4X writes them.
	bits, sf := 18, 3
	switch {
	case len(c) < 1<<10 && len(out) < 1<<10:
		bits, sf = 10, 1
	case len(c) < 1<<14 && len(out) < 1<<14:
		bits, sf = 14, 2
	}
	hsize := (4 + 2*bits + 7) / 8
	size := hsize + len(out) + 1 // + the sequences section: 0 sequences
	if size >= len(c) {
		return append(appendBlockHeader(dst, last, zstdBlockRaw, len(c)), c...)
	}
	dst = appendBlockHeader(dst, last, zstdBlockCompressed, size)
	h := uint64(zstdLitCompressed) | uint64(sf)<<2 | uint64(len(c))<<4 | uint64(len(out))<<(4+bits)
	for i := range hsize {
		dst = append(dst, byte(h>>(8*i)))
	}
	dst = append(dst, out...)
	return append(dst, 0)
}

// appendBlockHeader appends a 3-byte zstd block header.
func appendBlockHeader(dst []byte, last bool, typ, size int) []byte {
	h := uint32(typ)<<1 | uint32(size)<<3
	if last {
		h |= 1
	}
	return append(dst, byte(h), byte(h>>8), byte(h>>16))
}

// looksRandom says, from a sample of every 16th byte, whether Huffman
// coding would gain nothing: huff0's own test ("the most frequent symbol
// is under 1/128 of the input") on a sixteenth of the bytes, so that the
// mantissa planes are stored raw at memory speed instead of being counted
// in full first.
func looksRandom(c []byte) bool {
	var h [256]uint16
	n := 0
	for i := 0; i < len(c); i += 16 {
		h[c[i]]++
		n++
	}
	var most uint16
	for _, v := range h {
		most = max(most, v)
	}
	return int(most) < n>>7
}
