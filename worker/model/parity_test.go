package model_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"earl/kernels/cpu"
	"earl/worker/ckpt"
	"earl/worker/model"
	"earl/worker/model/internal/ref64"
)

// Parity with the independent float64 re-derivation of the transformers
// forward (ref64), on bf16 checkpoints written in the Hugging Face layout
// and loaded through the same path as real ones: logits, and every
// intermediate activation ref64 exposes, compared in float64.
func TestParityWithFloat64Reference(t *testing.T) {
	for _, c := range []struct {
		family model.Family
		preset string
		tol    float64
		// shrink scales the token embeddings and the audio convolutions
		// down, so the norms' inputs have variances near their eps and an
		// eps mistake shows (with random weights it would hide under the
		// inputs' variance).
		shrink float32
	}{
		{model.Qwen2Audio, "tiny", 5e-5, 1},
		{model.Qwen25Omni, "tiny", 5e-5, 1},
		{model.Qwen2Audio, "tiny", 5e-5, 1e-3},
		{model.Qwen25Omni, "tiny", 5e-5, 1e-3},
		{model.Qwen2Audio, "small", 3e-4, 1},
		{model.Qwen25Omni, "small", 3e-4, 1},
	} {
		name := fmt.Sprintf("%s/%s/shrink %g", c.family, c.preset, c.shrink)
		cfg, err := model.NewConfig(c.family, c.preset, 320, 300, 301, 302, []int{303})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		tensors := cfg.RandomWeights(21, ckpt.BF16)
		for _, tt := range tensors {
			if strings.HasSuffix(tt.Name, "embed_tokens.weight") || strings.Contains(tt.Name, "audio_tower.conv") ||
				strings.HasSuffix(tt.Name, "embed_positions.weight") {
				for i := range tt.Values {
					tt.Values[i] *= c.shrink
				}
			}
		}
		if err := model.WriteHF(dir, cfg, tensors, nil, 0); err != nil {
			t.Fatal(err)
		}
		m, err := model.Load(cpu.New(), dir, model.Freeze{Audio: true, Text: true, Projector: true},
			model.Limits{MaxTokens: 256, MaxSeqs: 2, MaxAudio: 2, MaxAudioRows: 600})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := ref64.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, spans := testBatch(m, 9)
		logits, err := m.Logits(b)
		if err != nil {
			t.Fatal(err)
		}
		v, h := cfg.Text.VocabSize, cfg.Text.HiddenSize
		worst := map[string]float64{}
		cmp := func(key string, got []float32, row0 int, want [][]float64) {
			for i, w := range want {
				for j, x := range w {
					d := math.Abs(float64(got[(row0+i)*len(w)+j]) - x)
					worst[key] = math.Max(worst[key], d)
				}
			}
		}
		audioRow := 0
		for s, sp := range spans {
			ids := make([]int, sp[1]-sp[0])
			for i := range ids {
				ids[i] = int(b.Tokens[sp[0]+i])
			}
			mel := b.Audio[s].Mel
			data, frames := mel.Padded(), mel.TotalFrames
			if c.family == model.Qwen25Omni {
				data, frames = mel.Valid(), mel.ValidFrames
			}
			a := ref64.Audio{ValidFrames: mel.ValidFrames, Mel: make([][]float64, mel.Mels)}
			for k := range a.Mel {
				a.Mel[k] = make([]float64, frames)
				for f := 0; f < frames; f++ {
					a.Mel[k][f] = float64(data[k*frames+f])
				}
			}
			want, acts, err := ref.Forward(ids, []ref64.Audio{a})
			if err != nil {
				t.Fatal(err)
			}
			cmp("logits", logits, sp[0], want)
			_ = v
			emb := acts["audio.0.out"]
			cmp("audio embeddings", m.AudioEmbeddings(), audioRow, emb)
			audioRow += len(emb)
			cmp("embeds", m.Hidden(0), sp[0], acts["embeds"])
			for l := 0; l < cfg.Text.NumLayers; l++ {
				cmp(fmt.Sprintf("decoder layer %d", l), m.Hidden(l+1), sp[0], acts[fmt.Sprintf("layer.%d", l)])
			}
		}
		_ = h
		t.Logf("%s: max |earl - float64| logits %.2e, audio embeddings %.2e, last layer %.2e", name, worst["logits"],
			worst["audio embeddings"], worst[fmt.Sprintf("decoder layer %d", cfg.Text.NumLayers-1)])
		if worst["logits"] > c.tol {
			t.Errorf("%s: logits differ by %.3g > %.0e; activations: %v", name, worst["logits"], c.tol, worst)
		}
		// Intermediate activations must agree ten times tighter than the
		// logits: mistakes such as a wrong layer-norm eps or the tanh GELU
		// move logits by only 2e-5..3e-3 but show up here first.
		for k, d := range worst {
			if d > c.tol/10 {
				t.Errorf("%s: %s differ by %.3g > %.0e", name, k, d, c.tol/10)
			}
		}
	}
}
