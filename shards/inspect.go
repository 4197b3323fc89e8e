package shards

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
)

// Summary is what `launcher inspect` reports about a shard directory.
type Summary struct {
	Dir        string         `json:"dir"`
	Samples    int            `json:"samples"`
	Shards     []ShardSummary `json:"shards"`
	Family     string         `json:"family"`
	DType      DType          `json:"feature_dtype"`
	Frames     int            `json:"nb_max_frames"`
	Duration   float64        `json:"duration_seconds"`
	BySource   map[string]int `json:"by_source"`
	ByTask     map[string]int `json:"by_task"`
	ByCategory map[string]int `json:"by_category"`
	Durations  []Bucket       `json:"duration_histogram"`
	Rejects    RejectSummary  `json:"rejects"`
	Source     ManifestSrc    `json:"source"`
}

// ShardSummary is one shard's line.
type ShardSummary struct {
	File     string  `json:"file"`
	Samples  int     `json:"samples"`
	Bytes    int64   `json:"bytes"`
	Duration float64 `json:"duration_seconds"`
	SHA256   string  `json:"sha256"`
}

// Bucket is one bar of the duration histogram: clips with Lo <= d < Hi
// seconds (Hi 0 means unbounded).
type Bucket struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Count int     `json:"count"`
}

// durationEdges bracket the clip lengths of the supported datasets: AVQA
// clips are 10 s, MMAU up to 30 s, AudSem longer.
var durationEdges = []float64{0, 1, 2, 5, 10, 15, 20, 30, 60, 300}

// Summarize reads every shard's metadata (not the features).
func (d *Dir) Summarize() (*Summary, error) {
	m := d.Manifest
	s := &Summary{Dir: d.Path, Samples: m.Samples, Family: string(m.Features.Family), DType: m.DType,
		Frames: m.TotalFrames, BySource: map[string]int{}, ByTask: map[string]int{}, ByCategory: map[string]int{},
		Rejects: m.Rejects, Source: m.Source}
	for i := range durationEdges {
		b := Bucket{Lo: durationEdges[i]}
		if i+1 < len(durationEdges) {
			b.Hi = durationEdges[i+1]
		}
		s.Durations = append(s.Durations, b)
	}
	for k, e := range m.Shards {
		sh, err := d.shard(k)
		if err != nil {
			return nil, err
		}
		ss := ShardSummary{File: e.File, Samples: e.Samples, Bytes: e.Bytes, SHA256: e.SHA256}
		for _, r := range sh.recs {
			ss.Duration += r.Duration
			s.BySource[r.Source]++
			if r.Task != "" {
				s.ByTask[r.Task]++
			}
			for _, c := range r.Categories {
				s.ByCategory[c]++
			}
			j := sort.SearchFloat64s(durationEdges, r.Duration)
			if j == len(durationEdges) || durationEdges[j] != r.Duration {
				j--
			}
			s.Durations[max(j, 0)].Count++
		}
		s.Duration += ss.Duration
		s.Shards = append(s.Shards, ss)
	}
	s.Duration = math.Round(s.Duration*1000) / 1000
	return s, nil
}

// Verify re-hashes every shard against the manifest and reads every
// sample's features, checking shapes and that values are finite. It returns
// the problems found (empty when all is well); progress, when set, gets the
// number of samples checked.
func (d *Dir) Verify(progress func(done int)) ([]string, error) {
	var problems []string
	done := 0
	for k, e := range d.Manifest.Shards {
		p := filepath.Join(d.Path, e.File)
		sum, size, err := fileSHA256(p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", e.File, err))
			done += e.Samples
			continue
		}
		if sum != e.SHA256 || size != e.Bytes {
			problems = append(problems, fmt.Sprintf("%s: sha256 %s (%d bytes), manifest says %s (%d bytes): the file changed or is corrupt; rebuild it with `launcher shard`",
				e.File, sum, size, e.SHA256, e.Bytes))
		}
		sh, err := d.shard(k)
		if err != nil {
			problems = append(problems, err.Error())
			done += e.Samples
			continue
		}
		for j := range sh.recs {
			m, err := sh.features(j)
			if err != nil {
				problems = append(problems, err.Error())
			} else {
				for _, v := range m.Data {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						problems = append(problems, fmt.Sprintf("%s: sample %q: non-finite feature value", e.File, sh.recs[j].ID))
						break
					}
				}
			}
			done++
			if progress != nil {
				progress(done)
			}
		}
	}
	return problems, nil
}
