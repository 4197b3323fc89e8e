package ckpt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Training checkpoints (docs/checkpoints.md). A checkpoint is a directory
// RUN/checkpoints/step-NNNNNNNN/ that the ranks fill in three moves:
//
//	rank 0:      SaveWeights(dir, buffers, opt)      -> weights.zst
//	every rank:  SaveShards(dir, rank, shards, opt)  -> optim-RRRRR.zst
//	barrier; rank 0: Finalize(dir, state)            -> trainer_state.json, then DONE
//
// Every file is written under a temporary name, synced and renamed, and DONE
// comes last, so a checkpoint with DONE is complete and one without is an
// interrupted save that nothing reads. On resume, Latest picks the newest
// complete checkpoint whose files still hash to what trainer_state.json
// records, LoadWeights restores the buffers and LoadShards each rank's
// optimizer state, re-cut for the current world size when it changed.

// Names of the files of a checkpoint directory.
const (
	WeightsFileName = "weights.zst"
	StateFileName   = "trainer_state.json"
	DoneFileName    = "DONE"
	// sidecarSuffix names the sha256sum-format line a writer leaves beside
	// each data file, so that Finalize need not read the files back.
	sidecarSuffix = ".sha256"
)

// StateVersion is the trainer_state.json version Finalize writes.
const StateVersion = 1

// OptimFileName is the name of rank's optimizer-state file: optim-00003.zst.
func OptimFileName(rank int) string { return fmt.Sprintf("optim-%05d.zst", rank) }

var optimName = regexp.MustCompile(`^optim-([0-9]{5,})\.zst$`)

// StepDir is the directory of the checkpoint after step optimizer steps:
// RUN/checkpoints/step-00000012. Eight digits sort by name up to step 10^8;
// listings parse the number, so later steps only widen the name.
func StepDir(runDir string, step int) string {
	return filepath.Join(runDir, "checkpoints", fmt.Sprintf("step-%08d", step))
}

// TensorRef is a named view inside a Buffer: Shape's values from Offset on,
// C-ordered, under its Hugging Face name.
type TensorRef struct {
	Name   string `json:"name"`
	Offset int    `json:"offset"`
	Shape  []int  `json:"shape"`
}

// Buffer is one flat float32 buffer of the trainer (DESIGN.md rule 1), e.g.
// "weights" (every weight, trained and frozen) or "lora", with its tensor
// table.
type Buffer struct {
	Name    string
	Values  []float32
	Tensors []TensorRef
}

// Shard is one rank's ZeRO-1 optimizer state of one buffer: the AdamW
// moments M and V of the buffer's values [Offset, Offset+Len), and the fp32
// master weights of that range. Master may be nil when the weights buffer
// itself is the fp32 master (the CPU trainer); then no copy is stored.
// The ranks' shards of a buffer must be collective.Range of the trained
// length (the sum of all ranks' Len), which Finalize checks.
type Shard struct {
	Buffer      string
	Offset, Len int
	Master      []float32
	M, V        []float32
}

// State is trainer_state.json: where the run stands after Step optimizer
// steps, what a resumed run needs to continue exactly (DESIGN.md rule 5),
// and what the package records to verify the checkpoint.
type State struct {
	Step       int    `json:"step"`        // optimizer steps done
	Epoch      int    `json:"epoch"`       // current epoch
	Cursor     int    `json:"cursor"`      // samples consumed in the epoch
	Seed       uint64 `json:"seed"`        // the run's seed
	WorldSize  int    `json:"world_size"`  // ranks that wrote the optimizer files
	ConfigHash string `json:"config_hash"` // of the training configuration, to refuse resuming another job
	// Extra holds trainer-defined state: RNG states, LR schedule, metrics
	// so far. Each value must be valid JSON; it is stored re-indented
	// with the file, keys sorted.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`

	// Filled by Finalize; values passed in are replaced.

	// Version is StateVersion.
	Version int `json:"version"`
	// Sharded lists the buffers with optimizer state, in the order of rank
	// 0's SaveShards, with the length the ranks' shards cover together.
	Sharded []ShardedBuffer `json:"sharded"`
	// Files maps every data file of the checkpoint to its size and sha256.
	Files map[string]FileInfo `json:"files"`
}

// ShardedBuffer describes one buffer's optimizer state across all ranks.
type ShardedBuffer struct {
	Buffer string `json:"buffer"`
	Len    int    `json:"len"`    // elements covered: the sum of the ranks' shard lengths
	Master bool   `json:"master"` // whether master weights are stored
}

// FileInfo is a data file's size and sha256 (lower-case hex).
type FileInfo struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// SaveOptions tune SaveWeights and SaveShards; the zero value is the
// recommended setting. The same data and options always give the same
// bytes, whatever Concurrency.
type SaveOptions struct {
	// Level is the zstd level, 1 to 22 (0: DefaultLevel, the fastest).
	// klauspost/compress implements four speeds: levels 1-2 are its
	// "fastest", 3-5 "default", 6-9 "better" and 10-22 "best".
	Level int
	// NoShuffle turns off the byte-plane shuffle before compression. The
	// shuffle is on by default (a zero SaveOptions), because it is what
	// makes float data compress; turning it off is for measurements.
	NoShuffle bool
	// Concurrency is the number of compressing goroutines (0: GOMAXPROCS).
	Concurrency int
	// BlockBytes is the raw size of an independently compressed block, a
	// multiple of 4 (0: DefaultBlockBytes).
	BlockBytes int
}

// ErrNoCheckpoint is returned (wrapped) by Latest when the run has no
// complete, intact checkpoint: a fresh start.
var ErrNoCheckpoint = errors.New("no complete checkpoint")

// SaveWeights writes the buffers, with their tensor tables, into stepDir's
// weights.zst (creating stepDir). Rank 0 calls it; every buffer goes into
// the one file.
func SaveWeights(stepDir string, bufs []Buffer, opt SaveOptions) error {
	if err := saveWeights(stepDir, bufs, opt); err != nil {
		return fmt.Errorf("checkpoint %s: saving %s: %w", stepDir, WeightsFileName, err)
	}
	return nil
}

func saveWeights(stepDir string, bufs []Buffer, opt SaveOptions) error {
	o, err := opt.resolve()
	if err != nil {
		return err
	}
	idx := &fileIndex{Kind: kindWeights, Codec: "zstd", Level: o.level, Shuffle: shuffleName(o.shuffle), BlockBytes: o.blockBytes}
	var arrays [][]float32
	names := map[string]bool{}
	for _, b := range bufs {
		if b.Name == "" || names[b.Name] {
			return fmt.Errorf("buffer name %q is empty or repeated: give every buffer its own name", b.Name)
		}
		names[b.Name] = true
		if err := checkTensorRefs(b.Tensors, len(b.Values)); err != nil {
			return fmt.Errorf("buffer %q: %w", b.Name, err)
		}
		idx.Buffers = append(idx.Buffers, indexBuffer{Name: b.Name, Len: len(b.Values), Tensors: b.Tensors, Arrays: []indexArray{{Field: fieldValues}}})
		arrays = append(arrays, b.Values)
	}
	if err := prepareDir(stepDir); err != nil {
		return err
	}
	_, _, err = writeContainer(filepath.Join(stepDir, WeightsFileName), idx, arrays, o)
	return explainWrite(err)
}

// SaveShards writes rank's optimizer shards into stepDir's optim file
// (creating stepDir). Every rank calls it, for every buffer it keeps
// optimizer state of, in the same buffer order on every rank.
func SaveShards(stepDir string, rank int, shards []Shard, opt SaveOptions) error {
	if err := saveShards(stepDir, rank, shards, opt); err != nil {
		return fmt.Errorf("checkpoint %s: saving rank %d's %s: %w", stepDir, rank, OptimFileName(max(rank, 0)), err)
	}
	return nil
}

func saveShards(stepDir string, rank int, shards []Shard, opt SaveOptions) error {
	o, err := opt.resolve()
	if err != nil {
		return err
	}
	if rank < 0 {
		return fmt.Errorf("rank %d is negative", rank)
	}
	idx := &fileIndex{Kind: kindOptim, Rank: rank, Codec: "zstd", Level: o.level, Shuffle: shuffleName(o.shuffle), BlockBytes: o.blockBytes}
	var arrays [][]float32
	names := map[string]bool{}
	for _, s := range shards {
		if s.Buffer == "" || names[s.Buffer] {
			return fmt.Errorf("shard buffer name %q is empty or repeated", s.Buffer)
		}
		names[s.Buffer] = true
		if s.Offset < 0 || s.Len < 0 {
			return fmt.Errorf("buffer %q: shard offset %d, length %d", s.Buffer, s.Offset, s.Len)
		}
		for _, f := range []struct {
			name string
			v    []float32
		}{{"master", s.Master}, {"M", s.M}, {"V", s.V}} {
			if len(f.v) != s.Len && !(f.name == "master" && f.v == nil) {
				return fmt.Errorf("buffer %q: %s has %d values, the shard's length is %d", s.Buffer, f.name, len(f.v), s.Len)
			}
		}
		ib := indexBuffer{Name: s.Buffer, Len: s.Len, Offset: s.Offset}
		if s.Master != nil {
			ib.Arrays = append(ib.Arrays, indexArray{Field: fieldMaster})
			arrays = append(arrays, s.Master)
		}
		ib.Arrays = append(ib.Arrays, indexArray{Field: fieldM}, indexArray{Field: fieldV})
		arrays = append(arrays, s.M, s.V)
		idx.Buffers = append(idx.Buffers, ib)
	}
	if err := prepareDir(stepDir); err != nil {
		return err
	}
	_, _, err = writeContainer(filepath.Join(stepDir, OptimFileName(rank)), idx, arrays, o)
	return explainWrite(err)
}

func shuffleName(on bool) string {
	if on {
		return shuffleByte4
	}
	return shuffleNone
}

// prepareDir creates stepDir and refuses one that is already complete: a
// complete checkpoint is never overwritten in place, because a crash
// half-way would leave a DONE beside files of two different saves.
func prepareDir(stepDir string) error {
	if _, err := os.Stat(filepath.Join(stepDir, DoneFileName)); err == nil {
		return fmt.Errorf("the directory holds a complete checkpoint (it has %s): save under another step, or delete it first", DoneFileName)
	}
	return os.MkdirAll(stepDir, 0o755)
}

// explainWrite adds what to do to the write errors a user can act on.
func explainWrite(err error) error {
	if err != nil && strings.Contains(err.Error(), "no space left") {
		return fmt.Errorf("%w: free disk space or keep fewer checkpoints (Prune); the previous checkpoint is intact", err)
	}
	return err
}

// Finalize completes the checkpoint in stepDir once every rank's save has
// returned (after a barrier): it checks that the weights file and one
// optimizer file per rank of st.WorldSize are present and agree with each
// other, removes what interrupted earlier saves into the same directory
// left behind (temporary files, files of ranks beyond the world size),
// records every file's size and sha256 and the sharded buffers in
// trainer_state.json, and then writes DONE, last. Rank 0 calls it. The
// sha256 sums come from the sidecars the writers left, so Finalize reads
// only the files' indexes, not their data.
func Finalize(stepDir string, st State) error {
	if err := finalize(stepDir, st); err != nil {
		return fmt.Errorf("checkpoint %s: finalizing: %w", stepDir, err)
	}
	return nil
}

func finalize(stepDir string, st State) error {
	if st.WorldSize < 1 {
		return fmt.Errorf("world size %d: set State.WorldSize to the number of ranks", st.WorldSize)
	}
	if st.Step < 0 {
		return fmt.Errorf("step %d is negative", st.Step)
	}
	if _, err := os.Stat(filepath.Join(stepDir, DoneFileName)); err == nil {
		return fmt.Errorf("already complete (it has %s)", DoneFileName)
	}
	if err := removeLeftovers(stepDir, st.WorldSize); err != nil {
		return err
	}

	files := []string{WeightsFileName}
	for r := range st.WorldSize {
		files = append(files, OptimFileName(r))
	}
	idxs := make([]*fileIndex, len(files))
	for i, name := range files {
		c, err := openContainer(filepath.Join(stepDir, name))
		if errors.Is(err, os.ErrNotExist) {
			who := "rank 0 did not call SaveWeights"
			if i > 0 {
				who = fmt.Sprintf("rank %d did not call SaveShards", i-1)
			}
			return fmt.Errorf("%s is missing: %s (every rank saves before the barrier that precedes Finalize)", name, who)
		}
		if err != nil {
			return err
		}
		idxs[i] = &c.idx
		c.Close()
		want := kindWeights
		if i > 0 {
			want = kindOptim
		}
		if c.idx.Kind != want || (i > 0 && c.idx.Rank != i-1) {
			return fmt.Errorf("%s holds %s state of rank %d, not what its name says", name, c.idx.Kind, c.idx.Rank)
		}
	}
	sharded, err := checkSharding(idxs[0], idxs[1:])
	if err != nil {
		return err
	}

	infos := make([]FileInfo, len(files))
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, name := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			infos[i], errs[i] = fileInfo(filepath.Join(stepDir, name))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	st.Version = StateVersion
	st.Sharded = sharded
	st.Files = map[string]FileInfo{}
	for i, name := range files {
		st.Files[name] = infos[i]
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w (State.Extra must hold valid JSON)", StateFileName, err)
	}
	js = append(js, '\n')
	if err := writeAtomic(filepath.Join(stepDir, StateFileName), func(w io.Writer) error { _, err := w.Write(js); return err }); err != nil {
		return explainWrite(err)
	}
	// The step directory's own entry must be durable before DONE claims
	// the checkpoint is.
	if err := syncDir(filepath.Dir(stepDir)); err != nil {
		return err
	}
	if testHookBeforeDone != nil {
		testHookBeforeDone()
	}
	done := fmt.Sprintf("%s  %s\n", sha256Hex(js), StateFileName)
	return explainWrite(writeAtomic(filepath.Join(stepDir, DoneFileName), func(w io.Writer) error { _, err := w.Write([]byte(done)); return err }))
}

// removeLeftovers deletes, in a directory about to be finalized, the
// temporary files of interrupted writes and the optimizer files (and
// sidecars) of ranks at or beyond worldSize: an earlier, interrupted save
// of the same step by a larger job.
func removeLeftovers(stepDir string, worldSize int) error {
	entries, err := os.ReadDir(stepDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		stale := strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-")
		if m := optimName.FindStringSubmatch(strings.TrimSuffix(n, sidecarSuffix)); m != nil {
			r, err := strconv.Atoi(m[1])
			stale = err != nil || r >= worldSize
		}
		if stale {
			if err := os.Remove(filepath.Join(stepDir, n)); err != nil {
				return fmt.Errorf("removing the leftover %s: %w", n, err)
			}
		}
	}
	return nil
}

// checkSharding checks that the ranks' optimizer files hold the same
// buffers, each cut by collective.Range of its total length, and that
// every sharded buffer is a buffer of the weights file no longer than it.
func checkSharding(weights *fileIndex, ranks []*fileIndex) ([]ShardedBuffer, error) {
	wlen := map[string]int{}
	for _, b := range weights.Buffers {
		wlen[b.Name] = b.Len
	}
	out := []ShardedBuffer{}
	size := len(ranks)
	for i, b := range ranks[0].Buffers {
		sb := ShardedBuffer{Buffer: b.Name}
		for r, x := range ranks {
			if len(x.Buffers) != len(ranks[0].Buffers) || x.Buffers[i].Name != b.Name {
				return nil, fmt.Errorf("%s and %s hold different buffers (%s vs %s): every rank saves the same buffers in the same order",
					OptimFileName(0), OptimFileName(r), bufferNames(ranks[0]), bufferNames(x))
			}
			sb.Len += x.Buffers[i].Len
		}
		for r, x := range ranks {
			xb := x.Buffers[i]
			off, n := shardRange(sb.Len, r, size)
			if xb.Offset != off || xb.Len != n {
				return nil, fmt.Errorf("%s: buffer %q shard [%d, %d) is not rank %d's range [%d, %d) of %d values over %d ranks (collective.Range)",
					OptimFileName(r), b.Name, xb.Offset, xb.Offset+xb.Len, r, off, off+n, sb.Len, size)
			}
			master := len(xb.Arrays) == 3
			if n > 0 && master {
				sb.Master = true
			}
		}
		for r, x := range ranks {
			if x.Buffers[i].Len > 0 && (len(x.Buffers[i].Arrays) == 3) != sb.Master {
				return nil, fmt.Errorf("%s: buffer %q: some ranks store master weights and some do not", OptimFileName(r), b.Name)
			}
		}
		n, ok := wlen[b.Name]
		if !ok {
			return nil, fmt.Errorf("the optimizer files shard buffer %q, which %s does not hold", b.Name, WeightsFileName)
		}
		if sb.Len > n {
			return nil, fmt.Errorf("the shards of buffer %q cover %d values; the buffer has %d", b.Name, sb.Len, n)
		}
		out = append(out, sb)
	}
	return out, nil
}

func bufferNames(x *fileIndex) string {
	var names []string
	for _, b := range x.Buffers {
		names = append(names, strconv.Quote(b.Name))
	}
	return "[" + strings.Join(names, " ") + "]"
}

// shardRange is collective.Range, which this package does not import:
// rank's contiguous part of n elements over size ranks, the first n % size
// ranks holding one more.
func shardRange(n, rank, size int) (off, count int) {
	q, r := n/size, n%size
	if rank < r {
		return rank * (q + 1), q + 1
	}
	return r*(q+1) + (rank-r)*q, q
}

// fileInfo is a data file's size and sha256: the sha256 from the sidecar
// its writer left when the sidecar is well-formed, otherwise (a writer
// killed between the rename and the sidecar) by reading the file.
func fileInfo(path string) (FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return FileInfo{}, err
	}
	if b, err := os.ReadFile(path + sidecarSuffix); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 && f[1] == filepath.Base(path) && len(f[0]) == 64 {
			if _, err := hex.DecodeString(f[0]); err == nil {
				return FileInfo{st.Size(), f[0]}, nil
			}
		}
	}
	n, sum, err := hashFile(path)
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{n, hex.EncodeToString(sum[:])}, nil
}

// LoadWeights reads the buffers of stepDir's weights file, in the order
// they were saved, with their tensor tables. Every block's checksum is
// checked; errors name the file and the block.
func LoadWeights(stepDir string) ([]Buffer, error) {
	bufs, err := loadWeights(stepDir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: loading the weights: %w%s", stepDir, err, corruptHint(err))
	}
	return bufs, nil
}

func loadWeights(stepDir string) ([]Buffer, error) {
	c, err := openContainer(filepath.Join(stepDir, WeightsFileName))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if c.idx.Kind != kindWeights {
		return nil, fmt.Errorf("%s holds %s state, not weights", c.name, c.idx.Kind)
	}
	var tasks []readTask
	bufs := make([]Buffer, len(c.idx.Buffers))
	for i, b := range c.idx.Buffers {
		bufs[i] = Buffer{Name: b.Name, Values: make([]float32, b.Len), Tensors: b.Tensors}
		tasks = c.addRange(tasks, i, 0, 0, b.Len, bufs[i].Values)
	}
	if err := runReads(tasks, runtime.GOMAXPROCS(0)); err != nil {
		return nil, err
	}
	return bufs, nil
}

// LoadShards returns rank's optimizer shards for a job of worldSize ranks,
// in the order of State.Sharded, each cut as collective.Range of the
// buffer's sharded length. When the checkpoint was written by the same
// world size this is the rank's own file; otherwise the shards are
// re-cut: the parts of the old ranks' files that overlap the new range are
// read (only their overlapping blocks are decompressed) and joined. The
// checkpoint must be finalized (its trainer_state.json is read).
func LoadShards(stepDir string, rank, worldSize int) ([]Shard, error) {
	shards, err := loadShards(stepDir, rank, worldSize)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: loading the optimizer state of rank %d of %d: %w%s", stepDir, rank, worldSize, err, corruptHint(err))
	}
	return shards, nil
}

func loadShards(stepDir string, rank, worldSize int) ([]Shard, error) {
	if worldSize < 1 || rank < 0 || rank >= worldSize {
		return nil, fmt.Errorf("rank %d is not in a world of %d ranks", rank, worldSize)
	}
	st, err := ReadState(stepDir)
	if err != nil {
		return nil, err
	}
	oldSize := st.WorldSize
	if oldSize < 1 {
		return nil, fmt.Errorf("%s: world size %d", StateFileName, oldSize)
	}
	open := map[int]*container{}
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	var tasks []readTask
	shards := make([]Shard, len(st.Sharded))
	for i, sb := range st.Sharded {
		off, n := shardRange(sb.Len, rank, worldSize)
		s := Shard{Buffer: sb.Buffer, Offset: off, Len: n, M: make([]float32, n), V: make([]float32, n)}
		dst := map[string][]float32{fieldM: s.M, fieldV: s.V}
		if sb.Master {
			s.Master = make([]float32, n)
			dst[fieldMaster] = s.Master
		}
		for r := range oldSize {
			ooff, on := shardRange(sb.Len, r, oldSize)
			lo, hi := max(off, ooff), min(off+n, ooff+on)
			if lo >= hi {
				continue
			}
			c := open[r]
			if c == nil {
				c, err = openContainer(filepath.Join(stepDir, OptimFileName(r)))
				if err != nil {
					return nil, err
				}
				open[r] = c
				if c.idx.Kind != kindOptim || c.idx.Rank != r {
					return nil, fmt.Errorf("%s holds %s state of rank %d, not rank %d's optimizer state", c.name, c.idx.Kind, c.idx.Rank, r)
				}
			}
			bi, ok := c.buffer(sb.Buffer)
			if !ok {
				return nil, fmt.Errorf("%s has no shard of buffer %q, which %s lists", c.name, sb.Buffer, StateFileName)
			}
			b := c.idx.Buffers[bi]
			if b.Offset != ooff || b.Len != on {
				return nil, fmt.Errorf("%s: buffer %q shard [%d, %d), %s expects [%d, %d)", c.name, sb.Buffer, b.Offset, b.Offset+b.Len, StateFileName, ooff, ooff+on)
			}
			if (len(b.Arrays) == 3) != sb.Master {
				return nil, fmt.Errorf("%s: buffer %q: master weights present: %v, %s says %v", c.name, sb.Buffer, len(b.Arrays) == 3, StateFileName, sb.Master)
			}
			for ai, a := range b.Arrays {
				tasks = c.addRange(tasks, bi, ai, lo-ooff, hi-ooff, dst[a.Field][lo-off:hi-off])
			}
		}
		shards[i] = s
	}
	if err := runReads(tasks, runtime.GOMAXPROCS(0)); err != nil {
		return nil, err
	}
	return shards, nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// corruptHint says what to do about a damaged file.
func corruptHint(err error) string {
	var ce *corruptError
	if errors.As(err, &ce) {
		return " (resume from an older checkpoint: Latest skips damaged ones)"
	}
	return ""
}

// ReadState reads stepDir's trainer_state.json as it is, without checking
// DONE or the files (Verify does).
func ReadState(stepDir string) (*State, error) {
	p := filepath.Join(stepDir, StateFileName)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is missing: the checkpoint was not finalized; use Latest to find a complete one", p)
	}
	if err != nil {
		return nil, err
	}
	return parseState(p, b)
}

func parseState(p string, b []byte) (*State, error) {
	var st State
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&st); err != nil {
		return nil, corruptf("%s: %v", p, err)
	}
	if st.Version != StateVersion {
		return nil, fmt.Errorf("%s: version %d; this earl reads version %d", p, st.Version, StateVersion)
	}
	return &st, nil
}

// sortedSteps lists the step directories under runDir/checkpoints, newest
// first.
func sortedSteps(runDir string) ([]stepEntry, error) {
	dir := filepath.Join(runDir, "checkpoints")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []stepEntry
	for _, e := range entries {
		m := stepName.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		out = append(out, stepEntry{n, filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(out, func(a, b stepEntry) int { return b.step - a.step })
	return out, nil
}

type stepEntry struct {
	step int
	dir  string
}

var stepName = regexp.MustCompile(`^step-([0-9]{8,})$`)
