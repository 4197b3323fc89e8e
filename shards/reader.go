package shards

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"sync"

	"gonum.org/v1/hdf5"

	"earl/shards/audio"
	"earl/shards/sources"
)

// shard is an open shard file with its metadata columns loaded.
type shard struct {
	path    string
	f       *hdf5.File
	hdr     header
	recs    []Record
	valid   []int32
	stored  []int32
	fill    []float32
	rejects []Reject
}

// openShard opens a shard file and loads everything but the features.
func openShard(path string) (*shard, error) {
	h5mu.Lock()
	defer h5mu.Unlock()
	f, err := hdf5.OpenFile(path, hdf5.F_ACC_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("open shard %s: not a readable HDF5 file: %w", path, err)
	}
	s := &shard{path: path, f: f}
	if err := s.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("shard %s: %w", path, err)
	}
	return s, nil
}

func (s *shard) load() error {
	var err error
	if s.hdr, err = readHeader(s.f); err != nil {
		return err
	}
	n := s.hdr.Samples
	loc := s.f.ID()
	strs := map[string][]string{}
	for _, name := range []string{"id", "source", "audio", "audio_format", "question", "choices", "answer",
		"task", "categories", "sub_category", "difficulty", "extra", "rejects"} {
		v, err := readStrings(loc, name)
		if err != nil {
			return err
		}
		if name != "rejects" && len(v) != n {
			return fmt.Errorf("column %q has %d rows, want %d", name, len(v), n)
		}
		strs[name] = v
	}
	ints := map[string][]int32{}
	for _, name := range []string{"answer_index", "orig_sample_rate", "orig_channels", "valid_frames", "stored_frames"} {
		if ints[name], err = readColumn[int32](loc, name, colInt32, n); err != nil {
			return err
		}
	}
	srcIdx, err := readColumn[int64](loc, "source_index", colInt64, n)
	if err != nil {
		return err
	}
	dur, err := readColumn[float64](loc, "duration", colFloat64, n)
	if err != nil {
		return err
	}
	if s.fill, err = readColumn[float32](loc, "fill", colFloat32, n); err != nil {
		return err
	}
	s.valid, s.stored = ints["valid_frames"], ints["stored_frames"]
	s.recs = make([]Record, n)
	for i := range s.recs {
		r := &s.recs[i]
		r.ID = strs["id"][i]
		r.Source = strs["source"][i]
		r.Audio = strs["audio"][i]
		r.AudioFormat = strs["audio_format"][i]
		r.Question = strs["question"][i]
		r.Answer = strs["answer"][i]
		r.Task = strs["task"][i]
		r.SubCategory = strs["sub_category"][i]
		r.Difficulty = strs["difficulty"][i]
		for _, js := range []struct {
			col string
			dst any
		}{{"choices", &r.Choices}, {"categories", &r.Categories}, {"extra", &r.Extra}} {
			if err := json.Unmarshal([]byte(strs[js.col][i]), js.dst); err != nil {
				return fmt.Errorf("row %d column %q: %w", i, js.col, err)
			}
		}
		if len(r.Categories) == 0 {
			r.Categories = nil
		}
		if len(r.Choices) == 0 {
			r.Choices = nil
		}
		if len(r.Extra) == 0 {
			r.Extra = nil
		}
		r.AnswerIndex = int(ints["answer_index"][i])
		r.SampleRate = int(ints["orig_sample_rate"][i])
		r.Channels = int(ints["orig_channels"][i])
		r.SourceIndex = int(srcIdx[i])
		r.Duration = dur[i]
		total := s.hdr.Features.TotalFrames()
		if v, st := int(s.valid[i]), int(s.stored[i]); v < 0 || st < 1 || v > total || st > total {
			return fmt.Errorf("row %d (id %q): frame counts valid=%d stored=%d out of range", i, r.ID, v, st)
		}
	}
	rejIdx, err := readColumn[int64](loc, "rejects_source_index", colInt64, len(strs["rejects"]))
	if err != nil {
		return err
	}
	for i, js := range strs["rejects"] {
		var r Reject
		if err := json.Unmarshal([]byte(js), &r); err != nil {
			return fmt.Errorf("reject %d: %w", i, err)
		}
		r.SourceIndex = int(rejIdx[i])
		s.rejects = append(s.rejects, r)
	}
	return nil
}

// features reads sample i's log-mel.
func (s *shard) features(i int) (*audio.LogMel, error) {
	c := s.hdr.Features
	m := &audio.LogMel{
		Mels:         c.Mels,
		TotalFrames:  c.TotalFrames(),
		ValidFrames:  int(s.valid[i]),
		StoredFrames: int(s.stored[i]),
		Fill:         s.fill[i],
	}
	h5mu.Lock()
	data, dims, err := readFloat32(s.f.ID(), featureName(i), m.StoredFrames*m.Mels)
	h5mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("shard %s: sample %q: %w", s.path, s.recs[i].ID, err)
	}
	if len(dims) != 2 || dims[0] != m.StoredFrames || dims[1] != m.Mels {
		return nil, fmt.Errorf("shard %s: sample %q: features have shape %v, want [%d %d]", s.path, s.recs[i].ID, dims, m.StoredFrames, m.Mels)
	}
	m.Data = data
	return m, nil
}

func (s *shard) close() {
	h5mu.Lock()
	s.f.Close()
	h5mu.Unlock()
}

// Dir is an open shard directory. Its methods are safe for concurrent use.
type Dir struct {
	Path     string
	Manifest *Manifest

	mu     sync.Mutex
	shards []*shard // opened on first use
	starts []int    // global index of each shard's first sample
}

// Open opens a complete shard directory (one with manifest.json).
func Open(dir string) (*Dir, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	d := &Dir{Path: dir, Manifest: m, shards: make([]*shard, len(m.Shards))}
	n := 0
	for _, e := range m.Shards {
		d.starts = append(d.starts, n)
		n += e.Samples
	}
	if n != m.Samples {
		return nil, fmt.Errorf("%s: manifest lists %d samples in its shards but %d in total", dir, n, m.Samples)
	}
	return d, nil
}

// Len is the number of samples.
func (d *Dir) Len() int { return d.Manifest.Samples }

func (d *Dir) shard(k int) (*shard, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.shards[k] != nil {
		return d.shards[k], nil
	}
	e := d.Manifest.Shards[k]
	s, err := openShard(filepath.Join(d.Path, e.File))
	if err != nil {
		return nil, err
	}
	if s.hdr.Samples != e.Samples {
		s.close()
		return nil, fmt.Errorf("shard %s holds %d samples, manifest says %d: run `launcher inspect --verify %s`", s.path, s.hdr.Samples, e.Samples, d.Path)
	}
	d.shards[k] = s
	return s, nil
}

// Meta returns sample i's record without features (Mel nil).
func (d *Dir) Meta(i int) (*Record, error) {
	s, j, err := d.sample(i)
	if err != nil {
		return nil, err
	}
	r := s.recs[j]
	return &r, nil
}

// Record returns sample i with its features.
func (d *Dir) Record(i int) (*Record, error) {
	s, j, err := d.sample(i)
	if err != nil {
		return nil, err
	}
	r := s.recs[j]
	if r.Mel, err = s.features(j); err != nil {
		return nil, err
	}
	return &r, nil
}

// sample finds the open shard holding sample i and its row there.
func (d *Dir) sample(i int) (*shard, int, error) {
	if i < 0 || i >= d.Len() {
		return nil, 0, fmt.Errorf("sample index %d out of range [0, %d)", i, d.Len())
	}
	k := sort.Search(len(d.starts), func(k int) bool { return d.starts[k] > i }) - 1
	s, err := d.shard(k)
	if err != nil {
		return nil, 0, err
	}
	return s, i - d.starts[k], nil
}

// Rejects returns every rejected record in annotation order.
func (d *Dir) Rejects() ([]Reject, error) {
	var out []Reject
	for k := range d.Manifest.Shards {
		s, err := d.shard(k)
		if err != nil {
			return nil, err
		}
		out = append(out, s.rejects...)
	}
	return out, nil
}

// Close releases the open shard files.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, s := range d.shards {
		if s != nil {
			s.close()
			d.shards[k] = nil
		}
	}
	return nil
}

// reasonCounts tallies rejects by reason.
func reasonCounts(rs []Reject) map[sources.Reason]int {
	m := map[sources.Reason]int{}
	for _, r := range rs {
		m[r.Reason]++
	}
	return m
}
