package train

import (
	"math"
	"testing"

	"earl/kernels"
	"earl/kernels/cpu"
	"earl/shards/audio"
	"earl/worker/model"
)

// The SFT loss is the token mean of -log p over the target tokens, the
// targets are the answer in <answer> tags followed by <|im_end|>, and its
// gradient (fed to the model's backward as -1/N per token) matches finite
// differences of that loss.
func TestSFTLossAndGradient(t *testing.T) {
	dir := tinyModel(t, model.Qwen2Audio, 8)
	data := synthShards(t, "duration", 4, 4, audio.Qwen2Audio)
	cfg := Default()
	cfg.Mode = "sft"
	cfg.Model.Path = dir
	cfg.Model.MaxTokens = 300 // several micro-batches
	cfg.Train.PromptsPerRank = 3
	tr, err := Setup(cpu.New(), cfg, solo{}, dir, data)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := tr.Feed.Next()
	if err != nil {
		t.Fatal(err)
	}
	prompts, err := tr.prompts(slots)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []Seq
	for i, s := range slots {
		text, err := Target(s.Rec, "answer")
		if err != nil {
			t.Fatal(err)
		}
		if text != "<answer>"+s.Rec.Answer+"</answer>" {
			t.Fatalf("target %q for answer %q", text, s.Rec.Answer)
		}
		comp := tr.P.SFTTokens(text)
		if comp[len(comp)-1] != tr.P.ImEnd || tr.P.Tok.Decode(toInt(comp[:len(comp)-1])) != text {
			t.Fatalf("SFT tokens %v do not spell %q then <|im_end|>", comp, text)
		}
		seqs = append(seqs, Seq{Prompt: prompts[i].Tokens, Clip: prompts[i].Audio[0], Comp: comp})
	}
	if mbs, _ := packSeqs(tr.M, seqs); len(mbs) < 2 {
		t.Fatalf("%d micro-batches: the test wants several", len(mbs))
	}
	meanNLL := func() float64 {
		lp, err := logProbs(tr.M, seqs, 1)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		n := 0
		for _, row := range lp {
			for _, v := range row {
				s -= v
				n++
			}
		}
		return s / float64(n)
	}
	tr.M.ZeroGrad()
	loss, _, err := tr.sftGrad(seqs)
	if err != nil {
		t.Fatal(err)
	}
	if want := meanNLL(); math.Abs(loss-want) > 1e-6*math.Abs(want) {
		t.Fatalf("SFT loss %v, mean negative log-likelihood %v", loss, want)
	}
	grad := append([]float32(nil), kernels.Host(tr.M.P.Grad)...)
	w := kernels.Host(tr.M.P.Buf)
	for _, i := range topK(grad, 5) {
		const h = 1e-2
		w0 := w[i]
		w[i] = w0 + h
		lp := meanNLL()
		w[i] = w0 - h
		lm := meanNLL()
		w[i] = w0
		fd := (lp - lm) / (2 * h)
		if math.Abs(fd-float64(grad[i])) > 2e-3+2e-2*math.Abs(fd) {
			t.Errorf("weight %d: backward %.6g, finite differences %.6g", i, grad[i], fd)
		}
	}
}
