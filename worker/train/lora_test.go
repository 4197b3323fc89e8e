package train

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"earl/kernels"
	"earl/kernels/cpu"
	"earl/shards/audio"
	"earl/worker/ckpt"
	"earl/worker/model"
)

// GRPO with LoRA: the reference is the base model (KL exactly 0 while the
// adapters are still zero, then positive), only the adapters move, the run
// resumes bit for bit, and a checkpoint's merged weights (export, eval)
// give the same log-probabilities as the base model with the adapters.
func TestLoRAGRPO(t *testing.T) {
	data := synthShards(t, "loudness", 12, 3, audio.Qwen25Omni)
	base := warmModel(t, data.Path)
	lora := func() *Config {
		cfg := grpoConfig(t, base, data.Path)
		cfg.Model.LoRARank, cfg.Model.LoRAAlpha = 4, 8
		cfg.Model.FreezeAudio = true
		return cfg
	}
	straight := lora()
	if err := Run(context.Background(), cpu.New(), straight, solo{}, Options{}); err != nil {
		t.Fatal(err)
	}

	// The reference policy is the base model.
	f, err := os.Open(filepath.Join(straight.RunDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var kl []float64
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var m Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		kl = append(kl, m.KL)
	}
	f.Close()
	if len(kl) != 6 || kl[0] != 0 || slices.Max(kl) <= 0 {
		t.Errorf("KL per step %v: want exactly 0 at step 1 (adapters B = 0: policy = base) and positive later", kl)
	}

	// Only the adapters move.
	load := func(dir string) (w, l []float32) {
		t.Helper()
		bufs, err := ckpt.LoadWeights(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bufs {
			switch b.Name {
			case "weights":
				w = b.Values
			case "lora":
				l = b.Values
			}
		}
		if w == nil || l == nil {
			t.Fatalf("%s: buffers %d, want weights and lora", dir, len(bufs))
		}
		return w, l
	}
	w3, l3 := load(ckpt.StepDir(straight.RunDir, 3))
	w6, l6 := load(ckpt.StepDir(straight.RunDir, 6))
	if !slices.Equal(w3, w6) {
		t.Error("the base weights changed under LoRA training")
	}
	if slices.Equal(l3, l6) {
		t.Fatal("steps 4-6 did not move the adapters")
	}

	// Bitwise resume.
	split := lora()
	runSplit(t, split, 3, 6)
	if _, l := load(ckpt.StepDir(split.RunDir, 6)); !slices.Equal(l, l6) {
		t.Error("the resumed LoRA run's adapters differ from the straight run's")
	}

	// Merged weights = base + adapters, through two different computations:
	// the model's LoRA forward (W x + s B (A x)) and the exported (W + s B A).
	exported := filepath.Join(t.TempDir(), "merged")
	if err := Export(ckpt.StepDir(straight.RunDir, 6), base, exported, ckpt.F32); err != nil {
		t.Fatal(err)
	}
	lim := model.Limits{MaxTokens: 64, MaxSeqs: 1, MaxAudio: 1, MaxAudioRows: 200}
	frozen := model.Freeze{Audio: true, Projector: true, Text: true}
	withLoRA, err := model.Load(cpu.New(), base, frozen, lim)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := withLoRA.AddLoRA(model.LoRAConfig{Rank: 4, Alpha: 8, Seed: straight.Seed})
	if err != nil {
		t.Fatal(err)
	}
	copy(kernels.Host(ad.Buf), l6)
	merged, err := model.Load(cpu.New(), exported, frozen, lim)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := model.Load(cpu.New(), base, frozen, lim)
	if err != nil {
		t.Fatal(err)
	}
	b := &model.Batch{Seqs: kernels.Seqs{Offsets: []int32{0, 40}}}
	for i := range 40 {
		b.Tokens = append(b.Tokens, int32((i*37+11)%300))
	}
	for i := range 40 {
		tg := int32(-1)
		if i+1 < 40 {
			tg = b.Tokens[i+1]
		}
		b.Targets = append(b.Targets, tg)
	}
	logp := func(m *model.Model) []float32 {
		out, err := m.Forward(b)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Clone(out.LogProbs)
	}
	lA, lM, lB := logp(withLoRA), logp(merged), logp(plain)
	var dMerge, dBase float64
	for i := range lA {
		dMerge = math.Max(dMerge, math.Abs(float64(lA[i]-lM[i])))
		dBase = math.Max(dBase, math.Abs(float64(lA[i]-lB[i])))
	}
	t.Logf("max |logp diff|: adapters vs merged %.2e, adapters vs base %.2e", dMerge, dBase)
	if dMerge > 2e-5 || dBase < 20*dMerge {
		t.Errorf("merged weights: log-probs %.2e from the adapters' (base %.2e away)", dMerge, dBase)
	}

	// worker eval of the checkpoint answers as the exported model does.
	evalOf := func(modelDir, checkpoint string) string {
		cfg := Default()
		cfg.Model.Path = modelDir
		cfg.Eval.Shards = data.Path
		cfg.Eval.Checkpoint = checkpoint
		cfg.Eval.Out = filepath.Join(t.TempDir(), "pred.jsonl")
		cfg.Eval.MaxCompletionLength = 16
		cfg.Eval.Limit = 4
		if _, err := Eval(context.Background(), cpu.New(), cfg, solo{}, nil); err != nil {
			t.Fatal(err)
		}
		var outs []string
		f, _ := os.Open(cfg.Eval.Out)
		defer f.Close()
		for sc := bufio.NewScanner(f); sc.Scan(); {
			var p Prediction
			json.Unmarshal(sc.Bytes(), &p)
			outs = append(outs, p.Output)
		}
		return strings.Join(outs, "\n")
	}
	if a, b := evalOf(base, ckpt.StepDir(straight.RunDir, 6)), evalOf(exported, ""); a != b || a == "" {
		t.Errorf("eval of the LoRA checkpoint:\n%s\nof its export:\n%s", a, b)
	}
}
