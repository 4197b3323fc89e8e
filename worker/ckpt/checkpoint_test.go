package ckpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"earl/collective"
)

// ckSpecials are float32 bit patterns a checkpoint must keep exactly:
// signed zeros, infinities, quiet and signalling NaNs with payloads,
// subnormals and the extremes of the normal range.
var ckSpecials = []uint32{
	0x00000000, 0x80000000, // ±0
	0x7f800000, 0xff800000, // ±Inf
	0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fbfffff, 0x7fc12345, // NaNs
	0x00000001, 0x80000001, 0x007fffff, 0x807fffff, 0x00400000, // subnormals
	0x00800000, 0x7f7fffff, 0xff7fffff, 0x3f800000, 0xbf800000, // min normal, max, ±1
}

// ckValues is n weight-like values (N(0, scale)) with the specials spread
// over them.
func ckValues(n int, seed uint64, scale float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	for i, b := range ckSpecials {
		if n > 0 {
			v[(i*7919)%n] = math.Float32frombits(b)
		}
	}
	return v
}

// ckBuffers is a weights buffer of an odd size with a tensor table, a small
// LoRA buffer and an empty one.
func ckBuffers(seed uint64) []Buffer {
	return []Buffer{
		{Name: "weights", Values: ckValues(10007, seed, 0.02), Tensors: []TensorRef{
			{Name: "model.embed_tokens.weight", Offset: 0, Shape: []int{97, 100}},
			{Name: "model.norm.weight", Offset: 9700, Shape: []int{300}},
			{Name: "scalar", Offset: 10000, Shape: []int{}},
			{Name: "model.layers.0.mlp.down_proj.bias", Offset: 10001, Shape: []int{6}},
		}},
		{Name: "lora", Values: ckValues(333, seed+1, 0.001), Tensors: []TensorRef{
			{Name: "a", Offset: 0, Shape: []int{3, 111}},
		}},
		{Name: "empty", Values: []float32{}},
	}
}

func ckSameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d]: bits %#08x, want %#08x", what, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
		}
	}
}

func ckSameBuffers(t *testing.T, got, want []Buffer) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d buffers, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name {
			t.Fatalf("buffer %d is %q, want %q", i, got[i].Name, want[i].Name)
		}
		ckSameBits(t, want[i].Name, got[i].Values, want[i].Values)
		if len(got[i].Tensors) != len(want[i].Tensors) {
			t.Fatalf("%s: %d tensors, want %d", want[i].Name, len(got[i].Tensors), len(want[i].Tensors))
		}
		for j, w := range want[i].Tensors {
			g := got[i].Tensors[j]
			if g.Name != w.Name || g.Offset != w.Offset || !slices.Equal(g.Shape, w.Shape) {
				t.Fatalf("%s tensor %d: %+v, want %+v", want[i].Name, j, g, w)
			}
		}
	}
}

// Every level, with and without the shuffle, with blocks smaller than a
// buffer (many blocks, a short last one) and larger: the values come back
// bit for bit, NaN payloads, -0 and subnormals included.
func TestWeightsRoundTrip(t *testing.T) {
	bufs := ckBuffers(1)
	for _, level := range []int{0, 1, 3, 7, 19} {
		for _, noShuffle := range []bool{false, true} {
			for _, block := range []int{4096, 1 << 20} {
				name := fmt.Sprintf("level%d/noshuffle=%v/block%d", level, noShuffle, block)
				t.Run(name, func(t *testing.T) {
					dir := t.TempDir()
					opt := SaveOptions{Level: level, NoShuffle: noShuffle, BlockBytes: block, Concurrency: 3}
					if err := SaveWeights(dir, bufs, opt); err != nil {
						t.Fatal(err)
					}
					got, err := LoadWeights(dir)
					if err != nil {
						t.Fatal(err)
					}
					ckSameBuffers(t, got, bufs)
				})
			}
		}
	}
}

// The shuffle pays on weight-like data, and more on the exponent-heavy
// second moment.
func TestShuffleCompresses(t *testing.T) {
	w := []Buffer{{Name: "w", Values: ckValues(1<<18, 3, 0.02)}}
	size := func(o SaveOptions) int64 {
		dir := t.TempDir()
		if err := SaveWeights(dir, w, o); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, WeightsFileName))
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	raw := int64(4 << 18)
	shuf, plain := size(SaveOptions{}), size(SaveOptions{NoShuffle: true})
	t.Logf("N(0, 0.02) weights: shuffled %.3f of raw, unshuffled %.3f", float64(shuf)/float64(raw), float64(plain)/float64(raw))
	if shuf >= plain || float64(shuf) > 0.9*float64(raw) {
		t.Errorf("shuffled %d bytes, unshuffled %d, raw %d: the shuffle should compress weights below 0.9", shuf, plain, raw)
	}
}

func TestShuffleInverse(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 1001} {
		src := ckValues(n, uint64(n), 1)
		planes := make([]byte, 4*n)
		shuffle4(planes, src)
		for i, v := range src { // the definition, byte by byte
			b := math.Float32bits(v)
			for k := range 4 {
				if planes[k*n+i] != byte(b>>(8*k)) {
					t.Fatalf("n=%d: plane %d byte %d is %#x, want %#x", n, k, i, planes[k*n+i], byte(b>>(8*k)))
				}
			}
		}
		for from := 0; from <= n; from += max(1, n/5) {
			for to := from; to <= n; to += max(1, n/3) {
				dst := make([]float32, to-from)
				unshuffle4(dst, planes, n, from)
				ckSameBits(t, fmt.Sprintf("n=%d [%d,%d)", n, from, to), dst, src[from:to])
			}
		}
		le := make([]byte, 4*n)
		putLE(le, src)
		back := make([]float32, n)
		getLE(back, le)
		ckSameBits(t, "LE", back, src)
	}
}

// ckShards cuts original optimizer state (master, m, v of each buffer)
// into size ranks' shards.
type ckOptim struct {
	name      string
	master    []float32 // nil: no master copy
	m, v      []float32
	bufferLen int
}

func ckOptimState() []ckOptim {
	r := rand.New(rand.NewPCG(5, 5))
	mk := func(n int, master bool, bufLen int, name string) ckOptim {
		o := ckOptim{name: name, m: make([]float32, n), v: make([]float32, n), bufferLen: bufLen}
		for i := range n {
			o.m[i] = float32(r.NormFloat64() * 1e-4)
			o.v[i] = float32(math.Abs(r.NormFloat64() * 1e-8))
		}
		if master {
			o.master = ckValues(n, 9, 0.02)
		}
		return o
	}
	return []ckOptim{
		mk(10000, true, 10007, "weights"), // 10000 % 3 == 1; a trained prefix of the buffer
		mk(2, false, 333, "lora"),         // fewer values than ranks
	}
}

func ckShardsOf(st []ckOptim, rank, size int) []Shard {
	var out []Shard
	for _, o := range st {
		off, n := collective.Range(len(o.m), rank, size)
		s := Shard{Buffer: o.name, Offset: off, Len: n, M: o.m[off : off+n], V: o.v[off : off+n]}
		if o.master != nil {
			s.Master = o.master[off : off+n]
		}
		out = append(out, s)
	}
	return out
}

// ckSave writes a complete checkpoint of step from size ranks.
func ckSave(t *testing.T, runDir string, step, size int, opt SaveOptions) string {
	t.Helper()
	dir := StepDir(runDir, step)
	if err := SaveWeights(dir, ckBuffers(uint64(step)), opt); err != nil {
		t.Fatal(err)
	}
	st := ckOptimState()
	for r := range size {
		if err := SaveShards(dir, r, ckShardsOf(st, r, size), opt); err != nil {
			t.Fatal(err)
		}
	}
	if err := Finalize(dir, State{Step: step, Epoch: 1, Cursor: 17, Seed: 1<<63 + 5, WorldSize: size, ConfigHash: "abc",
		Extra: map[string]json.RawMessage{"rng": json.RawMessage(`{"state": [1, 2]}`)}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Shards written by 3 ranks come back for 1, 2, 3, 4 and 5 ranks with
// every value in its place: each rank's shard is collective.Range of the
// buffer and equal to that range of the original.
func TestReshard(t *testing.T) {
	run := t.TempDir()
	dir := ckSave(t, run, 12, 3, SaveOptions{BlockBytes: 4096})
	orig := ckOptimState()
	for _, size := range []int{1, 2, 3, 4, 5} {
		for rank := range size {
			shards, err := LoadShards(dir, rank, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(shards) != len(orig) {
				t.Fatalf("%d shards, want %d", len(shards), len(orig))
			}
			for i, o := range orig {
				s := shards[i]
				off, n := collective.Range(len(o.m), rank, size)
				what := fmt.Sprintf("world %d rank %d %s", size, rank, o.name)
				if s.Buffer != o.name || s.Offset != off || s.Len != n {
					t.Fatalf("%s: shard %q [%d,+%d), want [%d,+%d)", what, s.Buffer, s.Offset, s.Len, off, n)
				}
				ckSameBits(t, what+" m", s.M, o.m[off:off+n])
				ckSameBits(t, what+" v", s.V, o.v[off:off+n])
				if o.master == nil {
					if s.Master != nil {
						t.Fatalf("%s: master loaded where none was saved", what)
					}
				} else {
					ckSameBits(t, what+" master", s.Master, o.master[off:off+n])
				}
			}
		}
	}
	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []ShardedBuffer{{"weights", 10000, true}, {"lora", 2, false}}
	if !slices.Equal(st.Sharded, want) {
		t.Errorf("state sharded %+v, want %+v", st.Sharded, want)
	}
	var extra bytes.Buffer
	json.Compact(&extra, st.Extra["rng"])
	if st.Seed != 1<<63+5 || st.Cursor != 17 || st.ConfigHash != "abc" || extra.String() != `{"state":[1,2]}` {
		t.Errorf("state round trip: %+v", st)
	}
	if _, err := LoadShards(dir, 3, 3); err == nil {
		t.Error("rank 3 of 3 accepted")
	}
}

func TestShardRangeIsCollectiveRange(t *testing.T) {
	for n := 0; n < 40; n++ {
		for size := 1; size < 9; size++ {
			for r := range size {
				a, b := shardRange(n, r, size)
				c, d := collective.Range(n, r, size)
				if a != c || b != d {
					t.Fatalf("shardRange(%d, %d, %d) = %d, %d; collective.Range %d, %d", n, r, size, a, b, c, d)
				}
			}
		}
	}
}

// The same data gives the same bytes, whatever the concurrency: a
// deterministic run's checkpoints compare byte for byte.
func TestDeterministicBytes(t *testing.T) {
	var dirs []string
	for _, c := range []int{1, 2, 5} {
		dirs = append(dirs, ckSave(t, t.TempDir(), 3, 3, SaveOptions{Concurrency: c, BlockBytes: 8192}))
	}
	names := []string{WeightsFileName, OptimFileName(0), OptimFileName(1), OptimFileName(2), StateFileName, DoneFileName}
	for _, name := range names {
		a, err := os.ReadFile(filepath.Join(dirs[0], name))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs[1:] {
			b, err := os.ReadFile(filepath.Join(d, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs between saves with different concurrency", name)
			}
		}
	}
}

// A write that fails mid-file (here: an injected error before block 3)
// leaves nothing under the final name and no temporary file.
func TestFailedWriteLeavesNothing(t *testing.T) {
	run := t.TempDir()
	ckSave(t, run, 1, 2, SaveOptions{})
	dir := StepDir(run, 2)
	testHookBlock = func(path string, block int) error {
		if block == 3 {
			return errors.New("injected write failure")
		}
		return nil
	}
	defer func() { testHookBlock = nil }()
	err := SaveWeights(dir, ckBuffers(2), SaveOptions{BlockBytes: 4096})
	if err == nil || !strings.Contains(err.Error(), "injected") || !strings.Contains(err.Error(), WeightsFileName) {
		t.Fatalf("error %v", err)
	}
	err = SaveShards(dir, 0, ckShardsOf(ckOptimState(), 0, 2), SaveOptions{BlockBytes: 4096})
	if err == nil {
		t.Fatal("SaveShards survived the injected failure")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
	got, _, err := Latest(run, nil)
	if err != nil || got != StepDir(run, 1) {
		t.Fatalf("Latest = %s, %v; want step 1", got, err)
	}
}

func TestFinalizeChecks(t *testing.T) {
	opt := SaveOptions{BlockBytes: 4096}
	st := ckOptimState()
	t.Run("missing rank", func(t *testing.T) {
		dir := StepDir(t.TempDir(), 1)
		if err := SaveWeights(dir, ckBuffers(1), opt); err != nil {
			t.Fatal(err)
		}
		if err := SaveShards(dir, 0, ckShardsOf(st, 0, 2), opt); err != nil {
			t.Fatal(err)
		}
		err := Finalize(dir, State{Step: 1, WorldSize: 2})
		if err == nil || !strings.Contains(err.Error(), "rank 1 did not call SaveShards") {
			t.Fatalf("error %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, DoneFileName)); err == nil {
			t.Fatal("DONE written")
		}
	})
	t.Run("not collective.Range", func(t *testing.T) {
		dir := StepDir(t.TempDir(), 1)
		if err := SaveWeights(dir, ckBuffers(1), opt); err != nil {
			t.Fatal(err)
		}
		m := make([]float32, 10)
		if err := SaveShards(dir, 0, []Shard{{Buffer: "weights", Offset: 0, Len: 4, M: m[:4], V: m[:4]}}, opt); err != nil {
			t.Fatal(err)
		}
		if err := SaveShards(dir, 1, []Shard{{Buffer: "weights", Offset: 4, Len: 6, M: m[:6], V: m[:6]}}, opt); err != nil {
			t.Fatal(err)
		}
		err := Finalize(dir, State{Step: 1, WorldSize: 2})
		if err == nil || !strings.Contains(err.Error(), "collective.Range") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("leftovers of a larger job", func(t *testing.T) {
		run := t.TempDir()
		dir := StepDir(run, 1)
		// An interrupted save by 4 ranks, then the job restarts with 2.
		for r := range 4 {
			if err := SaveShards(dir, r, ckShardsOf(st, r, 4), opt); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join(dir, ".weights.zst.tmp-123"), []byte("partial"), 0o644)
		ckSave(t, run, 1, 2, opt)
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		want := []string{DoneFileName, "optim-00000.zst", "optim-00000.zst.sha256", "optim-00001.zst", "optim-00001.zst.sha256",
			StateFileName, "weights.zst", "weights.zst.sha256"}
		if !slices.Equal(names, want) {
			t.Fatalf("files %v, want %v", names, want)
		}
		if _, err := Verify(dir); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("complete is never overwritten", func(t *testing.T) {
		run := t.TempDir()
		dir := ckSave(t, run, 1, 1, opt)
		if err := SaveWeights(dir, ckBuffers(1), opt); err == nil || !strings.Contains(err.Error(), "complete checkpoint") {
			t.Fatalf("error %v", err)
		}
		if err := Finalize(dir, State{Step: 1, WorldSize: 1}); err == nil {
			t.Fatal("finalized twice")
		}
	})
	t.Run("load before finalize", func(t *testing.T) {
		dir := StepDir(t.TempDir(), 1)
		if err := SaveShards(dir, 0, ckShardsOf(st, 0, 1), opt); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadShards(dir, 0, 1); err == nil || !strings.Contains(err.Error(), "not finalized") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("a missing sidecar is recomputed", func(t *testing.T) {
		run := t.TempDir()
		dir := StepDir(run, 1)
		if err := SaveWeights(dir, ckBuffers(1), opt); err != nil {
			t.Fatal(err)
		}
		if err := SaveShards(dir, 0, ckShardsOf(st, 0, 1), opt); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, WeightsFileName+sidecarSuffix))
		if err := Finalize(dir, State{Step: 1, WorldSize: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(dir); err != nil {
			t.Fatal(err)
		}
	})
}

// ckCorrupt damages a file of a checkpoint.
func ckCorrupt(t *testing.T, dir, name, how string) {
	t.Helper()
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	switch how {
	case "truncate":
		err = os.WriteFile(p, b[:len(b)/2], 0o644)
	case "flip":
		b[len(b)/3] ^= 0x10
		err = os.WriteFile(p, b, 0o644)
	case "remove":
		err = os.Remove(p)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestLatest(t *testing.T) {
	opt := SaveOptions{BlockBytes: 4096}
	t.Run("newest complete wins", func(t *testing.T) {
		run := t.TempDir()
		for _, s := range []int{1, 5, 30} {
			ckSave(t, run, s, 2, opt)
		}
		dir, st, err := Latest(run, func(s string) { t.Errorf("warned: %s", s) })
		if err != nil || dir != StepDir(run, 30) || st.Step != 30 || st.WorldSize != 2 {
			t.Fatalf("Latest = %s, %+v, %v", dir, st, err)
		}
	})
	t.Run("incomplete newest is skipped", func(t *testing.T) {
		run := t.TempDir()
		ckSave(t, run, 1, 2, opt)
		dir := ckSave(t, run, 2, 2, opt)
		os.Remove(filepath.Join(dir, DoneFileName))
		var warned []string
		got, _, err := Latest(run, func(s string) { warned = append(warned, s) })
		if err != nil || got != StepDir(run, 1) {
			t.Fatalf("Latest = %s, %v", got, err)
		}
		if len(warned) != 1 || !strings.Contains(warned[0], "incomplete") {
			t.Errorf("warnings %q", warned)
		}
	})
	for _, c := range []struct{ file, how, says string }{
		{OptimFileName(1), "truncate", "truncated"},
		{WeightsFileName, "flip", "corrupted"},
		{OptimFileName(0), "remove", "missing"},
		{StateFileName, "flip", "corrupted"},
		{StateFileName, "remove", "missing"},
	} {
		t.Run(c.how+" "+c.file, func(t *testing.T) {
			run := t.TempDir()
			ckSave(t, run, 7, 2, opt)
			dir := ckSave(t, run, 8, 2, opt)
			ckCorrupt(t, dir, c.file, c.how)
			var warned []string
			got, st, err := Latest(run, func(s string) { warned = append(warned, s) })
			if err != nil || got != StepDir(run, 7) || st.Step != 7 {
				t.Fatalf("Latest = %s, %v", got, err)
			}
			if len(warned) != 1 || !strings.Contains(warned[0], c.file) || !strings.Contains(warned[0], c.says) || !strings.Contains(warned[0], "step-00000008") {
				t.Fatalf("warnings %q: want one naming %s and %q", warned, c.file, c.says)
			}
			t.Logf("warned: %s", warned[0])
			// The damaged file also fails to load, with the same diagnosis.
			if c.file == WeightsFileName {
				_, err := LoadWeights(dir)
				if err == nil || !strings.Contains(err.Error(), "corrupted") {
					t.Fatalf("LoadWeights: %v", err)
				}
				t.Logf("LoadWeights: %v", err)
			}
			if c.file == OptimFileName(1) {
				_, err := LoadShards(dir, 1, 2)
				if err == nil {
					t.Fatal("LoadShards read a truncated file")
				}
				t.Logf("LoadShards: %v", err)
			}
		})
	}
	t.Run("none complete", func(t *testing.T) {
		run := t.TempDir()
		dir := ckSave(t, run, 3, 1, opt)
		ckCorrupt(t, dir, WeightsFileName, "truncate")
		_, _, err := Latest(run, nil)
		if err == nil || errors.Is(err, ErrNoCheckpoint) || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("only a damaged checkpoint: error %v; want one that is not ErrNoCheckpoint", err)
		}
		t.Log(err)
		_, _, err = Latest(t.TempDir(), nil)
		if !errors.Is(err, ErrNoCheckpoint) {
			t.Fatalf("empty run: %v", err)
		}
		t.Log(err)
		run = t.TempDir()
		dir = ckSave(t, run, 3, 1, opt)
		os.Remove(filepath.Join(dir, DoneFileName))
		_, _, err = Latest(run, nil)
		if !errors.Is(err, ErrNoCheckpoint) || !strings.Contains(err.Error(), "1 incomplete") {
			t.Fatalf("only an interrupted first save: %v", err)
		}
		t.Log(err)
	})
}

// Every single-byte change of a weights file is caught: by the header,
// trailer and index checks, or by a block's checksum.
func TestEveryByteFlipDetected(t *testing.T) {
	dir := t.TempDir()
	bufs := []Buffer{{Name: "w", Values: ckValues(300, 1, 0.02), Tensors: []TensorRef{{Name: "t", Shape: []int{300}}}}}
	if err := SaveWeights(dir, bufs, SaveOptions{BlockBytes: 256}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, WeightsFileName)
	orig, _ := os.ReadFile(p)
	for i := range orig {
		b := slices.Clone(orig)
		b[i] ^= 0x01
		os.WriteFile(p, b, 0o644)
		if got, err := LoadWeights(dir); err == nil {
			t.Fatalf("byte %d of %d flipped: loaded without error (%d buffers)", i, len(orig), len(got))
		}
	}
	for n := range orig { // every truncation
		os.WriteFile(p, orig[:n], 0o644)
		if _, err := LoadWeights(dir); err == nil {
			t.Fatalf("truncated to %d of %d bytes: loaded without error", n, len(orig))
		}
	}
}

func TestPrune(t *testing.T) {
	run := t.TempDir()
	opt := SaveOptions{BlockBytes: 4096}
	ckSave(t, run, 0, 1, opt)
	os.Remove(filepath.Join(StepDir(run, 0), DoneFileName)) // an old interrupted save
	for s := 1; s <= 6; s++ {
		ckSave(t, run, s, 1, opt)
	}
	ckCorrupt(t, StepDir(run, 2), OptimFileName(0), "truncate") // damaged and old
	os.MkdirAll(StepDir(run, 7), 0o755)                         // a save in progress, newer
	os.WriteFile(filepath.Join(StepDir(run, 7), WeightsFileName), []byte("x"), 0o644)
	if err := Prune(run, 0); err == nil {
		t.Fatal("Prune kept nothing")
	}
	if err := Prune(run, 3); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(run, "checkpoints"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"step-00000004", "step-00000005", "step-00000006", "step-00000007"}
	if !slices.Equal(names, want) {
		t.Fatalf("after Prune(3): %v, want %v", names, want)
	}
	if err := Prune(run, 1); err != nil {
		t.Fatal(err)
	}
	entries, _ = os.ReadDir(filepath.Join(run, "checkpoints"))
	if len(entries) != 2 || entries[0].Name() != "step-00000006" {
		t.Fatalf("after Prune(1): %v", entries)
	}
	if err := Prune(t.TempDir(), 1); err != nil {
		t.Fatalf("empty run: %v", err)
	}
}

func TestSaveRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		bufs []Buffer
		says string
	}{
		{[]Buffer{{Name: "a"}, {Name: "a"}}, "repeated"},
		{[]Buffer{{Name: ""}}, "empty"},
		{[]Buffer{{Name: "a", Values: make([]float32, 4), Tensors: []TensorRef{{Name: "t", Offset: 2, Shape: []int{3}}}}}, "runs past"},
		{[]Buffer{{Name: "a", Values: make([]float32, 4), Tensors: []TensorRef{{Name: "t", Shape: []int{2}}, {Name: "t", Shape: []int{2}}}}}, "twice"},
		{[]Buffer{{Name: "a", Values: make([]float32, 4), Tensors: []TensorRef{{Name: "t", Shape: []int{-1}}}}}, "shape"},
	} {
		err := SaveWeights(dir, c.bufs, SaveOptions{})
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%+v: error %v, want %q", c.bufs, err, c.says)
		}
	}
	for _, o := range []SaveOptions{{Level: 23}, {Level: -1}, {BlockBytes: 6}, {Concurrency: -1}} {
		if err := SaveWeights(dir, nil, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	if err := SaveShards(dir, 0, []Shard{{Buffer: "w", Len: 3, M: make([]float32, 3), V: make([]float32, 2)}}, SaveOptions{}); err == nil {
		t.Error("a short V accepted")
	}
}

// FuzzOpenContainer: no input makes the reader panic or allocate past
// what the file can hold.
func FuzzOpenContainer(f *testing.F) {
	dir := f.TempDir()
	if err := SaveWeights(dir, []Buffer{{Name: "w", Values: ckValues(100, 1, 1), Tensors: []TensorRef{{Name: "t", Shape: []int{10, 10}}}}}, SaveOptions{BlockBytes: 64}); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, WeightsFileName))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, WeightsFileName), b, 0o644)
		LoadWeights(d)
	})
}
