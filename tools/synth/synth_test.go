package synth

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"earl/shards/audio"
	"earl/shards/sources"
)

// The answers must be verifiable from the audio alone. Each question is
// re-answered here from the decoded WAV with plain signal measurements
// (envelope, zero crossings), independently of how the generator built it.
func TestAnswersAreVerifiableFromTheAudio(t *testing.T) {
	for _, task := range Tasks {
		dir := t.TempDir()
		res, err := Generate(Options{Task: task, Format: "jsonl", N: 25, Seed: 3, Out: dir, MinSeconds: 1, MaxSeconds: 4})
		if err != nil {
			t.Fatal(err)
		}
		f, _ := sources.Lookup("jsonl")
		entries, err := f.Read(res.Annotation, sources.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 25 {
			t.Fatalf("%s: %d entries", task, len(entries))
		}
		for _, e := range entries {
			if e.Err != nil {
				t.Fatalf("%s: %v", task, e.Err)
			}
			s := e.Sample
			clip, err := audio.Decode(s.AudioPath(res.AudioRoot))
			if err != nil {
				t.Fatal(err)
			}
			if got := answerFromAudio(t, task, clip); got != s.Answer {
				t.Errorf("%s %s: the audio says %q, the annotation %q", task, s.ID, got, s.Answer)
			}
		}
	}
}

// segments returns the [start, end) sample ranges where the 5 ms envelope
// exceeds a tenth of its peak.
func segments(x []float32, rate int) [][2]int {
	win := max(1, rate/200)
	env := make([]float64, len(x)/win)
	peak := 0.0
	for i := range env {
		var s float64
		for _, v := range x[i*win : (i+1)*win] {
			s += float64(v) * float64(v)
		}
		env[i] = math.Sqrt(s / float64(win))
		peak = math.Max(peak, env[i])
	}
	var segs [][2]int
	on := -1
	for i, v := range env {
		if v > peak/10 && on < 0 {
			on = i
		} else if v <= peak/10 && on >= 0 {
			segs = append(segs, [2]int{on * win, i * win})
			on = -1
		}
	}
	if on >= 0 {
		segs = append(segs, [2]int{on * win, len(env) * win})
	}
	return segs
}

func rms(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// freq estimates a tone's frequency from its zero crossings.
func freq(x []float32, rate int) float64 {
	n := 0
	for i := 1; i < len(x); i++ {
		if (x[i-1] < 0) != (x[i] < 0) {
			n++
		}
	}
	return float64(n) / 2 / (float64(len(x)) / float64(rate))
}

func answerFromAudio(t *testing.T, task string, c *audio.Clip) string {
	x, rate := c.Samples, c.SampleRate
	segs := segments(x, rate)
	two := func() ([]float32, []float32) {
		if len(segs) != 2 {
			t.Fatalf("%s: %d sounds in the clip, want 2", task, len(segs))
		}
		return x[segs[0][0]:segs[0][1]], x[segs[1][0]:segs[1][1]]
	}
	switch task {
	case "count":
		return []string{"0", "1", "2", "3", "4", "5", "6"}[len(segs)]
	case "pitch":
		a, b := two()
		if freq(a, rate) > freq(b, rate) {
			return "the first tone"
		}
		return "the second tone"
	case "duration":
		a, b := two()
		if len(a) > len(b) {
			return "the first sound"
		}
		return "the second sound"
	case "loudness":
		a, b := two()
		if rms(a) > rms(b) {
			return "the first time"
		}
		return "the second time"
	case "sweep":
		if len(segs) != 1 {
			t.Fatalf("sweep: %d sounds", len(segs))
		}
		s := x[segs[0][0]:segs[0][1]]
		third := len(s) / 3
		if freq(s[:third], rate) < freq(s[2*third:], rate) {
			return "rising"
		}
		return "falling"
	}
	t.Fatalf("unknown task %s", task)
	return ""
}

// The same options write the same files; another seed writes others.
func TestGenerateIsDeterministic(t *testing.T) {
	gen := func(seed uint64) map[string][]byte {
		dir := t.TempDir()
		if _, err := Generate(Options{Format: "mmau", N: 6, Seed: seed, Out: dir}); err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				b, _ := os.ReadFile(p)
				rel, _ := filepath.Rel(dir, p)
				files[rel] = b
			}
			return nil
		})
		return files
	}
	a, b, c := gen(1), gen(1), gen(2)
	if len(a) != 7 {
		t.Fatalf("%d files, want 6 clips and an annotation", len(a))
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	if bytes.Equal(a["mmau-synth.json"], c["mmau-synth.json"]) {
		t.Error("seed does not change the output")
	}
}

// Clips come in varied rates, channel counts and encodings, so the sharder
// exercises its decoders and resampler.
func TestGenerateVariesAudio(t *testing.T) {
	dir := t.TempDir()
	res, err := Generate(Options{Format: "jsonl", N: 60, Seed: 9, Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := sources.Lookup("jsonl")
	entries, _ := f.Read(res.Annotation, sources.Options{})
	rates, chans, formats := map[int]bool{}, map[int]bool{}, map[string]bool{}
	for _, e := range entries {
		c, err := audio.Decode(e.Sample.AudioPath(dir))
		if err != nil {
			t.Fatal(err)
		}
		rates[c.SampleRate], chans[c.Channels], formats[c.Format] = true, true, true
	}
	if len(rates) < 5 || len(chans) != 2 || len(formats) < 3 {
		t.Errorf("little variety: rates %v channels %v formats %v", rates, chans, formats)
	}
}
