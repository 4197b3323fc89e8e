// Package shards stores audio question-answering samples with their Whisper
// log-mel features in HDF5 shard files, builds shard directories from
// annotation files (`launcher shard`), and reads them back for training and
// evaluation: a deterministic shuffled order per seed and epoch, a
// rank-strided partition, and background prefetch.
//
// A shard directory holds manifest.json (counts, sha256, feature
// parameters, source, rejects summary), shard-NNNNN.h5 files and
// rejects.jsonl. Each shard file has, per sample i, the dataset
// features/NNNNNNNN ([stored_frames, n_mels], one shuffled + deflated chunk)
// and row i of the 1-D metadata columns; see docs/shards.md.
package shards

import (
	"encoding/json"
	"fmt"
	"os"

	"gonum.org/v1/hdf5"

	"earl/shards/audio"
	"earl/shards/sources"
)

// FormatVersion is the shard file layout version; readers refuse others.
const FormatVersion = 1

// EarlVersion is written into every shard and manifest.
const EarlVersion = "0.1.0"

// Record is one stored sample: the normalised annotation, facts about its
// audio, and its log-mel features.
type Record struct {
	sources.Sample
	// SourceIndex is the record's position in the annotation file (JSONL
	// line order or array index, counting rejected records too).
	SourceIndex int `json:"source_index"`
	// Duration is the decoded clip length in seconds, before padding or
	// truncation.
	Duration    float64 `json:"duration"`
	SampleRate  int     `json:"orig_sample_rate"`
	Channels    int     `json:"orig_channels"`
	AudioFormat string  `json:"audio_format"`
	// Mel holds the features; Mel.Data is nil when only metadata was read.
	Mel *audio.LogMel `json:"-"`
}

// Reject is one record of rejects.jsonl: where the bad record is and why it
// was left out.
type Reject struct {
	File   string         `json:"file"`
	Line   int            `json:"line,omitempty"`
	Index  *int           `json:"index,omitempty"`
	ID     string         `json:"id,omitempty"`
	Audio  string         `json:"audio,omitempty"`
	Reason sources.Reason `json:"reason"`
	Detail string         `json:"detail"`
	// SourceIndex orders rejects with samples; not written.
	SourceIndex int `json:"-"`
}

func (r Reject) String() string {
	loc := sources.Location{File: r.File, Line: r.Line, Index: r.Index}.String()
	id := ""
	if r.ID != "" {
		id = fmt.Sprintf(" sample %q:", r.ID)
	}
	return fmt.Sprintf("%s:%s %s: %s", loc, id, r.Reason, r.Detail)
}

// header is what a shard file records about itself in root attributes.
type header struct {
	Features    audio.Config
	DType       DType
	Source      string // format name
	Fingerprint string // hash of the build inputs; --resume requires a match
	Index       int
	SourceBegin int // annotation records [SourceBegin, SourceEnd) belong to this shard
	SourceEnd   int
	Samples     int
}

// featureName is the dataset path of sample i's features.
func featureName(i int) string { return fmt.Sprintf("features/%08d", i) }

// shardWriter accumulates one shard. Feature chunks go to the file as they
// arrive; metadata columns are written when the shard is finished.
type shardWriter struct {
	path          string // temporary path while open
	f             *hdf5.File
	hdr           header
	recs          []Record
	valid, stored []int32
	fill          []float32
	rejects       []Reject
}

func createShard(tmpPath string, hdr header) (*shardWriter, error) {
	h5mu.Lock()
	defer h5mu.Unlock()
	f, err := hdf5.CreateFile(tmpPath, hdf5.F_ACC_TRUNC)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", tmpPath, err)
	}
	if err := createGroup(f.ID(), "features"); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", tmpPath, err)
	}
	return &shardWriter{path: tmpPath, f: f, hdr: hdr}, nil
}

// add stores one sample; chunk holds its features as encodeChunk made them.
func (w *shardWriter) add(rec Record, chunk []byte) error {
	h5mu.Lock()
	defer h5mu.Unlock()
	i := len(w.recs)
	m := rec.Mel
	if err := writeFeatureChunk(w.f.ID(), featureName(i), m.StoredFrames, m.Mels, w.hdr.DType == Float16, deflateLevel, chunk); err != nil {
		return fmt.Errorf("%s: sample %q: %w", w.path, rec.ID, err)
	}
	rec.Mel = nil
	w.recs = append(w.recs, rec)
	w.valid = append(w.valid, int32(m.ValidFrames))
	w.stored = append(w.stored, int32(m.StoredFrames))
	w.fill = append(w.fill, m.Fill)
	return nil
}

// finish writes the metadata columns and attributes and closes the file.
func (w *shardWriter) finish(sourceEnd int) error {
	h5mu.Lock()
	defer h5mu.Unlock()
	w.hdr.SourceEnd = sourceEnd
	w.hdr.Samples = len(w.recs)
	err := w.writeMeta()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("finish %s: %w", w.path, err)
	}
	return nil
}

// abort closes and removes the temporary file.
func (w *shardWriter) abort() {
	h5mu.Lock()
	w.f.Close()
	h5mu.Unlock()
	os.Remove(w.path)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain strings, slices and maps reach here
	}
	return string(b)
}

func (w *shardWriter) writeMeta() error {
	loc := w.f.ID()
	n := len(w.recs)
	str := func(get func(r *Record) string) []string {
		out := make([]string, n)
		for i := range w.recs {
			out[i] = get(&w.recs[i])
		}
		return out
	}
	strCols := []struct {
		name string
		get  func(r *Record) string
	}{
		{"id", func(r *Record) string { return r.ID }},
		{"source", func(r *Record) string { return r.Source }},
		{"audio", func(r *Record) string { return r.Audio }},
		{"audio_format", func(r *Record) string { return r.AudioFormat }},
		{"question", func(r *Record) string { return r.Question }},
		{"choices", func(r *Record) string { return jsonText(nonNil(r.Choices)) }},
		{"answer", func(r *Record) string { return r.Answer }},
		{"task", func(r *Record) string { return r.Task }},
		{"categories", func(r *Record) string { return jsonText(nonNil(r.Categories)) }},
		{"sub_category", func(r *Record) string { return r.SubCategory }},
		{"difficulty", func(r *Record) string { return r.Difficulty }},
		{"extra", func(r *Record) string { return jsonText(nonNilMap(r.Extra)) }},
	}
	for _, c := range strCols {
		if err := writeStrings(loc, c.name, str(c.get)); err != nil {
			return err
		}
	}
	i32 := func(get func(r *Record) int) []int32 {
		out := make([]int32, n)
		for i := range w.recs {
			out[i] = int32(get(&w.recs[i]))
		}
		return out
	}
	for _, c := range []struct {
		name string
		vals []int32
	}{
		{"answer_index", i32(func(r *Record) int { return r.AnswerIndex })},
		{"orig_sample_rate", i32(func(r *Record) int { return r.SampleRate })},
		{"orig_channels", i32(func(r *Record) int { return r.Channels })},
		{"valid_frames", w.valid},
		{"stored_frames", w.stored},
	} {
		if err := writeColumn(loc, c.name, colInt32, c.vals); err != nil {
			return err
		}
	}
	srcIdx := make([]int64, n)
	dur := make([]float64, n)
	for i := range w.recs {
		srcIdx[i] = int64(w.recs[i].SourceIndex)
		dur[i] = w.recs[i].Duration
	}
	if err := writeColumn(loc, "source_index", colInt64, srcIdx); err != nil {
		return err
	}
	if err := writeColumn(loc, "duration", colFloat64, dur); err != nil {
		return err
	}
	if err := writeColumn(loc, "fill", colFloat32, w.fill); err != nil {
		return err
	}
	rej := make([]string, len(w.rejects))
	rejIdx := make([]int64, len(w.rejects))
	for i, r := range w.rejects {
		rej[i] = jsonText(r)
		rejIdx[i] = int64(r.SourceIndex)
	}
	if err := writeStrings(loc, "rejects", rej); err != nil {
		return err
	}
	if err := writeColumn(loc, "rejects_source_index", colInt64, rejIdx); err != nil {
		return err
	}
	return writeHeader(w.f, w.hdr)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func writeHeader(f *hdf5.File, h header) error {
	root, err := f.OpenGroup("/")
	if err != nil {
		return err
	}
	defer root.Close()
	c := h.Features
	for _, a := range []struct {
		name string
		val  any
	}{
		{"earl_format", "earl-shard"},
		{"format_version", int64(FormatVersion)},
		{"earl_version", EarlVersion},
		{"family", string(c.Family)},
		{"sample_rate", int64(c.SampleRate)},
		{"n_fft", int64(c.NFFT)},
		{"hop_length", int64(c.Hop)},
		{"n_mels", int64(c.Mels)},
		{"n_samples", int64(c.PadSamples)},
		{"nb_max_frames", int64(c.TotalFrames())},
		{"feature_dtype", string(h.DType)},
		{"feature_layout", "features/NNNNNNNN is [stored_frames, n_mels]; frames >= stored_frames equal fill"},
		{"source", h.Source},
		{"build_fingerprint", h.Fingerprint},
		{"shard_index", int64(h.Index)},
		{"source_begin", int64(h.SourceBegin)},
		{"source_end", int64(h.SourceEnd)},
		{"num_samples", int64(h.Samples)},
	} {
		if err := setAttr(root, a.name, a.val); err != nil {
			return fmt.Errorf("attribute %s: %w", a.name, err)
		}
	}
	return nil
}

func setAttr(g *hdf5.Group, name string, val any) error {
	sp, err := hdf5.CreateDataspace(hdf5.S_SCALAR)
	if err != nil {
		return err
	}
	defer sp.Close()
	var dt *hdf5.Datatype
	switch val.(type) {
	case string:
		dt = hdf5.T_GO_STRING
	case int64:
		dt = hdf5.T_NATIVE_INT64
	default:
		return fmt.Errorf("unsupported attribute type %T", val)
	}
	a, err := g.CreateAttribute(name, dt, sp)
	if err != nil {
		return err
	}
	defer a.Close()
	switch v := val.(type) {
	case string:
		return a.Write(&v, dt)
	case int64:
		return a.Write(&v, dt)
	}
	return nil
}

func attrString(g *hdf5.Group, name string) (string, error) {
	a, err := g.OpenAttribute(name)
	if err != nil {
		return "", fmt.Errorf("missing attribute %q", name)
	}
	defer a.Close()
	var s string
	if err := a.Read(&s, hdf5.T_GO_STRING); err != nil {
		return "", fmt.Errorf("attribute %q: %w", name, err)
	}
	return s, nil
}

func attrInt(g *hdf5.Group, name string) (int, error) {
	a, err := g.OpenAttribute(name)
	if err != nil {
		return 0, fmt.Errorf("missing attribute %q", name)
	}
	defer a.Close()
	var v int64
	if err := a.Read(&v, hdf5.T_NATIVE_INT64); err != nil {
		return 0, fmt.Errorf("attribute %q: %w", name, err)
	}
	return int(v), nil
}

// readHeader reads and checks a shard's root attributes. The caller holds
// h5mu.
func readHeader(f *hdf5.File) (header, error) {
	var h header
	root, err := f.OpenGroup("/")
	if err != nil {
		return h, err
	}
	defer root.Close()
	if s, err := attrString(root, "earl_format"); err != nil || s != "earl-shard" {
		return h, fmt.Errorf("not an earl shard file (earl_format attribute %q)", s)
	}
	v, err := attrInt(root, "format_version")
	if err != nil {
		return h, err
	}
	if v != FormatVersion {
		return h, fmt.Errorf("shard format version %d; this earl reads version %d: rebuild the shards with this earl", v, FormatVersion)
	}
	var fam, dt string
	ints := []struct {
		name string
		dst  *int
	}{
		{"sample_rate", &h.Features.SampleRate},
		{"n_fft", &h.Features.NFFT},
		{"hop_length", &h.Features.Hop},
		{"n_mels", &h.Features.Mels},
		{"n_samples", &h.Features.PadSamples},
		{"shard_index", &h.Index},
		{"source_begin", &h.SourceBegin},
		{"source_end", &h.SourceEnd},
		{"num_samples", &h.Samples},
	}
	for _, a := range ints {
		if *a.dst, err = attrInt(root, a.name); err != nil {
			return h, err
		}
	}
	strs := []struct {
		name string
		dst  *string
	}{
		{"family", &fam},
		{"feature_dtype", &dt},
		{"source", &h.Source},
		{"build_fingerprint", &h.Fingerprint},
	}
	for _, a := range strs {
		if *a.dst, err = attrString(root, a.name); err != nil {
			return h, err
		}
	}
	h.Features.Family = audio.Family(fam)
	if h.DType, err = ParseDType(dt); err != nil {
		return h, err
	}
	want, err := audio.ConfigFor(h.Features.Family)
	if err != nil {
		return h, err
	}
	if want != h.Features {
		return h, fmt.Errorf("feature parameters %+v differ from earl's %s parameters %+v", h.Features, fam, want)
	}
	return h, nil
}
