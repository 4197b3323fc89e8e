package synth

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"earl/shards/audio"
	"earl/shards/sources"
)

// Options configure Generate.
type Options struct {
	Task   string // a name in Tasks, or "mixed"
	Format string // source format to write (sources.Names)
	N      int
	Seed   uint64
	Out    string
	// Rates and Channels are drawn from per clip; defaults cover the rates
	// real datasets use and mono / stereo.
	Rates    []int
	Channels []int
	// MinSeconds and MaxSeconds bound the clip length (defaults 1 and 6).
	MinSeconds, MaxSeconds float64
	// Encodings are drawn from per clip (default mostly PCM16 with some
	// 24-bit, float and extensible files to exercise the decoders).
	Encodings []audio.Encoding
}

// Result says what Generate wrote.
type Result struct {
	Annotation string // the annotation file to pass as --src
	AudioRoot  string // the directory to pass as --audio-root
	Samples    int
	Split      string // for soundmind
}

// DefaultRates are the sample rates clips are drawn from.
var DefaultRates = []int{8000, 16000, 22050, 32000, 44100, 48000}

func (o *Options) defaults() error {
	if o.Task == "" {
		o.Task = "mixed"
	}
	if o.N <= 0 {
		return fmt.Errorf("--n must be positive, got %d", o.N)
	}
	if len(o.Rates) == 0 {
		o.Rates = DefaultRates
	}
	if len(o.Channels) == 0 {
		o.Channels = []int{1, 2}
	}
	if o.MinSeconds <= 0 {
		o.MinSeconds = 1
	}
	if o.MaxSeconds <= 0 {
		o.MaxSeconds = max(6, o.MinSeconds)
	}
	if o.MaxSeconds < o.MinSeconds {
		return fmt.Errorf("max duration %g s below min duration %g s", o.MaxSeconds, o.MinSeconds)
	}
	for _, r := range o.Rates {
		if r < 8000 {
			return fmt.Errorf("sample rate %d too low: the tones need at least 8000 Hz", r)
		}
	}
	if _, err := sources.Lookup(o.Format); err != nil {
		return err
	}
	if o.Task != "mixed" && !contains(Tasks, o.Task) {
		return fmt.Errorf("unknown synth task %q: use mixed or one of %v", o.Task, Tasks)
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// item is a generated question with its id and audio path.
type item struct {
	*question
	id    string
	audio string // path relative to the audio root
}

// Generate writes N questions with their audio under Out in the chosen
// source format. The same options give the same files.
func Generate(o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	res := &Result{AudioRoot: o.Out, Samples: o.N}
	items := make([]item, o.N)
	for i := range items {
		rate := o.Rates[r.IntN(len(o.Rates))]
		ch := o.Channels[r.IntN(len(o.Channels))]
		enc := pickEncoding(r, o.Encodings)
		secs := o.MinSeconds + (o.MaxSeconds-o.MinSeconds)*r.Float64()
		q, err := generate(o.Task, r, rate, secs)
		if err != nil {
			return nil, err
		}
		it := item{question: q, id: fmt.Sprintf("synth-%s-%06d", q.task, i)}
		switch o.Format {
		case "soundmind":
			res.Split = "dev"
			it.id = fmt.Sprintf("%04d", i+1)
			it.audio = filepath.Join("dev", it.id, "question.wav")
		case "avqa":
			it.audio = filepath.Join("audio", fmt.Sprintf("synth_%06d.wav", i))
		case "audsem":
			// AudSem names clips by file name alone, beside each other.
			it.audio = it.id + ".wav"
		default:
			it.audio = filepath.Join("audio", it.id+".wav")
		}
		if err := writeClip(filepath.Join(o.Out, it.audio), q.clip, ch, enc, r); err != nil {
			return nil, err
		}
		items[i] = it
	}
	name, recs := annotations(o.Format, items, r)
	res.Annotation = filepath.Join(o.Out, name)
	if err := writeRecords(res.Annotation, recs, strings.HasSuffix(name, ".jsonl")); err != nil {
		return nil, err
	}
	return res, nil
}

func pickEncoding(r *rand.Rand, encs []audio.Encoding) audio.Encoding {
	if len(encs) > 0 {
		return encs[r.IntN(len(encs))]
	}
	switch v := r.IntN(10); {
	case v < 6:
		return audio.PCM16
	case v < 7:
		return audio.PCM24
	case v < 8:
		return audio.Float32
	case v < 9:
		return audio.PCM32
	default:
		return audio.PCM8
	}
}

// writeClip writes the clip as a WAV file with ch channels; extra channels
// carry the same signal at slightly different gains, as a stereo recording
// of a centred source would.
func writeClip(path string, c *clip, ch int, enc audio.Encoding, r *rand.Rand) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	inter := make([]float32, len(c.x)*ch)
	gains := make([]float64, ch)
	for k := range gains {
		gains[k] = 1 - 0.1*float64(k)
	}
	for i, v := range c.x {
		for k := 0; k < ch; k++ {
			inter[i*ch+k] = float32(math.Max(-1, math.Min(1, v*gains[k])))
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	ext := r.IntN(8) == 0 // some files use WAVE_FORMAT_EXTENSIBLE
	err = audio.WriteWAV(w, inter, c.rate, ch, enc, ext || ch > 2)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeRecords(path string, recs []any, jsonl bool) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if jsonl {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				f.Close()
				return err
			}
		}
	} else {
		b, err := json.MarshalIndent(recs, "", "  ")
		if err != nil {
			f.Close()
			return err
		}
		w.Write(b)
		w.WriteByte('\n')
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// letters labels choices as the embedded-choice formats do.
const letters = "ABCDEFGH"

func embedded(q *question) (text, answer string) {
	var b strings.Builder
	b.WriteString(q.text)
	b.WriteString("\nChoices:")
	for i, c := range q.choices {
		fmt.Fprintf(&b, "\n%c. %s", letters[i], c)
	}
	return b.String(), fmt.Sprintf("%c. %s", letters[q.answer], q.choices[q.answer])
}

// fourChoices pads a two-way question to MMSU's four options with answers
// that are never right.
func fourChoices(q *question) []string {
	c := append([]string(nil), q.choices...)
	for _, extra := range []string{"they are the same", "there is no sound", "it cannot be told", "both"} {
		if len(c) == 4 {
			break
		}
		c = append(c, extra)
	}
	return c
}

// annotations renders the items in a source's own record layout and
// returns the annotation file name.
func annotations(format string, items []item, r *rand.Rand) (string, []any) {
	recs := make([]any, len(items))
	for i, it := range items {
		q := it.question
		switch format {
		case "avqa":
			recs[i] = map[string]any{
				"id": 100000 + i, "video_name": strings.TrimSuffix(filepath.Base(it.audio), ".wav"), "video_id": i,
				"question_text": q.text, "multi_choice": q.choices, "answer": q.answer,
				"question_relation": "Both", "question_type": q.category, "dataset_name": "AVQA-synth", "audio_path": it.audio,
			}
		case "mmau":
			recs[i] = map[string]any{
				"id": it.id, "audio_id": "./" + it.audio, "question": q.text, "choices": q.choices,
				"answer": q.choices[q.answer], "dataset": "earl-synth", "task": "sound", "split": "test-mini",
				"category": "Reasoning", "sub-category": q.category, "difficulty": []string{"easy", "medium", "hard"}[r.IntN(3)],
			}
		case "mmsu":
			c := fourChoices(q)
			recs[i] = map[string]any{
				"id": it.id, "audio_path": it.audio, "question": q.text,
				"choice_a": c[0], "choice_b": c[1], "choice_c": c[2], "choice_d": c[3], "answer_gt": c[q.answer],
				"task_name": q.task, "category": "perception", "sub-category": "paralinguistics", "sub-sub-category": q.category,
			}
		case "audsem":
			text, ans := embedded(q)
			recs[i] = map[string]any{
				"file_name": it.audio, "question": text, "answer": ans, "thinking": q.explanation,
				"semantic_elements": "tones: " + q.category,
			}
		case "countingqa":
			recs[i] = map[string]any{"id": it.id, "sound": it.audio, "question": q.text, "answer": q.choices[q.answer]}
		case "soundmind":
			truth := r.IntN(2) == 0
			claimed := q.choices[q.answer]
			if !truth {
				claimed = q.choices[(q.answer+1)%len(q.choices)]
			}
			label, word := 1, "entailed"
			if !truth {
				label, word = 0, "not entailed"
			}
			recs[i] = map[string]any{
				"id": it.id,
				"user_content": fmt.Sprintf("Listen to the audio and decide whether the conclusion follows. Premise: the clip answers the question %q. Conclusion is %q. Your task is to decide is the conclusion 'entailed' or 'not-entailed' based on these premises",
					q.text, "The answer is "+claimed+"."),
				"answer": q.explanation + "\n\nAnswer: " + word + ".",
				"label":  label,
			}
		default: // jsonl
			recs[i] = map[string]any{
				"id": it.id, "audio": it.audio, "question": q.text, "choices": q.choices, "answer": q.choices[q.answer],
				"task": q.task, "category": q.category, "meta": map[string]any{"generator": "earl tools synth"},
			}
		}
	}
	switch format {
	case "avqa":
		return "train.jsonl", recs
	case "mmau":
		return "mmau-synth.json", recs
	case "mmsu":
		return "mmsu-synth.jsonl", recs
	case "audsem":
		return "audsem-mc_qa.json", recs
	case "countingqa":
		return "countingqa.json", recs
	case "soundmind":
		return "dev.jsonl", recs
	}
	return "synth.jsonl", recs
}

// FillAudio writes a short synthetic clip at every audio path an existing
// annotation file references, so real annotations (such as MMAU test-mini)
// can be sharded without their audio. Existing files are left alone unless
// overwrite is set. It returns the number of clips written.
func FillAudio(format, annotation, root string, seed uint64, overwrite bool) (int, error) {
	f, err := sources.Lookup(format)
	if err != nil {
		return 0, err
	}
	entries, err := f.Read(annotation, sources.Options{})
	if err != nil {
		return 0, err
	}
	r := rand.New(rand.NewPCG(seed, 0xf111))
	n := 0
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Sample.Audio == "" {
			continue
		}
		p := e.Sample.AudioPath(root)
		if seen[p] {
			continue
		}
		seen[p] = true
		if _, err := os.Stat(p); err == nil && !overwrite {
			continue
		}
		q, err := generate("mixed", r, 16000, 0.5+r.Float64())
		if err != nil {
			return n, err
		}
		if err := writeClip(p, q.clip, 1, audio.PCM16, r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
