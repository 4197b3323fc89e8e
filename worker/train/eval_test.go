package train

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"earl/collective"
	"earl/kernels/cpu"
	"earl/shards/audio"
	"earl/worker/score"
)

// Eval on two ranks writes one prediction per question in shard order,
// whatever the split; each prediction's verdict is the rule applied to the
// answer extracted from its output; the tables count them; and greedy
// answers do not depend on the number of ranks.
func TestEvalTwoRanks(t *testing.T) {
	data := synthShards(t, "loudness", 12, 3, audio.Qwen25Omni)
	dir := warmModel(t, data.Path)
	run := func(world int) []Prediction {
		cfg := Default()
		cfg.Model.Path = dir
		cfg.Eval.Shards = data.Path
		cfg.Eval.Out = filepath.Join(t.TempDir(), "pred.jsonl")
		cfg.Eval.MaxCompletionLength = 24
		cfg.Eval.BatchPrompts = 4
		cfg.Eval.Limit = 11
		comms := collective.NewInProcess(world)
		var wg sync.WaitGroup
		errs := make([]error, world)
		reps := make([]*EvalResult, world)
		for r := range comms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reps[r], errs[r] = Eval(context.Background(), cpu.New(), cfg, comms[r], io.Discard)
			}()
		}
		wg.Wait()
		for r, err := range errs {
			if err != nil {
				t.Fatalf("%d ranks, rank %d: %v", world, r, err)
			}
		}
		f, err := os.Open(cfg.Eval.Out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var preds []Prediction
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var p Prediction
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			preds = append(preds, p)
		}
		correct := 0
		for i, p := range preds {
			if p.Index != i {
				t.Fatalf("%d ranks: prediction %d is of sample %d", world, i, p.Index)
			}
			ans, _ := score.Extract(p.Output, score.FallbackNone)
			want := ans != "" && score.Correct(score.RuleChoice, ans, p.Reference, p.Choices)
			if p.Answer != ans || p.Correct != want {
				t.Fatalf("%d ranks: prediction %+v: extracted %q, correct %v", world, p, ans, want)
			}
			if p.Correct {
				correct++
			}
		}
		if len(preds) != 11 {
			t.Fatalf("%d ranks: %d predictions for eval.limit 11", world, len(preds))
		}
		c, n := reps[0].Report.Accuracy()
		if c != correct || n != 11 {
			t.Fatalf("%d ranks: the report counts %d/%d, the predictions %d/11", world, c, n, correct)
		}
		js, err := os.ReadFile(filepath.Join(filepath.Dir(cfg.Eval.Out), "pred.json"))
		if err != nil {
			t.Fatal(err)
		}
		if r, err := score.ParseJSON(js); err != nil {
			t.Fatal(err)
		} else if c2, n2 := r.Accuracy(); c2 != c || n2 != n {
			t.Fatalf("pred.json counts %d/%d", c2, n2)
		}
		return preds
	}
	one, two := run(1), run(2)
	for i := range one {
		if one[i].Output != two[i].Output {
			t.Fatalf("sample %d: %q on one rank, %q on two", i, one[i].Output, two[i].Output)
		}
	}
}
