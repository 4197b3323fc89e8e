package model

import (
	"fmt"
	"sort"
	"strings"
)

// Part says which part of the model a weight belongs to, so training can
// freeze the audio tower or the projector.
type Part string

// The parts.
const (
	PartAudio     Part = "audio"     // audio tower (encoder)
	PartProjector Part = "projector" // Qwen2-Audio's multi_modal_projector
	PartText      Part = "text"      // decoder and lm_head
)

// Weight is one tensor of a checkpoint: its Hugging Face name (with the
// family's prefix), shape and part.
type Weight struct {
	Name  string
	Shape []int
	Part  Part
	// Optional weights may be absent from a checkpoint (Omni's unused
	// audio_bos_eos_token, lm_head when embeddings are tied).
	Optional bool
}

// Numel is the element count.
func (w Weight) Numel() int {
	n := 1
	for _, d := range w.Shape {
		n *= d
	}
	return n
}

// Weights lists every tensor the configuration implies, in a fixed order
// (audio tower, projector, decoder), with Hugging Face names.
func (c *Config) Weights() []Weight {
	var ws []Weight
	add := func(part Part, name string, shape ...int) {
		ws = append(ws, Weight{Name: name, Shape: shape, Part: part})
	}
	a, t := c.Audio, c.Text
	var audio, lm, head string
	switch c.Family {
	case Qwen2Audio:
		audio, lm, head = "audio_tower.", "language_model.model.", "language_model.lm_head.weight"
	default:
		audio, lm, head = c.Prefix+"audio_tower.", c.Prefix+"model.", c.Prefix+"lm_head.weight"
	}

	d := a.DModel
	add(PartAudio, audio+"conv1.weight", d, a.NumMelBins, 3)
	add(PartAudio, audio+"conv1.bias", d)
	add(PartAudio, audio+"conv2.weight", d, d, 3)
	add(PartAudio, audio+"conv2.bias", d)
	if c.Family == Qwen2Audio {
		// A learned position table; Omni computes sinusoids instead.
		add(PartAudio, audio+"embed_positions.weight", a.MaxSourcePositions, d)
	}
	for i := 0; i < a.Layers; i++ {
		p := fmt.Sprintf("%slayers.%d.", audio, i)
		add(PartAudio, p+"self_attn.q_proj.weight", d, d)
		add(PartAudio, p+"self_attn.q_proj.bias", d)
		add(PartAudio, p+"self_attn.k_proj.weight", d, d) // Whisper's k_proj has no bias
		add(PartAudio, p+"self_attn.v_proj.weight", d, d)
		add(PartAudio, p+"self_attn.v_proj.bias", d)
		add(PartAudio, p+"self_attn.out_proj.weight", d, d)
		add(PartAudio, p+"self_attn.out_proj.bias", d)
		add(PartAudio, p+"self_attn_layer_norm.weight", d)
		add(PartAudio, p+"self_attn_layer_norm.bias", d)
		add(PartAudio, p+"fc1.weight", a.FFNDim, d)
		add(PartAudio, p+"fc1.bias", a.FFNDim)
		add(PartAudio, p+"fc2.weight", d, a.FFNDim)
		add(PartAudio, p+"fc2.bias", d)
		add(PartAudio, p+"final_layer_norm.weight", d)
		add(PartAudio, p+"final_layer_norm.bias", d)
	}
	if c.Family == Qwen2Audio {
		add(PartAudio, audio+"layer_norm.weight", d)
		add(PartAudio, audio+"layer_norm.bias", d)
		add(PartProjector, "multi_modal_projector.linear.weight", t.HiddenSize, d)
		add(PartProjector, "multi_modal_projector.linear.bias", t.HiddenSize)
	} else {
		add(PartAudio, audio+"ln_post.weight", d)
		add(PartAudio, audio+"ln_post.bias", d)
		add(PartAudio, audio+"proj.weight", a.OutputDim, d)
		add(PartAudio, audio+"proj.bias", a.OutputDim)
		ws = append(ws, Weight{Name: audio + "audio_bos_eos_token.weight", Shape: []int{2, a.OutputDim}, Part: PartAudio, Optional: true})
	}

	h, hd := t.HiddenSize, c.HeadDim()
	q, kv := t.NumHeads*hd, t.NumKVHeads*hd
	add(PartText, lm+"embed_tokens.weight", t.VocabSize, h)
	for i := 0; i < t.NumLayers; i++ {
		p := fmt.Sprintf("%slayers.%d.", lm, i)
		add(PartText, p+"self_attn.q_proj.weight", q, h)
		add(PartText, p+"self_attn.q_proj.bias", q)
		add(PartText, p+"self_attn.k_proj.weight", kv, h)
		add(PartText, p+"self_attn.k_proj.bias", kv)
		add(PartText, p+"self_attn.v_proj.weight", kv, h)
		add(PartText, p+"self_attn.v_proj.bias", kv)
		add(PartText, p+"self_attn.o_proj.weight", h, q)
		add(PartText, p+"mlp.gate_proj.weight", t.IntermediateSize, h)
		add(PartText, p+"mlp.up_proj.weight", t.IntermediateSize, h)
		add(PartText, p+"mlp.down_proj.weight", h, t.IntermediateSize)
		add(PartText, p+"input_layernorm.weight", h)
		add(PartText, p+"post_attention_layernorm.weight", h)
	}
	add(PartText, lm+"norm.weight", h)
	ws = append(ws, Weight{Name: head, Shape: []int{t.VocabSize, h}, Part: PartText, Optional: t.TieWordEmbeddings})
	return ws
}

// Skipped reports whether a checkpoint tensor belongs to a part of the
// model earl does not use (Omni's vision encoder, talker and vocoder).
func (c *Config) Skipped(name string) bool {
	if c.Family != Qwen25Omni {
		return false
	}
	for _, p := range []string{c.Prefix + "visual.", "talker.", "token2wav."} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// MismatchError lists everything wrong with a checkpoint's tensors at once.
type MismatchError struct {
	Missing    []string // expected, absent
	Unexpected []string // present, not expected and not skipped
	Misshapen  []string // "name: have [a b], want [c d]"
}

func (e *MismatchError) Error() string {
	var parts []string
	list := func(what string, names []string) {
		if len(names) == 0 {
			return
		}
		shown := names
		if len(shown) > 20 {
			shown = append(append([]string{}, names[:20]...), fmt.Sprintf("... and %d more", len(names)-20))
		}
		parts = append(parts, fmt.Sprintf("%d %s: %s", len(names), what, strings.Join(shown, ", ")))
	}
	list("missing", e.Missing)
	list("unexpected", e.Unexpected)
	list("with the wrong shape", e.Misshapen)
	return "checkpoint does not match config.json: " + strings.Join(parts, "; ")
}

// Check compares a checkpoint's tensor shapes (by name) with what the
// configuration expects and reports every missing, unexpected and
// misshapen tensor in one error (nil when they match).
func (c *Config) Check(have map[string][]int) error {
	e := &MismatchError{}
	want := map[string]bool{}
	for _, w := range c.Weights() {
		want[w.Name] = true
		shape, ok := have[w.Name]
		switch {
		case !ok && !w.Optional:
			e.Missing = append(e.Missing, w.Name)
		case ok && !sameShape(shape, w.Shape):
			e.Misshapen = append(e.Misshapen, fmt.Sprintf("%s: have %v, want %v", w.Name, shape, w.Shape))
		}
	}
	for name := range have {
		if !want[name] && !c.Skipped(name) {
			e.Unexpected = append(e.Unexpected, name)
		}
	}
	sort.Strings(e.Unexpected)
	if len(e.Missing)+len(e.Unexpected)+len(e.Misshapen) == 0 {
		return nil
	}
	return e
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
