package ckpt

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Tensor is one tensor to write: its data either as raw little-endian bytes
// of DType (Data), or as float32 values (Values) that are converted to DType
// — F32, F16, BF16 or F64 — while writing, so a model held in float32 is
// written in bf16 without a second copy. Exactly one of Data and Values is
// set (neither, for a tensor with no elements).
type Tensor struct {
	Name   string
	DType  DType
	Shape  []int // empty for a scalar
	Data   []byte
	Values []float32
}

// DefaultMaxShardBytes is transformers' default max_shard_size, "5GB".
const DefaultMaxShardBytes = 5_000_000_000

// Names of the files of a Hugging Face weights directory.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// ShardFileName is the name of shard i (from 1) of n, as transformers names
// them: model-00001-of-00003.safetensors.
func ShardFileName(i, n int) string {
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", i, n)
}

// size checks t and returns its size in bytes.
func (t *Tensor) size() (int64, error) {
	if t.Name == "" {
		return 0, errors.New("a tensor has an empty name")
	}
	if !utf8.ValidString(t.Name) {
		return 0, fmt.Errorf("tensor %q: name is not valid UTF-8", t.Name)
	}
	if t.Name == "__metadata__" {
		return 0, errors.New(`"__metadata__" cannot name a tensor`)
	}
	if err := checkDType(t.DType); err != nil {
		return 0, fmt.Errorf("tensor %q: %v", t.Name, err)
	}
	for _, d := range t.Shape {
		if d < 0 {
			return 0, fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
		}
	}
	size, ok := byteSize(t.DType, t.Shape)
	if !ok {
		return 0, fmt.Errorf("tensor %q: shape %v of %s overflows a 64-bit byte count", t.Name, t.Shape, t.DType)
	}
	switch {
	case t.Data != nil && t.Values != nil:
		return 0, fmt.Errorf("tensor %q: both Data and Values are set", t.Name)
	case t.Values != nil:
		switch t.DType {
		case F32, F16, BF16, F64:
		default:
			return 0, fmt.Errorf("tensor %q: float32 values cannot be written as %s (only F32, F16, BF16, F64)", t.Name, t.DType)
		}
		if n := uint64(len(t.Values)) * uint64(t.DType.Size()); n != size {
			return 0, fmt.Errorf("tensor %q: shape %v needs %d values, have %d", t.Name, t.Shape, size/uint64(t.DType.Size()), len(t.Values))
		}
	default:
		if uint64(len(t.Data)) != size {
			return 0, fmt.Errorf("tensor %q: shape %v of %s is %d bytes, data has %d", t.Name, t.Shape, t.DType, size, len(t.Data))
		}
	}
	return int64(size), nil
}

// checkTensors checks every tensor and that the names are unique, and
// returns their sizes.
func checkTensors(tensors []Tensor) ([]int64, error) {
	sizes := make([]int64, len(tensors))
	seen := make(map[string]bool, len(tensors))
	for i := range tensors {
		s, err := tensors[i].size()
		if err != nil {
			return nil, err
		}
		if seen[tensors[i].Name] {
			return nil, fmt.Errorf("tensor %q appears twice", tensors[i].Name)
		}
		seen[tensors[i].Name] = true
		sizes[i] = s
	}
	return sizes, nil
}

// WriteFile writes the tensors and metadata (nil: no "__metadata__") as one
// safetensors file at path, laid out as the reference implementation lays
// them out: by descending element alignment, then by name, the header
// padded with spaces so that the data starts 8-byte aligned. The file is
// written under a temporary name, synced and renamed, so path holds either
// its old content or the complete new file. transformers refuses files
// whose metadata lacks "format": "pt"; WriteDir adds it.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	if err := writeFile(path, tensors, metadata); err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return nil
}

func writeFile(path string, tensors []Tensor, metadata map[string]string) error {
	enc, err := newEncoder(tensors, metadata)
	if err != nil {
		return err
	}
	return writeAtomic(path, enc.writeTo)
}

// encoder holds a checked set of tensors and its header, ready to write.
type encoder struct {
	tensors []Tensor
	order   []int // indices into tensors, in data order
	header  []byte
}

func newEncoder(tensors []Tensor, metadata map[string]string) (*encoder, error) {
	sizes, err := checkTensors(tensors)
	if err != nil {
		return nil, err
	}
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		ra, rb := dtypeInfo[tensors[a].DType].rank, dtypeInfo[tensors[b].DType].rank
		if ra != rb {
			return rb - ra
		}
		return strings.Compare(tensors[a].Name, tensors[b].Name)
	})
	hdr, err := encodeHeader(tensors, sizes, order, metadata)
	if err != nil {
		return nil, err
	}
	return &encoder{tensors, order, hdr}, nil
}

// writeTo writes the whole file to w.
func (e *encoder) writeTo(w io.Writer) error {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(e.header)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(e.header); err != nil {
		return err
	}
	var buf []byte
	for _, i := range e.order {
		t := &e.tensors[i]
		if t.Values == nil {
			if _, err := w.Write(t.Data); err != nil {
				return err
			}
			continue
		}
		const chunk = 1 << 16 // values converted at a time
		if buf == nil {
			buf = make([]byte, chunk*8)
		}
		for v := t.Values; len(v) > 0; {
			c := v[:min(len(v), chunk)]
			b := buf[:len(c)*t.DType.Size()]
			if err := EncodeFloat32(b, c, t.DType); err != nil {
				return err
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
			v = v[len(c):]
		}
	}
	return nil
}

// encodeHeader writes the JSON header as the reference's serde_json does
// (compact; "__metadata__" first, its keys sorted; tensors in data order;
// fields dtype, shape, data_offsets), padded with spaces to a multiple of 8.
func encodeHeader(tensors []Tensor, sizes []int64, order []int, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if metadata != nil {
		b.WriteString(`"__metadata__":{`)
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			v := metadata[k]
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, fmt.Errorf("metadata %q: not valid UTF-8", k)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, v)
		}
		b.WriteByte('}')
	}
	var off int64
	for j, i := range order {
		t := &tensors[i]
		if j > 0 || metadata != nil {
			b.WriteByte(',')
		}
		writeJSONString(&b, t.Name)
		b.WriteString(`:{"dtype":"`)
		b.WriteString(string(t.DType))
		b.WriteString(`","shape":[`)
		for k, d := range t.Shape {
			if k > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, off+sizes[i])
		off += sizes[i]
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderSize {
		return nil, fmt.Errorf("header of %d bytes exceeds the %d-byte limit", b.Len(), MaxHeaderSize)
	}
	return b.Bytes(), nil
}

// writeJSONString quotes s as serde_json does: only '"', '\\' and control
// characters are escaped, everything else is written as UTF-8.
func writeJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// writeAtomic writes a file through fill under a temporary name in the same
// directory, syncs it, renames it to path and syncs the directory. On any
// error the temporary file is removed and path is untouched.
func writeAtomic(path string, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err = fill(w); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// shardPlan splits tensors into shards as huggingface_hub's
// split_state_dict_into_shards_factory does: in the given order, a shard
// is closed when the next tensor would take it over limit bytes, and a
// tensor larger than limit gets a shard of its own. It returns the tensor
// indices of each shard.
func shardPlan(sizes []int64, limit int64) [][]int {
	var shards [][]int
	var cur []int
	var curSize int64
	for i, s := range sizes {
		if s > limit {
			shards = append(shards, []int{i})
			continue
		}
		if curSize+s > limit {
			shards = append(shards, cur)
			cur, curSize = nil, 0
		}
		cur = append(cur, i)
		curSize += s
	}
	if len(cur) > 0 || len(shards) == 0 {
		shards = append(shards, cur)
	}
	return shards
}

// shardName matches the files a weights directory is made of.
var shardName = regexp.MustCompile(`^model-[0-9]{5}-of-[0-9]{5}\.safetensors$`)

// WriteDir writes the tensors as a Hugging Face weights directory that
// transformers' from_pretrained and vLLM load: model.safetensors when the
// tensors fit in one shard of maxShardBytes (<= 0: DefaultMaxShardBytes),
// otherwise model-0000i-of-0000n.safetensors shards, cut in the order given
// as transformers cuts them, and model.safetensors.index.json with
// metadata.total_size (the bytes of tensor data) and the weight_map. Every
// file gets the metadata, with "format": "pt" added when it has no
// "format". Weight files of an earlier save that the new set does not use
// are removed. Each file is written atomically; for a directory that is
// always complete, write into a new directory and rename it.
func WriteDir(dir string, tensors []Tensor, metadata map[string]string, maxShardBytes int64) error {
	if err := writeDir(dir, tensors, metadata, maxShardBytes); err != nil {
		return fmt.Errorf("safetensors directory %s: %w", dir, err)
	}
	return nil
}

func writeDir(dir string, tensors []Tensor, metadata map[string]string, maxShardBytes int64) error {
	if maxShardBytes <= 0 {
		maxShardBytes = DefaultMaxShardBytes
	}
	sizes, err := checkTensors(tensors)
	if err != nil {
		return err
	}
	md := maps.Clone(metadata)
	if md == nil {
		md = map[string]string{}
	}
	if _, ok := md["format"]; !ok {
		md["format"] = "pt"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	plan := shardPlan(sizes, maxShardBytes)
	keep := map[string]bool{}
	if len(plan) == 1 {
		keep[SingleFileName] = true
		if err := writeFile(filepath.Join(dir, SingleFileName), tensors, md); err != nil {
			return fmt.Errorf("%s: %w", SingleFileName, err)
		}
		return removeStale(dir, keep)
	}
	weightMap := map[string]string{}
	var total int64
	for i, idx := range plan {
		name := ShardFileName(i+1, len(plan))
		keep[name] = true
		shard := make([]Tensor, len(idx))
		for j, k := range idx {
			shard[j] = tensors[k]
			weightMap[tensors[k].Name] = name
			total += sizes[k]
		}
		if err := writeFile(filepath.Join(dir, name), shard, md); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	// A model.safetensors left from an earlier save would shadow the index.
	if err := os.Remove(filepath.Join(dir, SingleFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	index := struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]int64{"total_size": total}, weightMap}
	keep[IndexFileName] = true
	err = writeAtomic(filepath.Join(dir, IndexFileName), func(w io.Writer) error {
		enc := json.NewEncoder(w) // sorted keys, indent 2: transformers' json.dumps(indent=2, sort_keys=True)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(index)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", IndexFileName, err)
	}
	return removeStale(dir, keep)
}

// removeStale removes the weight files in dir that keep does not list.
func removeStale(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if keep[n] || !(n == SingleFileName || n == IndexFileName || shardName.MatchString(n)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("removing the earlier save's %s: %w", n, err)
		}
	}
	return nil
}
