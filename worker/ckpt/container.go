package ckpt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The checkpoint container (docs/checkpoints.md): float32 arrays, each cut
// into blocks of BlockBytes raw bytes that are byte-shuffled and compressed
// as independent zstd frames, so they are written and read in parallel and
// a part of an array (a re-sharded optimizer range) is read without
// decompressing the rest. The whole file is a valid zstd stream — the
// header and the index live in skippable frames — so `zstd -t` checks it.
//
//	head    skippable frame 0x184D2A5E, 16 bytes: "EARLCKPT", version u32, 0 u32
//	blocks  one zstd frame per block (with its content checksum), in index order
//	index   skippable frame 0x184D2A5F of len(JSON)+24 bytes: the JSON index,
//	        then the trailer: len(JSON) u64, crc32c(JSON) u32, version u32, "EARLCKPT"
//
// The trailer ends the file, so a reader finds the index from the end and a
// file cut anywhere lacks it. Integers are little-endian.

const (
	containerMagic   = "EARLCKPT"
	containerVersion = 1
	headFrameMagic   = 0x184D2A5E // zstd skippable frames: 0x184D2A50..5F
	indexFrameMagic  = 0x184D2A5F
	headSize         = 8 + 16
	trailerSize      = 24
	// maxIndexBytes bounds the JSON index a reader accepts (a 7B model's
	// weights file needs about 100 kB).
	maxIndexBytes = 256 << 20
	// maxBlockBytes bounds BlockBytes, which sizes every worker's buffers.
	maxBlockBytes = 256 << 20
)

// DefaultBlockBytes is the raw size of a compressed block. Measured on 2
// cores (tools bench ckpt --sweep, docs/checkpoints.md), compression costs
// the same CPU time per byte from 1 to 32 MiB blocks, while decoding is
// ~10 % cheaper up to 4 MiB, whose working set stays in L2; 2 MiB also
// gives a 100 MB tensor 50 blocks to share among the cores, keeps the
// writer's buffers (about 4 × workers blocks) small, and lets a re-sharded
// load decompress little beyond its range.
const DefaultBlockBytes = 2 << 20

// DefaultLevel is the zstd level of SaveOptions{}: literal-only frames
// (planecodec.go). The LZ levels cost 2-3 times the CPU and gain nothing
// on trained-like float data (docs/checkpoints.md).
const DefaultLevel = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Kinds of container files.
const (
	kindWeights = "weights"
	kindOptim   = "optim"
)

// Array fields: "values" of a weights buffer; "master", "m", "v" of a shard.
const (
	fieldValues = "values"
	fieldMaster = "master"
	fieldM      = "m"
	fieldV      = "v"
)

// Shuffle filters.
const (
	shuffleByte4 = "byte4"
	shuffleNone  = "none"
)

// fileIndex is the JSON index of a container.
type fileIndex struct {
	Kind       string        `json:"kind"`  // "weights" or "optim"
	Rank       int           `json:"rank"`  // the writing rank (0 for weights)
	Codec      string        `json:"codec"` // "zstd"
	Level      int           `json:"level"` // zstd level asked for (informational)
	Shuffle    string        `json:"shuffle"`
	BlockBytes int           `json:"block_bytes"` // raw bytes per block; the last of an array may be shorter
	Buffers    []indexBuffer `json:"buffers"`
}

// indexBuffer is one buffer (weights) or one shard (optim).
type indexBuffer struct {
	Name    string       `json:"name"`
	Len     int          `json:"len"`              // elements of every array
	Offset  int          `json:"offset,omitempty"` // optim: the shard's first element in the buffer
	Tensors []TensorRef  `json:"tensors,omitempty"`
	Arrays  []indexArray `json:"arrays"`
}

// indexArray lists the blocks of one array in file order; each block is
// [compressed bytes, crc32c of them, crc32c of the raw (shuffled) bytes].
// Offsets and raw sizes follow from the order and BlockBytes.
type indexArray struct {
	Field  string      `json:"field"`
	Blocks [][3]uint32 `json:"blocks"`
}

// saveOpts is SaveOptions resolved.
type saveOpts struct {
	level      int
	encLevel   zstd.EncoderLevel
	shuffle    bool
	workers    int
	blockBytes int
}

func (o SaveOptions) resolve() (saveOpts, error) {
	r := saveOpts{level: o.Level, shuffle: !o.NoShuffle, workers: o.Concurrency, blockBytes: o.BlockBytes}
	if r.level == 0 {
		r.level = DefaultLevel
	}
	if r.level < 1 || r.level > 22 {
		return r, fmt.Errorf("zstd level %d: use 1 (fastest) to 22, or 0 for the default %d", o.Level, DefaultLevel)
	}
	r.encLevel = zstd.EncoderLevelFromZstd(r.level)
	if r.workers == 0 {
		r.workers = runtime.GOMAXPROCS(0)
	}
	if r.workers < 0 {
		return r, fmt.Errorf("concurrency %d: use a positive number, or 0 for one per core", o.Concurrency)
	}
	if r.blockBytes == 0 {
		r.blockBytes = DefaultBlockBytes
	}
	if r.blockBytes < 4 || r.blockBytes%4 != 0 || r.blockBytes > maxBlockBytes {
		return r, fmt.Errorf("block size %d bytes: use a multiple of 4 up to %d, or 0 for the default %d", o.BlockBytes, maxBlockBytes, DefaultBlockBytes)
	}
	return r, nil
}

// testHookBeforeDone, when set, runs in Finalize after trainer_state.json
// is written and before DONE.
var testHookBeforeDone func()

// testHookBlock, when set, runs before each block is written; an error
// fails the save there. Tests use it to fail or kill a save mid-file.
var testHookBlock func(path string, block int) error

// writeContainer writes idx's arrays (arrays[i] is the i-th array of idx in
// order; their blocks are filled in) as a container at path, atomically,
// and returns the file's size and sha256. The sidecar path+".sha256" is
// removed before the file is renamed into place and written after, so a
// sidecar that exists always describes the file beside it.
func writeContainer(path string, idx *fileIndex, arrays [][]float32, o saveOpts) (int64, [32]byte, error) {
	var sum [32]byte
	var size int64
	side := path + sidecarSuffix
	if err := os.Remove(side); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, sum, err
	}
	err := writeAtomic(path, func(w io.Writer) error {
		h := sha256.New()
		cw := &countWriter{w: io.MultiWriter(w, h)}
		if err := writeBody(cw, path, idx, arrays, o); err != nil {
			return err
		}
		size = cw.n
		h.Sum(sum[:0])
		return nil
	})
	if err != nil {
		return 0, sum, err
	}
	line := fmt.Sprintf("%x  %s\n", sum, filepath.Base(path))
	if err := writeAtomic(side, func(w io.Writer) error { _, err := io.WriteString(w, line); return err }); err != nil {
		return 0, sum, err
	}
	return size, sum, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeBody writes head, blocks and index. Workers shuffle and compress
// blocks in parallel; this goroutine writes them in order, so the bytes do
// not depend on the number of workers. At most 2 blocks per worker are in
// flight, which bounds the memory to about 4 × workers × BlockBytes.
func writeBody(w io.Writer, path string, idx *fileIndex, arrays [][]float32, o saveOpts) error {
	var head [headSize]byte
	binary.LittleEndian.PutUint32(head[0:], headFrameMagic)
	binary.LittleEndian.PutUint32(head[4:], 16)
	copy(head[8:], containerMagic)
	binary.LittleEndian.PutUint32(head[16:], containerVersion)
	if _, err := w.Write(head[:]); err != nil {
		return err
	}

	var slots []*indexArray
	for i := range idx.Buffers {
		for j := range idx.Buffers[i].Arrays {
			a := &idx.Buffers[i].Arrays[j]
			a.Blocks = [][3]uint32{}
			slots = append(slots, a)
		}
	}
	if len(slots) != len(arrays) {
		return fmt.Errorf("internal error: %d arrays for %d index entries", len(arrays), len(slots))
	}

	// Levels 3+ also try klauspost's LZ encoder per plane (planecodec.go).
	// It is deterministic for a level: every plane is a fresh frame with no
	// history, whatever worker compresses it.
	var lz *zstd.Encoder
	if o.level >= 3 {
		var err error
		lz, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(o.encLevel), zstd.WithEncoderConcurrency(o.workers), zstd.WithEncoderCRC(true))
		if err != nil {
			return err
		}
		defer lz.Close()
	}
	planes := 1
	if o.shuffle {
		planes = 4
	}

	type result struct {
		comp        []byte
		crc, rawCRC uint32
	}
	type job struct {
		array int
		src   []float32
		res   chan result
	}
	elems := o.blockBytes / 4
	jobs := make(chan job)
	order := make(chan job, 2*o.workers)
	free := make(chan []byte, 3*o.workers)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(done)
		wg.Wait()
	}()
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw := make([]byte, o.blockBytes)
			enc := newBlockEncoder(lz)
			for j := range jobs {
				b := raw[:4*len(j.src)]
				if o.shuffle {
					shuffle4(b, j.src)
				} else {
					putLE(b, j.src)
				}
				var out []byte
				select {
				case out = <-free:
				default:
				}
				// Frames add 3 bytes per 128 KiB and 9 per plane to raw data.
				if need := len(b) + len(b)/1024 + 64; cap(out) < need {
					out = make([]byte, 0, need)
				}
				out = enc.encode(out[:0], b, planes)
				j.res <- result{out, crc32.Checksum(out, castagnoli), crc32.Checksum(b, castagnoli)}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		defer close(order)
		for a, data := range arrays {
			for off := 0; off < len(data); off += elems {
				j := job{a, data[off:min(off+elems, len(data))], make(chan result, 1)}
				select {
				case order <- j:
				case <-done:
					return
				}
				select {
				case jobs <- j:
				case <-done:
					return
				}
			}
		}
	}()
	block := 0
	for j := range order {
		r := <-j.res
		if testHookBlock != nil {
			if err := testHookBlock(path, block); err != nil {
				return err
			}
		}
		if _, err := w.Write(r.comp); err != nil {
			return err
		}
		slots[j.array].Blocks = append(slots[j.array].Blocks, [3]uint32{uint32(len(r.comp)), r.crc, r.rawCRC})
		block++
		select {
		case free <- r.comp:
		default:
		}
	}

	js, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	var fh [8]byte
	binary.LittleEndian.PutUint32(fh[0:], indexFrameMagic)
	binary.LittleEndian.PutUint32(fh[4:], uint32(len(js)+trailerSize))
	if len(js)+trailerSize > maxIndexBytes {
		return fmt.Errorf("index of %d bytes exceeds %d", len(js), maxIndexBytes)
	}
	var tr [trailerSize]byte
	binary.LittleEndian.PutUint64(tr[0:], uint64(len(js)))
	binary.LittleEndian.PutUint32(tr[8:], crc32.Checksum(js, castagnoli))
	binary.LittleEndian.PutUint32(tr[12:], containerVersion)
	copy(tr[16:], containerMagic)
	for _, b := range [][]byte{fh[:], js, tr[:]} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// container is an open container file: its validated index and where each
// block lies.
type container struct {
	path string
	name string // the file's base name, for errors (callers name the directory)
	f    *os.File
	size int64
	idx  fileIndex
	locs [][][]blockLoc // [buffer][array][block]
}

// blockLoc is one block: where its frame lies and how many values it holds.
type blockLoc struct {
	off         int64
	clen        int
	crc, rawCRC uint32
	elems       int
}

// corruptError marks a file whose bytes are not what was written.
type corruptError struct{ msg string }

func (e *corruptError) Error() string { return e.msg }

func corruptf(format string, args ...any) error {
	return &corruptError{fmt.Sprintf(format, args...)}
}

// openContainer opens path and reads and validates its index; the blocks
// are checked when they are read. Errors name the file.
func openContainer(path string) (*container, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	c := &container{path: path, name: filepath.Base(path), f: f}
	if err := c.readIndex(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	return c, nil
}

func (c *container) Close() error { return c.f.Close() }

func (c *container) readIndex() error {
	st, err := c.f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	c.size = st.Size()
	if c.size < headSize+8+trailerSize {
		return corruptf("%d bytes is too short for a checkpoint file: truncated (an interrupted copy?)", c.size)
	}
	var head [headSize]byte
	if _, err := c.f.ReadAt(head[:], 0); err != nil {
		return err
	}
	le := binary.LittleEndian
	if le.Uint32(head[0:]) != headFrameMagic || le.Uint32(head[4:]) != 16 || string(head[8:16]) != containerMagic {
		return corruptf("not an earl checkpoint file (bad header)")
	}
	if v := le.Uint32(head[16:]); v != containerVersion {
		return fmt.Errorf("container version %d; this earl reads version %d: use the earl that wrote it", v, containerVersion)
	}
	if le.Uint32(head[20:]) != 0 {
		return corruptf("header flags %#x: corrupted", le.Uint32(head[20:]))
	}
	var tr [trailerSize]byte
	if _, err := c.f.ReadAt(tr[:], c.size-trailerSize); err != nil {
		return err
	}
	if string(tr[16:]) != containerMagic || le.Uint32(tr[12:]) != containerVersion {
		return corruptf("no index at the end of the file: truncated or corrupted")
	}
	n := le.Uint64(tr[0:])
	dataEnd := c.size - trailerSize - 8 - int64(n)
	if n > maxIndexBytes || dataEnd < headSize {
		return corruptf("index length %d does not fit the file's %d bytes: corrupted", n, c.size)
	}
	buf := make([]byte, 8+n)
	if _, err := c.f.ReadAt(buf, dataEnd); err != nil {
		return err
	}
	if le.Uint32(buf[0:]) != indexFrameMagic || uint64(le.Uint32(buf[4:])) != n+trailerSize {
		return corruptf("index frame header is damaged: corrupted")
	}
	js := buf[8:]
	if crc32.Checksum(js, castagnoli) != le.Uint32(tr[8:]) {
		return corruptf("index checksum mismatch: corrupted")
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&c.idx); err != nil {
		return corruptf("index: %v", err)
	}
	return c.validate(dataEnd)
}

// validate checks the index against itself and the file and computes the
// block locations.
func (c *container) validate(dataEnd int64) error {
	x := &c.idx
	switch {
	case x.Kind != kindWeights && x.Kind != kindOptim:
		return fmt.Errorf("index: unknown kind %q", x.Kind)
	case x.Codec != "zstd":
		return fmt.Errorf("index: unknown codec %q", x.Codec)
	case x.Shuffle != shuffleByte4 && x.Shuffle != shuffleNone:
		return fmt.Errorf("index: unknown shuffle %q", x.Shuffle)
	case x.BlockBytes < 4 || x.BlockBytes%4 != 0 || x.BlockBytes > maxBlockBytes:
		return fmt.Errorf("index: block size %d", x.BlockBytes)
	case x.Rank < 0:
		return fmt.Errorf("index: rank %d", x.Rank)
	}
	elems := x.BlockBytes / 4
	off := int64(headSize)
	names := map[string]bool{}
	c.locs = make([][][]blockLoc, len(x.Buffers))
	for bi := range x.Buffers {
		b := &x.Buffers[bi]
		if b.Name == "" || names[b.Name] {
			return fmt.Errorf("index: buffer name %q is empty or repeated", b.Name)
		}
		names[b.Name] = true
		if b.Len < 0 || b.Len > maxElems || b.Offset < 0 || b.Offset > maxElems {
			return fmt.Errorf("index: buffer %q: length %d, offset %d", b.Name, b.Len, b.Offset)
		}
		if err := checkTensorRefs(b.Tensors, b.Len); err != nil {
			return fmt.Errorf("index: buffer %q: %w", b.Name, err)
		}
		if err := checkFields(x.Kind, b.Arrays); err != nil {
			return fmt.Errorf("index: buffer %q: %w", b.Name, err)
		}
		nb := (b.Len + elems - 1) / elems
		c.locs[bi] = make([][]blockLoc, len(b.Arrays))
		for ai, a := range b.Arrays {
			if len(a.Blocks) != nb {
				return fmt.Errorf("index: buffer %q %s: %d blocks, %d values need %d", b.Name, a.Field, len(a.Blocks), b.Len, nb)
			}
			locs := make([]blockLoc, nb)
			for k, blk := range a.Blocks {
				clen := int64(blk[0])
				if clen == 0 || off+clen > dataEnd {
					return corruptf("index: buffer %q %s block %d lies outside the data: corrupted", b.Name, a.Field, k)
				}
				locs[k] = blockLoc{off, int(clen), blk[1], blk[2], min(elems, b.Len-k*elems)}
				off += clen
			}
			c.locs[bi][ai] = locs
		}
	}
	if off != dataEnd {
		return corruptf("index: the blocks cover %d of %d data bytes: corrupted", off-headSize, dataEnd-headSize)
	}
	return nil
}

// maxElems bounds array lengths so that byte counts cannot overflow.
const maxElems = 1 << 60

// checkFields checks the array fields of one buffer entry.
func checkFields(kind string, arrays []indexArray) error {
	if kind == kindWeights {
		if len(arrays) != 1 || arrays[0].Field != fieldValues {
			return errors.New(`a weights buffer has exactly one array, "values"`)
		}
		return nil
	}
	// optim: m, v and optionally master, in the order master, m, v.
	want := []string{fieldM, fieldV}
	if len(arrays) == 3 {
		want = []string{fieldMaster, fieldM, fieldV}
	}
	if len(arrays) != len(want) {
		return fmt.Errorf("%d arrays: want m, v and optionally master", len(arrays))
	}
	for i, a := range arrays {
		if a.Field != want[i] {
			return fmt.Errorf("array %d is %q, want %q", i, a.Field, want[i])
		}
	}
	return nil
}

// checkTensorRefs checks a tensor table against a buffer of n values.
func checkTensorRefs(ts []TensorRef, n int) error {
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if t.Name == "" {
			return errors.New("a tensor has an empty name")
		}
		if seen[t.Name] {
			return fmt.Errorf("tensor %q appears twice", t.Name)
		}
		seen[t.Name] = true
		numel := 1
		for _, d := range t.Shape {
			if d < 0 || d > maxElems || (d > 0 && numel > maxElems/d) {
				return fmt.Errorf("tensor %q: bad shape %v", t.Name, t.Shape)
			}
			numel *= d
		}
		if t.Offset < 0 || t.Offset > n || numel > n-t.Offset {
			return fmt.Errorf("tensor %q: offset %d + %d values (shape %v) runs past the buffer's %d", t.Name, t.Offset, numel, t.Shape, n)
		}
	}
	return nil
}

// buffer finds a buffer entry by name.
func (c *container) buffer(name string) (int, bool) {
	for i, b := range c.idx.Buffers {
		if b.Name == name {
			return i, true
		}
	}
	return 0, false
}

// readTask decodes values [from, to) of one block into dst.
type readTask struct {
	c        *container
	what     string // "buffer \"weights\" values", for errors
	block    int
	loc      blockLoc
	from, to int
	dst      []float32
}

// addRange appends the tasks that read values [from, to) of array ai of
// buffer bi into dst (to-from values).
func (c *container) addRange(tasks []readTask, bi, ai, from, to int, dst []float32) []readTask {
	elems := c.idx.BlockBytes / 4
	what := fmt.Sprintf("buffer %q %s", c.idx.Buffers[bi].Name, c.idx.Buffers[bi].Arrays[ai].Field)
	for k := from / elems; k*elems < to; k++ {
		lo, hi := max(from, k*elems), min(to, (k+1)*elems)
		tasks = append(tasks, readTask{c, what, k, c.locs[bi][ai][k], lo - k*elems, hi - k*elems, dst[lo-from : hi-from]})
	}
	return tasks
}

// runReads runs the tasks on workers goroutines, each with its own buffers;
// one zstd decoder serves them all. The first failure stops the rest.
func runReads(tasks []readTask, workers int) error {
	if len(tasks) == 0 {
		return nil
	}
	maxRaw, maxComp := 0, 0
	for _, t := range tasks {
		maxRaw = max(maxRaw, 4*t.loc.elems)
		maxComp = max(maxComp, t.loc.clen)
	}
	workers = max(1, min(workers, len(tasks)))
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(workers), zstd.WithDecoderMaxMemory(uint64(maxRaw)),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return err
	}
	defer dec.Close()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range tasks {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			comp := make([]byte, maxComp)
			raw := make([]byte, maxRaw)
			for i := range next {
				if err := tasks[i].run(dec, comp, raw); err != nil {
					cancel(err)
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

func (t *readTask) run(dec *zstd.Decoder, comp, raw []byte) error {
	c := comp[:t.loc.clen]
	if _, err := t.c.f.ReadAt(c, t.loc.off); err != nil {
		if errors.Is(err, io.EOF) {
			return corruptf("%s: %s block %d: file ends early: truncated", t.c.name, t.what, t.block)
		}
		return fmt.Errorf("%s: %s block %d: %w", t.c.name, t.what, t.block, err)
	}
	if crc32.Checksum(c, castagnoli) != t.loc.crc {
		return corruptf("%s: %s block %d (bytes %d-%d): checksum mismatch: the file is corrupted", t.c.name, t.what, t.block, t.loc.off, t.loc.off+int64(t.loc.clen))
	}
	out, err := dec.DecodeAll(c, raw[:0])
	if err != nil || len(out) != 4*t.loc.elems {
		return corruptf("%s: %s block %d does not decompress to %d bytes (%v): the file is corrupted", t.c.name, t.what, t.block, 4*t.loc.elems, err)
	}
	if crc32.Checksum(out, castagnoli) != t.loc.rawCRC {
		return corruptf("%s: %s block %d: decompressed bytes fail their checksum: the file is corrupted", t.c.name, t.what, t.block)
	}
	if t.c.idx.Shuffle == shuffleByte4 {
		unshuffle4(t.dst, out, t.loc.elems, t.from)
	} else {
		getLE(t.dst, out[4*t.from:4*t.to])
	}
	return nil
}

// hashFile returns the size and sha256 of a file.
func hashFile(path string) (int64, [32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return 0, sum, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
	if err != nil {
		return 0, sum, err
	}
	h.Sum(sum[:0])
	return n, sum, nil
}
