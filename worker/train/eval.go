package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"earl/collective"
	"earl/kernels"
	"earl/shards"
	"earl/worker/ckpt"
	"earl/worker/model"
	"earl/worker/score"
)

// Prediction is one line of an eval's predictions JSONL.
type Prediction struct {
	Index       int      `json:"index"` // the sample's index in the shard directory
	ID          string   `json:"id"`
	Source      string   `json:"source,omitempty"`
	Sample      int      `json:"sample"` // k: which of the prompt's samples
	Output      string   `json:"output"`
	Answer      string   `json:"answer"`    // extracted from <answer>, or "" when absent
	Reference   string   `json:"reference"` // the reference answer
	Choices     []string `json:"choices,omitempty"`
	Correct     bool     `json:"correct"`
	Truncated   bool     `json:"truncated,omitempty"`
	Task        string   `json:"task,omitempty"`
	Categories  []string `json:"categories,omitempty"`
	SubCategory string   `json:"sub_category,omitempty"`
	Difficulty  string   `json:"difficulty,omitempty"`
}

// EvalResult is what Eval measured (rank 0's view of the whole job).
type EvalResult struct {
	Report *score.Report
	Out    string
}

// Eval answers every question of cfg.Eval.Shards (or its first
// cfg.Eval.Limit) with the model of cfg.Eval.Checkpoint (a training
// checkpoint directory, or empty for cfg.Model.Path): greedy with one
// sample, sampled at cfg.Eval.Temperature with more. Ranks split the
// samples into contiguous ranges; rank 0 gathers their predictions into
// cfg.Eval.Out (JSONL) and the accuracy tables beside it (.txt and .json).
func Eval(ctx context.Context, dev kernels.Device, cfg *Config, comm collective.Comm, log io.Writer) (*EvalResult, error) {
	if log == nil {
		log = os.Stderr
	}
	e := cfg.Eval
	if e.Shards == "" || e.Out == "" {
		return nil, fmt.Errorf("eval.shards and eval.out are required")
	}
	if e.Samples < 1 || e.BatchPrompts < 1 || e.MaxCompletionLength < 1 {
		return nil, fmt.Errorf("eval: samples, batch_prompts and max_completion_length must be at least 1")
	}
	data, err := shards.Open(e.Shards)
	if err != nil {
		return nil, fmt.Errorf("eval.shards: %w", err)
	}
	defer data.Close()
	p, err := loadPrompter(cfg)
	if err != nil {
		return nil, err
	}
	slots := e.BatchPrompts * e.Samples
	lim := model.Limits{MaxTokens: cfg.Model.MaxTokens, MaxSeqs: e.BatchPrompts, MaxAudio: e.BatchPrompts, MaxAudioRows: cfg.Model.MaxAudioRows}
	frozen := model.Freeze{Audio: true, Projector: true, Text: true}
	m, err := model.Load(dev, cfg.Model.Path, frozen, lim)
	if err != nil {
		return nil, err
	}
	name := cfg.Model.Path
	if e.Checkpoint != "" {
		if err := loadCheckpointWeights(m, e.Checkpoint); err != nil {
			return nil, err
		}
		name = e.Checkpoint
	}
	gen, err := m.NewGenerator(model.GenLimits{Slots: slots, MaxLen: cfg.Model.MaxPromptTokens + e.MaxCompletionLength})
	if err != nil {
		return nil, err
	}
	n := data.Len()
	if e.Limit > 0 && e.Limit < n {
		n = e.Limit
	}
	lo, cnt := collective.Range(n, comm.Rank(), comm.Size())
	part := fmt.Sprintf("%s.rank%05d.tmp", e.Out, comm.Rank())
	if err := os.MkdirAll(filepath.Dir(e.Out), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(part)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	temp := e.Temperature
	if e.Samples == 1 {
		temp = 0
	}
	opt := model.SampleOptions{Temperature: float32(temp), MaxNewTokens: e.MaxCompletionLength, Stop: p.Stop, Suppress: p.Suppress}
	if comm.Rank() == 0 {
		mode := "greedy"
		if temp > 0 {
			mode = fmt.Sprintf("%d samples at temperature %g", e.Samples, temp)
		}
		fmt.Fprintf(log, "eval %s on %s: %d questions over %d ranks, %s\n", name, e.Shards, n, comm.Size(), mode)
	}
	t0 := time.Now()
	local := score.NewReport("")
	for b := lo; b < lo+cnt; b += e.BatchPrompts {
		if err := ctx.Err(); err != nil {
			f.Close()
			os.Remove(part)
			return nil, err
		}
		hi := min(b+e.BatchPrompts, lo+cnt)
		var prompts []model.Prompt
		var recs []*shards.Record
		for i := b; i < hi; i++ {
			r, err := data.Record(i)
			if err != nil {
				f.Close()
				return nil, err
			}
			ids, clip, err := p.Prompt(r)
			if err != nil {
				f.Close()
				return nil, err
			}
			if len(ids) > cfg.Model.MaxPromptTokens {
				f.Close()
				return nil, fmt.Errorf("sample %s (index %d): prompt of %d tokens exceeds model.max_prompt_tokens %d", r.ID, i, len(ids), cfg.Model.MaxPromptTokens)
			}
			prompts = append(prompts, model.Prompt{Tokens: ids, Audio: []model.Clip{clip}, Seed: SampleSeed(cfg.Seed, -1, i)})
			recs = append(recs, r)
		}
		outs, err := gen.Generate(prompts, e.Samples, opt)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("eval samples %d..%d: %w", b, hi-1, err)
		}
		for j, o := range outs {
			r := recs[j/e.Samples]
			text := p.Completion(o)
			ans, _ := score.Extract(text, score.FallbackNone)
			ok := ans != "" && score.Correct(e.Rule, ans, r.Answer, r.Choices)
			pr := Prediction{Index: b + j/e.Samples, ID: r.ID, Source: r.Source, Sample: j % e.Samples, Output: text, Answer: ans,
				Reference: r.Answer, Choices: r.Choices, Correct: ok, Truncated: !p.Stopped(o), Task: r.Task, Categories: r.Categories,
				SubCategory: r.SubCategory, Difficulty: r.Difficulty}
			line, _ := json.Marshal(pr)
			w.Write(append(line, '\n'))
			local.Add(score.Verdict{Correct: ok, Task: r.Task, Categories: r.Categories, SubCategory: r.SubCategory, Difficulty: r.Difficulty})
		}
		if comm.Rank() == 0 {
			c, t := local.Accuracy()
			fmt.Fprintf(log, "eval: rank 0 %d/%d questions, accuracy so far %.1f%% (%.1fs)\n", hi-lo, cnt, 100*float64(c)/float64(max(t, 1)), time.Since(t0).Seconds())
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := comm.Barrier(); err != nil {
		return nil, err
	}
	res := &EvalResult{Out: e.Out}
	if comm.Rank() == 0 {
		if res.Report, err = mergePredictions(e.Out, comm.Size(), name); err != nil {
			return nil, err
		}
	}
	if err := comm.Barrier(); err != nil {
		return nil, err
	}
	return res, nil
}

// mergePredictions concatenates the ranks' parts (in rank order, which is
// sample order) into out through a temporary file, and writes the tables
// to out's .txt and .json siblings.
func mergePredictions(out string, world int, title string) (*score.Report, error) {
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, err
	}
	rep := score.NewReport(title)
	w := bufio.NewWriter(f)
	for r := 0; r < world; r++ {
		part := fmt.Sprintf("%s.rank%05d.tmp", out, r)
		pf, err := os.Open(part)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("eval: rank %d's predictions: %w", r, err)
		}
		sc := bufio.NewScanner(pf)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var p Prediction
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				pf.Close()
				f.Close()
				return nil, fmt.Errorf("eval: %s: %w", part, err)
			}
			rep.Add(score.Verdict{Correct: p.Correct, Task: p.Task, Categories: p.Categories, SubCategory: p.SubCategory, Difficulty: p.Difficulty})
			w.Write(sc.Bytes())
			w.WriteByte('\n')
		}
		pf.Close()
		if err := sc.Err(); err != nil {
			f.Close()
			return nil, fmt.Errorf("eval: %s: %w", part, err)
		}
		os.Remove(part)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	// The .json table is written last, each file under a temporary name
	// first: its presence means the evaluation is complete (launcher eval
	// skips such tasks when an array is resubmitted).
	base := trimExt(out)
	var txt bytes.Buffer
	if err := rep.Write(&txt); err != nil {
		return nil, err
	}
	if err := writeAtomic(base+".txt", txt.Bytes()); err != nil {
		return nil, err
	}
	js, err := rep.JSON()
	if err != nil {
		return nil, err
	}
	return rep, writeAtomic(base+".json", js)
}

// writeAtomic writes b to path through a temporary file renamed into place.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func trimExt(p string) string {
	return p[:len(p)-len(filepath.Ext(p))]
}

// loadCheckpointWeights replaces a model's weights by a training
// checkpoint's (LoRA adapters merged).
func loadCheckpointWeights(m *model.Model, stepDir string) error {
	if _, err := ckpt.Verify(stepDir); err != nil {
		return err
	}
	bufs, err := ckpt.LoadWeights(stepDir)
	if err != nil {
		return err
	}
	var weights, lora *ckpt.Buffer
	for i := range bufs {
		switch bufs[i].Name {
		case "weights":
			weights = &bufs[i]
		case "lora":
			lora = &bufs[i]
		}
	}
	if weights == nil {
		return fmt.Errorf("%s holds no weights", stepDir)
	}
	if lora != nil {
		st, err := ckpt.ReadState(stepDir)
		if err != nil {
			return err
		}
		var meta loraMeta
		if raw, ok := st.Extra["trainer"]; ok {
			_ = json.Unmarshal(raw, &meta)
		}
		if meta.Rank == 0 {
			return fmt.Errorf("%s has LoRA adapters but no lora_rank in its trainer state", stepDir)
		}
		if err := mergeLoRA(weights, lora, float32(meta.Alpha/float64(meta.Rank))); err != nil {
			return fmt.Errorf("%s: %w", stepDir, err)
		}
	}
	return copyWeights(m, weights, stepDir)
}

// copyWeights copies a checkpoint's weights buffer into a model by tensor
// name: the layout depends on what trained (trained weights come first),
// so a model frozen differently holds the same tensors elsewhere.
func copyWeights(m *model.Model, weights *ckpt.Buffer, stepDir string) error {
	host := kernels.Host(m.P.Buf)
	if host == nil || len(weights.Values) != len(host) {
		return fmt.Errorf("%s: %d weights, the model has %d: a checkpoint of another model", stepDir, len(weights.Values), m.P.Buf.N)
	}
	mine := map[string]ckpt.TensorRef{}
	for _, r := range m.P.Refs() {
		mine[r.Name] = r
	}
	for _, r := range weights.Tensors {
		d, ok := mine[r.Name]
		n := 1
		for _, s := range r.Shape {
			n *= s
		}
		if !ok || !slices.Equal(d.Shape, r.Shape) {
			return fmt.Errorf("%s: tensor %s %v does not fit the model: a checkpoint of another model", stepDir, r.Name, r.Shape)
		}
		copy(host[d.Offset:d.Offset+n], weights.Values[r.Offset:r.Offset+n])
	}
	return nil
}
