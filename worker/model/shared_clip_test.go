package model_test

import (
	"math"
	"testing"

	"earl/kernels/cpu"
	"earl/worker/model"
)

// sharedBatch is testBatch with both sequences reading the same clip: the
// same *audio.LogMel when shared, else a copy of it.
func sharedBatch(m *model.Model, shared bool) *model.Batch {
	b, _ := testBatch(m, 5)
	clip := b.Audio[0]
	// Give sequence 1 the audio run length of clip 0: rebuild its tokens.
	na := m.Cfg.AudioTokens(clip.Mel.ValidFrames)
	var toks, tgts []int32
	off := []int32{0}
	for s := 0; s < 2; s++ {
		seq := []int32{5, 6, int32(m.Cfg.AudioStartID)}
		for i := 0; i < na; i++ {
			seq = append(seq, int32(m.Cfg.AudioTokenID))
		}
		seq = append(seq, int32(m.Cfg.AudioEndID), int32(10+s), 11, int32(12+3*s), 13, 14)
		for i := range seq {
			tg := int32(-1)
			if i+1 < len(seq) && i >= len(seq)/2 {
				tg = seq[i+1]
			}
			tgts = append(tgts, tg)
		}
		toks = append(toks, seq...)
		off = append(off, int32(len(toks)))
	}
	b.Tokens, b.Targets, b.Seqs.Offsets = toks, tgts, off
	second := clip
	if !shared {
		cp := *clip.Mel
		cp.Data = append([]float32(nil), clip.Mel.Data...)
		second = model.Clip{Mel: &cp}
	}
	b.Audio = []model.Clip{clip, second}
	return b
}

// A clip given twice in one batch (the completions of one GRPO prompt) is
// encoded once; log-probabilities and every gradient equal those of two
// separate copies (whose path the finite-difference test checks).
func TestSharedClipEncodedOnce(t *testing.T) {
	for _, f := range []model.Family{model.Qwen2Audio, model.Qwen25Omni} {
		for _, c := range []struct {
			name string
			fr   model.Freeze
		}{{"full", model.Freeze{}}, {"audio-frozen", model.Freeze{Audio: true}}, {"text-only", model.Freeze{Audio: true, Projector: true}}} {
			name := string(f) + "/" + c.name
			m := tinyModel(t, f, c.fr, 11)
			run := func(shared bool) ([]float32, [][]float32) {
				out, err := m.Forward(sharedBatch(m, shared))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				lp := append([]float32(nil), out.LogProbs...)
				w := make([]float32, len(lp))
				for i := range w {
					w[i] = float32(1 + i%3)
				}
				m.ZeroGrad()
				if err := m.Backward(w, w); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				var gs [][]float32
				for _, tb := range m.Trainable() {
					gs = append(gs, append([]float32(nil), cpu.Floats(tb.Grad)...))
				}
				return lp, gs
			}
			lpCopy, gCopy := run(false)
			lpShared, gShared := run(true)
			for i := range lpCopy {
				if d := math.Abs(float64(lpCopy[i] - lpShared[i])); d > 1e-6 {
					t.Errorf("%s: log-prob %d: %g shared, %g copies", name, i, lpShared[i], lpCopy[i])
					break
				}
			}
			for k := range gCopy {
				var worst, scale float64
				for i := range gCopy[k] {
					worst = math.Max(worst, math.Abs(float64(gCopy[k][i]-gShared[k][i])))
					scale = math.Max(scale, math.Abs(float64(gCopy[k][i])))
				}
				if scale == 0 || worst > 1e-5*scale {
					t.Errorf("%s: gradient buffer %d: max |diff| %g, max |g| %g", name, k, worst, scale)
				}
			}
		}
	}
}

// The encoder holds one copy of a shared clip: a model whose encoder
// rows fit the clip once runs the shared batch and refuses the copies.
func TestSharedClipFitsEncoderOnce(t *testing.T) {
	for _, f := range []model.Family{model.Qwen2Audio, model.Qwen25Omni} {
		big := tinyModel(t, f, model.Freeze{}, 11)
		clip := sharedBatch(big, true).Audio[0]
		cfg := big.Cfg
		// The fewest encoder rows that take the clip once.
		var m *model.Model
		for rows := 1; rows <= 4000 && m == nil; rows++ {
			mm, err := model.New(cpu.New(), cfg, model.Freeze{}, model.Limits{MaxTokens: 256, MaxSeqs: 4, MaxAudio: 2, MaxAudioRows: rows})
			if err != nil {
				t.Fatal(err)
			}
			b := sharedBatch(mm, true)
			b.Tokens, b.Targets, b.Seqs.Offsets, b.Audio = b.Tokens[:b.Seqs.Offsets[1]], b.Targets[:b.Seqs.Offsets[1]], b.Seqs.Offsets[:2], b.Audio[:1]
			if _, err := mm.Forward(b); err == nil {
				m = mm
			}
		}
		if m == nil {
			t.Fatalf("%s: no encoder size takes the clip (%d valid frames)", f, clip.Mel.ValidFrames)
		}
		if _, err := m.Forward(sharedBatch(m, true)); err != nil {
			t.Errorf("%s: the shared clip did not fit once: %v", f, err)
		}
		if _, err := m.Forward(sharedBatch(m, false)); err == nil {
			t.Errorf("%s: two copies of the clip fit an encoder sized for one: the test shows nothing", f)
		}
	}
}
