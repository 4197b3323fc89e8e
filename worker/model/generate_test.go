package model_test

import (
	"slices"
	"testing"

	"earl/worker/model"
)

func genPrompts(m *model.Model) []model.Prompt {
	b, spans := testBatch(m, 13)
	var ps []model.Prompt
	for s, sp := range spans {
		ps = append(ps, model.Prompt{Tokens: b.Tokens[sp[0]:sp[1]], Audio: b.Audio[s : s+1], Seed: uint64(100 + s)})
	}
	return ps
}

// Greedy decoding with the KV cache equals the argmax of a full forward
// recomputation at every step.
func TestGreedyMatchesFullRecomputation(t *testing.T) {
	for _, f := range []model.Family{model.Qwen2Audio, model.Qwen25Omni} {
		m := tinyModel(t, f, model.Freeze{Audio: true, Projector: true, Text: true}, 17)
		g, err := m.NewGenerator(model.GenLimits{Slots: 4, MaxLen: 200})
		if err != nil {
			t.Fatal(err)
		}
		ps := genPrompts(m)
		outs, err := g.Generate(ps, 1, model.SampleOptions{MaxNewTokens: 12})
		if err != nil {
			t.Fatal(err)
		}
		v := m.Cfg.Text.VocabSize
		for i, p := range ps {
			seq := append([]int32(nil), p.Tokens...)
			for k, tok := range outs[i] {
				b := &model.Batch{Tokens: seq, Seqs: kernelsSeqs(len(seq)), Audio: p.Audio}
				logits, err := m.Logits(b)
				if err != nil {
					t.Fatal(err)
				}
				last := logits[(len(seq)-1)*v : len(seq)*v]
				best := 0
				for j, x := range last {
					if x > last[best] {
						best = j
					}
				}
				if int32(best) != tok {
					t.Fatalf("%s prompt %d step %d: cached decoding chose %d, full recomputation %d", f, i, k, tok, best)
				}
				seq = append(seq, tok)
			}
		}
	}
}

// Sampling: forking a prefilled prompt into G samples gives exactly the
// samples of G separate copies of the prompt with the matching seeds, and
// a prompt's samples do not depend on what else is in the batch.
func TestForkingAndBatchIndependence(t *testing.T) {
	m := tinyModel(t, model.Qwen2Audio, model.Freeze{Audio: true, Projector: true, Text: true}, 19)
	g, err := m.NewGenerator(model.GenLimits{Slots: 8, MaxLen: 200})
	if err != nil {
		t.Fatal(err)
	}
	opt := model.SampleOptions{Temperature: 1.0, TopK: 50, TopP: 0.95, MaxNewTokens: 16, Stop: []int32{303}}
	ps := genPrompts(m)
	forked, err := g.Generate(ps[:1], 3, opt)
	if err != nil {
		t.Fatal(err)
	}
	distinct := false
	for j := 0; j < 3; j++ {
		p := ps[0]
		p.Seed = model.SampleSeed(ps[0].Seed, j)
		alone, err := g.Generate([]model.Prompt{p}, 1, opt)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(alone[0], forked[j]) {
			t.Errorf("sample %d: forked %v, separate %v", j, forked[j], alone[0])
		}
		distinct = distinct || !slices.Equal(forked[j], forked[0])
	}
	if !distinct {
		t.Error("three samples at temperature 1 are identical: the samples do not use their own seeds")
	}
	both, err := g.Generate(ps, 2, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(both[0], forked[0]) || !slices.Equal(both[1], forked[1]) {
		t.Errorf("prompt 0's samples changed when prompt 1 joined the batch:\n%v\n%v", both[:2], forked[:2])
	}
	for _, s := range both {
		if len(s) > 16 {
			t.Errorf("sample of %d tokens exceeds MaxNewTokens", len(s))
		}
		for i, tok := range s {
			if tok == 303 && i != len(s)-1 {
				t.Errorf("sample continues after the stop token: %v", s)
			}
		}
	}
}
