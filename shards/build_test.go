package shards

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"earl/shards/audio"
	"earl/shards/sources"
	"earl/tools/synth"
)

// synthSet writes a synthetic dataset in format and returns the build
// options that read it.
func synthSet(t *testing.T, format string, n int, seed uint64) BuildOptions {
	t.Helper()
	dir := t.TempDir()
	res, err := synth.Generate(synth.Options{Format: format, N: n, Seed: seed, Out: filepath.Join(dir, "src"),
		MinSeconds: 0.5, MaxSeconds: 3})
	if err != nil {
		t.Fatal(err)
	}
	return BuildOptions{Format: format, Src: res.Annotation, AudioRoot: res.AudioRoot, Split: res.Split,
		Out: filepath.Join(dir, "shards"), ShardSize: 5}
}

func mustBuild(t *testing.T, o BuildOptions) *BuildResult {
	t.Helper()
	res, err := Build(context.Background(), o)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return res
}

// featuresOf computes a clip's log-mel the way a user of the library would,
// straight from the file.
func featuresOf(t *testing.T, path string, fam audio.Family) *audio.LogMel {
	t.Helper()
	clip, err := audio.Decode(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := audio.ConfigFor(fam)
	x := clip.Samples
	if clip.SampleRate != cfg.SampleRate {
		x = audio.Resample(x, clip.SampleRate, cfg.SampleRate)
	}
	e, _ := audio.NewExtractor(cfg)
	return e.Compute(x)
}

// Every source format ingests its synthetic set, and the stored features
// rebuild the padded log-mel bit for bit.
func TestBuildEverySourceFormat(t *testing.T) {
	for _, format := range sources.Names() {
		t.Run(format, func(t *testing.T) {
			o := synthSet(t, format, 12, 7)
			o.Family = audio.Qwen25Omni
			if format != "mmau" {
				o.Family = audio.Qwen2Audio
			}
			res := mustBuild(t, o)
			if res.Manifest.Samples != 12 || res.Manifest.Rejects.Total != 0 {
				t.Fatalf("%d samples, %d rejects (%v)", res.Manifest.Samples, res.Manifest.Rejects.Total, res.Rejects)
			}
			if len(res.Manifest.Shards) != 3 {
				t.Errorf("%d shards for 12 samples of 5, want 3", len(res.Manifest.Shards))
			}
			d, err := Open(o.Out)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			entries, err := mustFormat(t, format).Read(o.Src, sources.Options{Split: o.Split})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < d.Len(); i++ {
				r, err := d.Record(i)
				if err != nil {
					t.Fatal(err)
				}
				want := entries[r.SourceIndex].Sample
				if !sameSample(r.Sample, want) {
					t.Fatalf("sample %d: stored %+v, annotation %+v", i, r.Sample, want)
				}
				ref := featuresOf(t, want.AudioPath(o.AudioRoot), o.Family)
				got, exp := r.Mel.Padded(), ref.Padded()
				if len(got) != len(exp) {
					t.Fatalf("sample %d: %d values, want %d", i, len(got), len(exp))
				}
				for k := range got {
					if math.Float32bits(got[k]) != math.Float32bits(exp[k]) {
						t.Fatalf("sample %q value %d: stored %v, recomputed %v", r.ID, k, got[k], exp[k])
					}
				}
				if v := r.Mel.Valid(); len(v) != 128*ref.ValidFrames {
					t.Fatalf("sample %q: %d valid values, want 128 x %d", r.ID, len(v), ref.ValidFrames)
				}
			}
		})
	}
}

func mustFormat(t *testing.T, name string) sources.Format {
	f, err := sources.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func sameSample(a, b sources.Sample) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// The real MMAU test-mini annotations, with synthesised audio at the paths
// they reference, ingest completely with their categories intact.
func TestMMAUTestMini(t *testing.T) {
	ann := "../../shared/testdata/mmau/mmau-test-mini.json"
	if _, err := os.Stat(ann); err != nil {
		t.Fatalf("real MMAU annotations missing (%v): ../shared/testdata must sit beside the repository", err)
	}
	root := t.TempDir()
	n, err := synth.FillAudio("mmau", ann, root, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1000 {
		t.Fatalf("synthesised %d clips, want 1000", n)
	}
	out := filepath.Join(t.TempDir(), "mmau")
	res := mustBuild(t, BuildOptions{Format: "mmau", Src: ann, AudioRoot: root, Out: out, Strict: true})
	if res.Manifest.Samples != 1000 {
		t.Fatalf("%d samples, want 1000", res.Manifest.Samples)
	}
	// The expectations come from the raw JSON, read here independently.
	var raw []struct {
		ID       string          `json:"id"`
		Task     string          `json:"task"`
		Category json.RawMessage `json:"category"`
		Sub      string          `json:"sub-category"`
		Diff     string          `json:"difficulty"`
		Answer   string          `json:"answer"`
	}
	b, _ := os.ReadFile(ann)
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	d, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	byID := map[string]*Record{}
	for i := 0; i < d.Len(); i++ {
		r, err := d.Meta(i)
		if err != nil {
			t.Fatal(err)
		}
		byID[r.ID] = r
	}
	lists := 0
	for _, w := range raw {
		r := byID[w.ID]
		if r == nil {
			t.Fatalf("id %s missing from the shards", w.ID)
		}
		var cats []string
		if err := json.Unmarshal(w.Category, &cats); err == nil {
			lists++
		} else {
			var c string
			json.Unmarshal(w.Category, &c)
			cats = []string{c}
		}
		if r.Task != w.Task || r.SubCategory != w.Sub || r.Difficulty != w.Diff || fmt.Sprint(r.Categories) != fmt.Sprint(cats) {
			t.Fatalf("id %s: task %q cats %q sub %q diff %q; annotation %q %q %q %q", w.ID, r.Task, r.Categories, r.SubCategory, r.Difficulty, w.Task, cats, w.Sub, w.Diff)
		}
		if strings.TrimSpace(w.Answer) != r.Answer {
			t.Fatalf("id %s: answer %q, annotation %q", w.ID, r.Answer, w.Answer)
		}
	}
	if lists != 13 {
		t.Errorf("%d list categories in the annotation, want 13", lists)
	}
	sum, err := d.Summarize()
	if err != nil {
		t.Fatal(err)
	}
	if sum.ByTask["sound"] != 333 || sum.ByTask["music"] != 334 || sum.ByTask["speech"] != 333 {
		t.Errorf("by task %v", sum.ByTask)
	}
}

// writeLines appends raw lines to an annotation file.
func appendLines(t *testing.T, path string, lines ...string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
	f.Close()
}

// badSet is a 20-sample jsonl set followed by one record of each kind of
// bad input, on known lines.
func badSet(t *testing.T) (BuildOptions, map[int]sources.Reason) {
	o := synthSet(t, "jsonl", 20, 11)
	root := o.AudioRoot
	os.WriteFile(filepath.Join(root, "audio", "garbage.wav"), []byte("RIFF\x10\x00\x00\x00WAVEjunkjunkjunk"), 0o644)
	var empty bytes.Buffer
	if err := audio.WriteWAV(&empty, nil, 16000, 1, audio.PCM16, false); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "audio", "empty.wav"), empty.Bytes(), 0o644)
	first, _ := os.ReadFile(o.Src)
	dup := strings.SplitN(string(first), "\n", 2)[0]
	ok := func(id, audio string) string {
		return fmt.Sprintf(`{"id": %q, "audio": %q, "question": "q?", "choices": ["a", "b"], "answer": "a"}`, id, audio)
	}
	appendLines(t, o.Src,
		ok("missing", "audio/nope.wav"),    // line 21
		ok("garbage", "audio/garbage.wav"), // 22
		ok("empty", "audio/empty.wav"),     // 23
		`{"id": "notin", "audio": "audio/x.wav", "question": "q?", "choices": ["a", "b"], "answer": "c"}`, // 24
		dup,                          // 25
		`{"id": "broken", "audio": `, // 26
	)
	return o, map[int]sources.Reason{
		21: sources.ReasonMissingAudio, 22: sources.ReasonUndecodableAudio, 23: sources.ReasonEmptyAudio,
		24: sources.ReasonAnswerNotInChoices, 25: sources.ReasonDuplicateID, 26: sources.ReasonMalformed,
	}
}

func TestBadInputIsRejectedAndRecorded(t *testing.T) {
	o, want := badSet(t)
	o.MaxRejectFraction = 0.5
	res := mustBuild(t, o)
	if res.Manifest.Samples != 20 || res.Manifest.Rejects.Total != 6 {
		t.Fatalf("%d samples, %d rejects, want 20 and 6: %v", res.Manifest.Samples, res.Manifest.Rejects.Total, res.Rejects)
	}
	b, err := os.ReadFile(filepath.Join(o.Out, RejectsName))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 6 {
		t.Fatalf("rejects.jsonl has %d lines, want 6:\n%s", len(lines), b)
	}
	for _, l := range lines {
		var r Reject
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("rejects.jsonl line %q: %v", l, err)
		}
		if r.File != o.Src || want[r.Line] == "" {
			t.Fatalf("reject %q: unexpected file or line", l)
		}
		if r.Reason != want[r.Line] {
			t.Errorf("line %d: reason %s, want %s (%s)", r.Line, r.Reason, want[r.Line], r.Detail)
		}
		if r.Line != 26 && r.ID == "" {
			t.Errorf("line %d: reject has no id", r.Line)
		}
		if r.Detail == "" {
			t.Errorf("line %d: reject has no detail", r.Line)
		}
		delete(want, r.Line)
	}
	if res.Manifest.Rejects.ByReason[sources.ReasonMissingAudio] != 1 {
		t.Errorf("summary %v", res.Manifest.Rejects.ByReason)
	}
	// The duplicate kept the first occurrence: its features are in.
	d, _ := Open(o.Out)
	defer d.Close()
	sum, _ := d.Summarize()
	if sum.Samples != 20 {
		t.Errorf("inspect sees %d samples", sum.Samples)
	}
}

func TestTooManyRejectsFails(t *testing.T) {
	o, _ := badSet(t)
	_, err := Build(context.Background(), o) // default 1%: 6 of 26 is too many
	if err == nil || !strings.Contains(err.Error(), "--max-reject-fraction") {
		t.Fatalf("err = %v, want a max-reject-fraction failure", err)
	}
	if _, err := os.Stat(filepath.Join(o.Out, ManifestName)); !os.IsNotExist(err) {
		t.Error("a failed run wrote manifest.json")
	}
	if b, err := os.ReadFile(filepath.Join(o.Out, RejectsName)); err != nil || len(b) == 0 {
		t.Errorf("a failed run should still list the rejects it found: %v", err)
	}
	assertNoTemp(t, o.Out)
}

func TestStrictFailsOnFirstReject(t *testing.T) {
	o, _ := badSet(t)
	o.Strict = true
	o.MaxRejectFraction = 1
	_, err := Build(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), o.Src+":21") || !strings.Contains(err.Error(), "missing-audio") {
		t.Fatalf("err = %v, want the first bad record (line 21, missing audio)", err)
	}
	assertNoTemp(t, o.Out)
}

// assertNoTemp checks that only complete shards remain under final names
// and no temporary file is left behind.
func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
		if shardNameRE.MatchString(e.Name()) {
			s, err := openShard(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Errorf("%s under a final name is not complete: %v", e.Name(), err)
				continue
			}
			s.close()
		}
	}
}

func TestOutputDirMustBeEmptyWithoutResume(t *testing.T) {
	o := synthSet(t, "jsonl", 6, 1)
	mustBuild(t, o)
	if _, err := Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("second build into the same dir: err = %v", err)
	}
	// --resume on a finished directory rebuilds the same manifest.
	before, _ := os.ReadFile(filepath.Join(o.Out, ManifestName))
	o.Resume = true
	mustBuild(t, o)
	after, _ := os.ReadFile(filepath.Join(o.Out, ManifestName))
	if !bytes.Equal(before, after) {
		t.Error("resume of a finished run changed manifest.json")
	}
	// Different flags must not mix with existing shards.
	o.DType = Float16
	if _, err := Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), "different") {
		t.Fatalf("resume with another dtype: err = %v", err)
	}
}

// dirFiles maps file name to contents for the shard outputs.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func sameFiles(t *testing.T, a, b map[string][]byte) {
	t.Helper()
	var names []string
	for n := range a {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(a) != len(b) {
		t.Fatalf("file sets differ: %v vs %d files", names, len(b))
	}
	for _, n := range names {
		if !bytes.Equal(a[n], b[n]) {
			t.Errorf("%s differs (%d vs %d bytes)", n, len(a[n]), len(b[n]))
		}
	}
}

// Two runs of the same input give byte-identical shards, whatever the
// worker count, for both dtypes.
func TestDeterministicBytes(t *testing.T) {
	for _, dt := range []DType{Float32, Float16} {
		o := synthSet(t, "mmau", 17, 5)
		o.DType = dt
		o.Workers = 1
		mustBuild(t, o)
		a := dirFiles(t, o.Out)
		o.Out += "-again"
		o.Workers = 3
		mustBuild(t, o)
		sameFiles(t, a, dirFiles(t, o.Out))
	}
}

// Cancelling a run (what SIGINT does) keeps the complete shards, leaves no
// partial file, and --resume finishes with exactly the clean run's bytes.
func TestCancelThenResume(t *testing.T) {
	o := synthSet(t, "jsonl", 23, 9)
	o.ShardSize = 4
	clean := o
	clean.Out += "-clean"
	mustBuild(t, clean)
	want := dirFiles(t, clean.Out)

	ctx, cancel := context.WithCancel(context.Background())
	o.Progress = func(p Progress) {
		if p.Done == 13 {
			cancel()
		}
	}
	if _, err := Build(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled build: err = %v", err)
	}
	assertNoTemp(t, o.Out)
	if _, err := os.Stat(filepath.Join(o.Out, ManifestName)); !os.IsNotExist(err) {
		t.Fatal("cancelled run wrote a manifest")
	}
	kept, _ := filepath.Glob(filepath.Join(o.Out, "shard-*.h5"))
	if len(kept) == 0 || len(kept) >= 6 {
		t.Fatalf("%d complete shards after cancelling mid-run", len(kept))
	}
	o.Progress, o.Resume = nil, true
	res := mustBuild(t, o)
	if res.Resumed != len(kept) {
		t.Errorf("resumed %d shards, %d were complete", res.Resumed, len(kept))
	}
	sameFiles(t, want, dirFiles(t, o.Out))
}
