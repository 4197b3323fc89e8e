package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"earl/worker/ckpt"
)

// Checkpoint is an opened Hugging Face model directory whose tensors have
// been checked against its config.json.
type Checkpoint struct {
	Dir     string
	Config  *Config
	Weights *ckpt.Dir
}

// Open loads DIR/config.json and the safetensors weights (one file or
// sharded with an index) and checks that every tensor the configuration
// implies is present with its shape, and nothing else is (apart from the
// parts earl skips, such as Omni's talker). All problems are reported in
// one error.
func Open(dir string) (*Checkpoint, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	w, err := ckpt.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	have := map[string][]int{}
	for _, t := range w.Tensors() {
		have[t.Name] = t.Shape
	}
	if err := cfg.Check(have); err != nil {
		w.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return &Checkpoint{Dir: dir, Config: cfg, Weights: w}, nil
}

// Close releases the weight files.
func (c *Checkpoint) Close() error { return c.Weights.Close() }

// Presets are named model sizes for `tools init-model`: random models with
// the real architecture, small enough for CPU tests and demos. MinVocab
// pads the embedding beyond the tokenizer's ids, as Qwen's vocabularies
// are padded. `small` is the shape issue 4's benchmark names (LM hidden
// 512, 6 layers, 8 heads, 2 KV heads, intermediate 1408, vocab 4096).
var Presets = map[string]struct {
	Text     TextConfig
	Audio    AudioConfig
	MinVocab int
}{
	"tiny": {
		Text:  TextConfig{HiddenSize: 64, IntermediateSize: 176, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, MaxPositions: 4096},
		Audio: AudioConfig{NumMelBins: 128, Layers: 2, Heads: 4, FFNDim: 128, DModel: 64, MaxSourcePositions: 1500},
	},
	"small": {
		Text:     TextConfig{HiddenSize: 512, IntermediateSize: 1408, NumLayers: 6, NumHeads: 8, NumKVHeads: 2, MaxPositions: 8192},
		Audio:    AudioConfig{NumMelBins: 128, Layers: 4, Heads: 4, FFNDim: 1024, DModel: 256, MaxSourcePositions: 1500},
		MinVocab: 4096,
	},
}

// PresetNames lists the presets.
func PresetNames() []string { return []string{"tiny", "small"} }

// NewConfig builds a configuration of a preset size for a family, with the
// given vocabulary size and special token ids.
func NewConfig(f Family, preset string, vocabSize, audioID, audioStartID, audioEndID int, eos []int) (*Config, error) {
	p, ok := Presets[preset]
	if !ok {
		return nil, fmt.Errorf("unknown model preset %q: use one of %v", preset, PresetNames())
	}
	c := &Config{Family: f, Text: p.Text, Audio: p.Audio, AudioTokenID: audioID, AudioStartID: audioStartID, AudioEndID: audioEndID, TorchDType: "bfloat16"}
	c.Text.VocabSize = max(vocabSize, p.MinVocab)
	c.Text.HiddenAct, c.Text.RMSNormEps = "silu", 1e-6
	c.Text.EOSTokenIDs = eos
	c.Audio.Activation = "gelu"
	switch f {
	case Qwen2Audio:
		c.Architecture = "Qwen2AudioForConditionalGeneration"
		c.Text.RopeTheta = 10000
	case Qwen25Omni:
		c.Architecture = "Qwen2_5OmniThinkerForConditionalGeneration"
		c.Text.RopeTheta = 1e6
		c.Audio.NWindow = 100
		c.Audio.OutputDim = c.Text.HiddenSize
		// Omni splits head_dim/2 rotary pairs 16:24:24 at head_dim 128;
		// keep the same proportions.
		half := c.HeadDim() / 2
		t := half / 4
		c.Text.MRopeSection = []int{t, (half - t) / 2, half - t - (half-t)/2}
	default:
		return nil, fmt.Errorf("unknown family %q", f)
	}
	return c, c.validate()
}

// RandomWeights initialises every tensor as transformers' _init_weights
// does: linear, conv and embedding weights from N(0, 0.02^2), biases zero,
// norm weights one and norm biases zero. The same seed gives the same
// weights.
func (c *Config) RandomWeights(seed uint64, dtype ckpt.DType) []ckpt.Tensor {
	r := rand.New(rand.NewPCG(seed, 0x1217))
	ws := c.Weights()
	out := make([]ckpt.Tensor, 0, len(ws))
	for _, w := range ws {
		if w.Optional {
			// Omni's audio_bos_eos_token is unused by the forward pass, and
			// a tied lm_head is the embedding matrix: neither is written.
			continue
		}
		v := make([]float32, w.Numel())
		switch {
		case strings.HasSuffix(w.Name, ".bias"):
			// zeros
		case strings.HasSuffix(w.Name, "embed_positions.weight"):
			copy(v, sinusoids(w.Shape[0], w.Shape[1]))
		case strings.Contains(w.Name, "norm") || strings.Contains(w.Name, "ln_post"):
			for i := range v {
				v[i] = 1
			}
		default:
			for i := range v {
				v[i] = float32(0.02 * r.NormFloat64())
			}
		}
		out = append(out, ckpt.Tensor{Name: w.Name, DType: dtype, Shape: w.Shape, Values: v})
	}
	return out
}

// sinusoids is Whisper's fixed position table, used to initialise
// Qwen2-Audio's learned one so that a random model starts from what the
// real one was trained from.
func sinusoids(length, channels int) []float32 {
	out := make([]float32, length*channels)
	half := channels / 2
	inc := math.Log(10000) / float64(half-1)
	for t := 0; t < length; t++ {
		for i := 0; i < half; i++ {
			a := float64(t) * math.Exp(-inc*float64(i))
			out[t*channels+i] = float32(math.Sin(a))
			out[t*channels+half+i] = float32(math.Cos(a))
		}
	}
	return out
}
