package shards

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"earl/shards/audio"
	"earl/shards/sources"
)

// ManifestName is the file that marks a complete shard directory.
const ManifestName = "manifest.json"

// RejectsName is the file listing every rejected record.
const RejectsName = "rejects.jsonl"

// Manifest describes a complete shard directory. It holds no timestamps or
// host paths other than what the user passed, so the same input gives the
// same manifest.
type Manifest struct {
	Format        string        `json:"format"`
	FormatVersion int           `json:"format_version"`
	EarlVersion   string        `json:"earl_version"`
	Source        ManifestSrc   `json:"source"`
	Features      audio.Config  `json:"features"`
	TotalFrames   int           `json:"nb_max_frames"`
	DType         DType         `json:"feature_dtype"`
	ShardSize     int           `json:"shard_size"`
	Samples       int           `json:"samples"`
	Duration      float64       `json:"duration_seconds"`
	Shards        []ShardEntry  `json:"shards"`
	Rejects       RejectSummary `json:"rejects"`
	Fingerprint   string        `json:"build_fingerprint"`
}

// ManifestSrc says where the samples came from.
type ManifestSrc struct {
	Format    string `json:"format"`
	Path      string `json:"path"`
	SHA256    string `json:"sha256"`
	Records   int    `json:"records"`
	AudioRoot string `json:"audio_root"`
	Split     string `json:"split,omitempty"`
}

// ShardEntry is one shard file in the manifest.
type ShardEntry struct {
	File        string `json:"file"`
	Samples     int    `json:"samples"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"`
	SourceBegin int    `json:"source_begin"`
	SourceEnd   int    `json:"source_end"`

	duration float64 // seconds of audio, summed into Manifest.Duration
}

// RejectSummary counts rejected records by reason.
type RejectSummary struct {
	Total    int                    `json:"total"`
	ByReason map[sources.Reason]int `json:"by_reason"`
	File     string                 `json:"file"`
}

// ReadManifest loads DIR/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestName)
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		hint := ""
		if m, _ := filepath.Glob(filepath.Join(dir, "shard-*.h5*")); len(m) > 0 {
			hint = ": the shard run did not finish; rerun `launcher shard` with the same flags and --resume"
		}
		return nil, fmt.Errorf("%s is not a complete shard directory (no %s)%s", dir, ManifestName, hint)
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if m.Format != "earl-shards" {
		return nil, fmt.Errorf("%s: not an earl shard manifest (format %q)", p, m.Format)
	}
	if m.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%s: format version %d; this earl reads version %d: rebuild the shards", p, m.FormatVersion, FormatVersion)
	}
	return &m, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so readers never see a partial file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// fileSHA256 hashes a file.
func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func mustJSONIndent(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // plain structs only
	}
	return b
}
