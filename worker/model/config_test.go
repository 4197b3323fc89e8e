package model

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func load(t *testing.T, name string) *Config {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The released Qwen2-Audio config omits most of text_config; transformers'
// Qwen2 defaults fill it in. The resulting model has the published 8.4B
// parameters.
func TestQwen2AudioReleasedConfig(t *testing.T) {
	c := load(t, "qwen2-audio-7b-instruct.config.json")
	want := TextConfig{VocabSize: 156032, HiddenSize: 4096, IntermediateSize: 11008, NumLayers: 32, NumHeads: 32,
		NumKVHeads: 32, HiddenAct: "silu", MaxPositions: 8192, RMSNormEps: 1e-5, RopeTheta: 10000,
		BOSTokenID: 151643, EOSTokenIDs: []int{151645}}
	if !reflect.DeepEqual(c.Text, want) {
		t.Errorf("text config\n got %+v\nwant %+v", c.Text, want)
	}
	wantA := AudioConfig{NumMelBins: 128, Layers: 32, Heads: 20, FFNDim: 5120, DModel: 1280, MaxSourcePositions: 1500, Activation: "gelu"}
	if c.Audio != wantA {
		t.Errorf("audio config\n got %+v\nwant %+v", c.Audio, wantA)
	}
	if c.Family != Qwen2Audio || c.Prefix != "" || c.AudioTokenID != 151646 || c.TorchDType != "bfloat16" || c.HeadDim() != 128 {
		t.Errorf("family %s prefix %q audio token %d dtype %s head dim %d", c.Family, c.Prefix, c.AudioTokenID, c.TorchDType, c.HeadDim())
	}
	var n int
	for _, w := range c.Weights() {
		n += w.Numel()
	}
	// Qwen2-Audio-7B-Instruct is published as an 8.4B-parameter model.
	if n < 8.35e9 || n > 8.45e9 {
		t.Errorf("%d parameters, published 8.4B", n)
	}
	t.Logf("Qwen2-Audio-7B-Instruct: %d tensors, %d parameters", len(c.Weights()), n)
}

func TestOmniFullModelAndThinkerAlone(t *testing.T) {
	c := load(t, "qwen2.5-omni-7b.config.json")
	if c.Family != Qwen25Omni || c.Prefix != "thinker." {
		t.Fatalf("family %s prefix %q", c.Family, c.Prefix)
	}
	if c.Text.NumKVHeads != 4 || c.Text.RopeTheta != 1e6 || !reflect.DeepEqual(c.Text.MRopeSection, []int{16, 24, 24}) ||
		c.Text.TieWordEmbeddings || c.Audio.NWindow != 100 || c.Audio.OutputDim != 3584 || c.HeadDim() != 128 {
		t.Errorf("parsed %+v / %+v", c.Text, c.Audio)
	}
	ws := c.Weights()
	names := map[string]bool{}
	for _, w := range ws {
		names[w.Name] = true
		if !strings.HasPrefix(w.Name, "thinker.") {
			t.Fatalf("weight %s lacks the thinker. prefix", w.Name)
		}
	}
	for _, n := range []string{"thinker.audio_tower.ln_post.weight", "thinker.audio_tower.proj.bias", "thinker.model.embed_tokens.weight",
		"thinker.model.layers.27.mlp.down_proj.weight", "thinker.lm_head.weight"} {
		if !names[n] {
			t.Errorf("expected weight %s missing", n)
		}
	}
	if names["thinker.audio_tower.embed_positions.weight"] {
		t.Error("Omni computes sinusoidal positions; it has no position table")
	}
	for _, skip := range []string{"talker.model.layers.0.mlp.up_proj.weight", "token2wav.code2wav_dit_model.x", "thinker.visual.blocks.0.attn.qkv.weight"} {
		if !c.Skipped(skip) {
			t.Errorf("%s should be skipped", skip)
		}
	}

	// The same thinker saved alone: no prefix, same weights otherwise.
	alone := *c
	alone.Prefix = ""
	b, err := alone.HFJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Prefix != "" || back.Architecture != "Qwen2_5OmniThinkerForConditionalGeneration" {
		t.Fatalf("thinker alone: prefix %q arch %s", back.Prefix, back.Architecture)
	}
	if w := back.Weights(); w[0].Name != "audio_tower.conv1.weight" || len(w) != len(ws) {
		t.Errorf("thinker alone: first weight %s, %d weights (full: %d)", w[0].Name, len(w), len(ws))
	}
}

// HFJSON and ParseConfig are inverses for every layout.
func TestConfigRoundTrip(t *testing.T) {
	for _, name := range []string{"qwen2-audio-7b-instruct.config.json", "qwen2.5-omni-7b.config.json"} {
		c := load(t, name)
		for _, prefix := range []string{c.Prefix, ""} {
			if c.Family == Qwen2Audio && prefix != "" {
				continue
			}
			c.Prefix = prefix
			b, err := c.HFJSON()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseConfig(b)
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, b)
			}
			back.Architecture = c.Architecture
			if !reflect.DeepEqual(back, c) {
				t.Errorf("%s prefix %q: round trip\n got %+v\nwant %+v", name, prefix, back, c)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{`{"model_type": "llama"}`, "unsupported model"},
		{`{"model_type": "qwen2_audio", "text_config": {"num_attention_heads": 30}}`, "not a multiple"},
		{`{"model_type": "qwen2_audio", "text_config": {"hidden_act": "gelu"}}`, `hidden_act "gelu"`},
		{`{"model_type": "qwen2_audio", "text_config": {"rope_scaling": {"type": "yarn", "factor": 4}}}`, `rope type "yarn"`},
		{`{"model_type": "qwen2_5_omni"}`, "without thinker_config"},
		{`{"model_type": "qwen2_5_omni_thinker", "audio_config": {"output_dim": 1024}}`, "output_dim 1024"},
		{`{"model_type": "qwen2_audio", "audio_token_index": 999999}`, "outside the vocabulary"},
		{`{"model_type": "qwen2_audio", "text_config": {"vocab_size": "big"}}`, "text_config"},
		{`not json`, "config.json"},
	} {
		_, err := ParseConfig([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.json, err, c.want)
		}
	}
	// An explicit null num_key_value_heads means "as many as the heads".
	c, err := ParseConfig([]byte(`{"model_type": "qwen2_audio", "text_config": {"num_attention_heads": 16, "hidden_size": 2048, "num_key_value_heads": null}}`))
	if err != nil || c.Text.NumKVHeads != 16 {
		t.Errorf("null kv heads: %v %+v", err, c)
	}
}

func TestCheckNamesEveryProblem(t *testing.T) {
	c := load(t, "qwen2-audio-7b-instruct.config.json")
	have := map[string][]int{}
	for _, w := range c.Weights() {
		have[w.Name] = w.Shape
	}
	if err := c.Check(have); err != nil {
		t.Fatalf("complete checkpoint rejected: %v", err)
	}
	delete(have, "language_model.model.layers.7.mlp.up_proj.weight")
	have["audio_tower.layers.3.fc1.weight"] = []int{5120, 1281}
	have["language_model.model.layers.99.extra"] = []int{1}
	err := c.Check(have)
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"language_model.model.layers.7.mlp.up_proj.weight", "audio_tower.layers.3.fc1.weight: have [5120 1281], want [5120 1280]",
		"language_model.model.layers.99.extra"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q:\n%s", want, msg)
		}
	}
}

func TestAudioTokens(t *testing.T) {
	c := load(t, "qwen2-audio-7b-instruct.config.json")
	// 30 s = 3000 frames -> 750 tokens (25 per second); 10 s -> 250. The
	// small cases follow transformers' floor division: ((T-1)//2+1-2)//2+1.
	for _, x := range []struct{ frames, tokens int }{{3000, 750}, {1000, 250}, {0, 0}, {1, 0}, {2, 0}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 2}, {200, 50}, {201, 50}, {203, 51}} {
		if got := c.AudioTokens(x.frames); got != x.tokens {
			t.Errorf("AudioTokens(%d) = %d, want %d", x.frames, got, x.tokens)
		}
	}
}
