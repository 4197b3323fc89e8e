// Package model describes the audio-language models earl trains —
// Qwen2-Audio and the Qwen2.5-Omni thinker — as Hugging Face ships them:
// config.json parsing with transformers' defaults for missing fields, the
// full list of weights each configuration implies with HF names and shapes,
// and the checks that a checkpoint holds exactly those.
package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Family is the model family of a configuration.
type Family string

// The supported families.
const (
	Qwen2Audio Family = "qwen2-audio"  // Qwen2AudioForConditionalGeneration
	Qwen25Omni Family = "qwen2.5-omni" // Qwen2.5-Omni thinker
)

// TextConfig is the Qwen2 decoder's configuration.
type TextConfig struct {
	VocabSize         int     `json:"vocab_size"`
	HiddenSize        int     `json:"hidden_size"`
	IntermediateSize  int     `json:"intermediate_size"`
	NumLayers         int     `json:"num_hidden_layers"`
	NumHeads          int     `json:"num_attention_heads"`
	NumKVHeads        int     `json:"num_key_value_heads"`
	HeadDim           int     `json:"head_dim"`
	HiddenAct         string  `json:"hidden_act"`
	MaxPositions      int     `json:"max_position_embeddings"`
	RMSNormEps        float64 `json:"rms_norm_eps"`
	RopeTheta         float64 `json:"rope_theta"`
	TieWordEmbeddings bool    `json:"tie_word_embeddings"`
	// MRopeSection is Qwen2.5-Omni's multimodal RoPE split of head_dim/2;
	// for audio and text the three position streams are equal, which is
	// plain 1-D RoPE.
	MRopeSection []int `json:"mrope_section,omitempty"`
	BOSTokenID   int   `json:"bos_token_id"`
	EOSTokenIDs  []int `json:"eos_token_id"`
}

// AudioConfig is the Whisper-style audio encoder's configuration.
type AudioConfig struct {
	NumMelBins         int    `json:"num_mel_bins"`
	Layers             int    `json:"encoder_layers"`
	Heads              int    `json:"encoder_attention_heads"`
	FFNDim             int    `json:"encoder_ffn_dim"`
	DModel             int    `json:"d_model"`
	MaxSourcePositions int    `json:"max_source_positions"`
	Activation         string `json:"activation_function"`
	ScaleEmbedding     bool   `json:"scale_embedding"`
	// NWindow is Qwen2.5-Omni's chunking: mel frames go through the convs
	// and attention in chunks of 2*NWindow. Zero for Qwen2-Audio.
	NWindow int `json:"n_window,omitempty"`
	// OutputDim is Qwen2.5-Omni's proj output (the text hidden size).
	OutputDim int `json:"output_dim,omitempty"`
}

// Config is a parsed model configuration.
type Config struct {
	Family Family
	// Architecture is the architectures[0] entry of config.json.
	Architecture string
	Text         TextConfig
	Audio        AudioConfig
	// AudioTokenID is the <|AUDIO|> placeholder id; AudioStartID and
	// AudioEndID are <|audio_bos|> and <|audio_eos|>.
	AudioTokenID, AudioStartID, AudioEndID int
	// Prefix is prepended to every weight name in the checkpoint:
	// "thinker." for a full Qwen2.5-Omni model, "" otherwise.
	Prefix string
	// TorchDType is the checkpoint's declared dtype ("bfloat16", ...).
	TorchDType string
}

// HeadDim is the attention head size of the decoder.
func (t TextConfig) headDim() int {
	if t.HeadDim > 0 {
		return t.HeadDim
	}
	return t.HiddenSize / t.NumHeads
}

// LoadConfig reads DIR/config.json.
func LoadConfig(dir string) (*Config, error) {
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return c, nil
}

// raw mirrors the JSON fields earl reads; pointers tell absent from zero
// so transformers' defaults apply to absent fields only.
type rawText struct {
	ModelType         string          `json:"model_type"`
	VocabSize         *int            `json:"vocab_size"`
	HiddenSize        *int            `json:"hidden_size"`
	IntermediateSize  *int            `json:"intermediate_size"`
	NumLayers         *int            `json:"num_hidden_layers"`
	NumHeads          *int            `json:"num_attention_heads"`
	NumKVHeads        json.RawMessage `json:"num_key_value_heads"`
	HeadDim           *int            `json:"head_dim"`
	HiddenAct         *string         `json:"hidden_act"`
	MaxPositions      *int            `json:"max_position_embeddings"`
	RMSNormEps        *float64        `json:"rms_norm_eps"`
	RopeTheta         *float64        `json:"rope_theta"`
	RopeScaling       json.RawMessage `json:"rope_scaling"`
	RopeParameters    json.RawMessage `json:"rope_parameters"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	BOSTokenID        *int            `json:"bos_token_id"`
	EOSTokenID        json.RawMessage `json:"eos_token_id"`
	TorchDType        string          `json:"torch_dtype"`
}

type rawAudio struct {
	NumMelBins         *int    `json:"num_mel_bins"`
	Layers             *int    `json:"encoder_layers"`
	Heads              *int    `json:"encoder_attention_heads"`
	FFNDim             *int    `json:"encoder_ffn_dim"`
	DModel             *int    `json:"d_model"`
	MaxSourcePositions *int    `json:"max_source_positions"`
	Activation         *string `json:"activation_function"`
	ScaleEmbedding     *bool   `json:"scale_embedding"`
	NWindow            *int    `json:"n_window"`
	OutputDim          *int    `json:"output_dim"`
}

type rawModel struct {
	Architectures     []string        `json:"architectures"`
	ModelType         string          `json:"model_type"`
	TextConfig        json.RawMessage `json:"text_config"`
	AudioConfig       json.RawMessage `json:"audio_config"`
	ThinkerConfig     json.RawMessage `json:"thinker_config"`
	AudioTokenIndex   *int            `json:"audio_token_index"`
	AudioTokenID      *int            `json:"audio_token_id"`
	AudioStartTokenID *int            `json:"audio_start_token_id"`
	AudioEndTokenID   *int            `json:"audio_end_token_id"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	TorchDType        string          `json:"torch_dtype"`
}

// ParseConfig parses a config.json of Qwen2AudioForConditionalGeneration, a
// full Qwen2_5OmniModel (the thinker is read from thinker_config) or a
// thinker saved alone. Missing fields take transformers' defaults for that
// class (released Qwen2-Audio configs omit most of text_config).
func ParseConfig(data []byte) (*Config, error) {
	var m rawModel
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	arch := ""
	if len(m.Architectures) > 0 {
		arch = m.Architectures[0]
	}
	switch {
	case m.ModelType == "qwen2_audio" || arch == "Qwen2AudioForConditionalGeneration":
		return parseQwen2Audio(&m, arch)
	case m.ModelType == "qwen2_5_omni" || arch == "Qwen2_5OmniModel" || arch == "Qwen2_5OmniForConditionalGeneration":
		if len(m.ThinkerConfig) == 0 {
			return nil, errors.New("Qwen2.5-Omni config without thinker_config")
		}
		var t rawModel
		if err := json.Unmarshal(m.ThinkerConfig, &t); err != nil {
			return nil, fmt.Errorf("thinker_config: %w", err)
		}
		if t.TorchDType == "" {
			t.TorchDType = m.TorchDType
		}
		c, err := parseOmniThinker(&t, arch)
		if err != nil {
			return nil, fmt.Errorf("thinker_config: %w", err)
		}
		c.Prefix = "thinker."
		return c, nil
	case m.ModelType == "qwen2_5_omni_thinker" || arch == "Qwen2_5OmniThinkerForConditionalGeneration":
		return parseOmniThinker(&m, arch)
	}
	return nil, fmt.Errorf("unsupported model: model_type %q, architectures %q; earl reads Qwen2AudioForConditionalGeneration and Qwen2.5-Omni (thinker)", m.ModelType, m.Architectures)
}

func parseQwen2Audio(m *rawModel, arch string) (*Config, error) {
	c := &Config{Family: Qwen2Audio, Architecture: arch, TorchDType: m.TorchDType}
	// Qwen2Config defaults (transformers' configuration_qwen2.py).
	text := TextConfig{VocabSize: 151936, HiddenSize: 4096, IntermediateSize: 22016, NumLayers: 32, NumHeads: 32,
		NumKVHeads: 32, HiddenAct: "silu", MaxPositions: 32768, RMSNormEps: 1e-6, RopeTheta: 10000}
	if err := applyText(&text, m.TextConfig); err != nil {
		return nil, fmt.Errorf("text_config: %w", err)
	}
	// Qwen2AudioEncoderConfig defaults.
	aud := AudioConfig{NumMelBins: 128, Layers: 32, Heads: 20, FFNDim: 5120, DModel: 1280, MaxSourcePositions: 1500, Activation: "gelu"}
	if err := applyAudio(&aud, m.AudioConfig); err != nil {
		return nil, fmt.Errorf("audio_config: %w", err)
	}
	aud.NWindow, aud.OutputDim = 0, 0
	c.Text, c.Audio = text, aud
	c.AudioTokenID = pick(m.AudioTokenIndex, m.AudioTokenID, 151646)
	// Released Qwen2-Audio configs do not name the audio_bos / audio_eos
	// ids (only the tokenizer does); earl writes them for models with
	// other vocabularies and reads them when present.
	c.AudioStartID = pick(m.AudioStartTokenID, nil, 151647)
	c.AudioEndID = pick(m.AudioEndTokenID, nil, 151648)
	if c.TorchDType == "" {
		c.TorchDType = textDType(m.TextConfig)
	}
	return c, c.validate()
}

func parseOmniThinker(m *rawModel, arch string) (*Config, error) {
	c := &Config{Family: Qwen25Omni, Architecture: arch, TorchDType: m.TorchDType}
	// Qwen2_5OmniTextConfig defaults. transformers has flipped the text
	// config's tie_word_embeddings default between releases; the released
	// thinkers ship a separate lm_head, so earl's default is untied and an
	// explicit value in the file always wins.
	text := TextConfig{VocabSize: 152064, HiddenSize: 3584, IntermediateSize: 18944, NumLayers: 28, NumHeads: 28,
		NumKVHeads: 4, HiddenAct: "silu", MaxPositions: 32768, RMSNormEps: 1e-6, RopeTheta: 1e6}
	if m.TieWordEmbeddings != nil {
		text.TieWordEmbeddings = *m.TieWordEmbeddings
	}
	if err := applyText(&text, m.TextConfig); err != nil {
		return nil, fmt.Errorf("text_config: %w", err)
	}
	// Qwen2_5OmniAudioEncoderConfig defaults.
	aud := AudioConfig{NumMelBins: 128, Layers: 32, Heads: 20, FFNDim: 5120, DModel: 1280, MaxSourcePositions: 1500,
		Activation: "gelu", NWindow: 100, OutputDim: 3584}
	if err := applyAudio(&aud, m.AudioConfig); err != nil {
		return nil, fmt.Errorf("audio_config: %w", err)
	}
	c.Text, c.Audio = text, aud
	c.AudioTokenID = pick(m.AudioTokenIndex, m.AudioTokenID, 151646)
	c.AudioStartID = pick(m.AudioStartTokenID, nil, 151647)
	c.AudioEndID = pick(m.AudioEndTokenID, nil, 151648)
	if c.TorchDType == "" {
		c.TorchDType = textDType(m.TextConfig)
	}
	return c, c.validate()
}

func pick(a, b *int, def int) int {
	switch {
	case a != nil:
		return *a
	case b != nil:
		return *b
	}
	return def
}

func textDType(raw json.RawMessage) string {
	var t rawText
	if len(raw) > 0 && json.Unmarshal(raw, &t) == nil {
		return t.TorchDType
	}
	return ""
}

func applyText(t *TextConfig, raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var r rawText
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	setInt := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setInt(&t.VocabSize, r.VocabSize)
	setInt(&t.HiddenSize, r.HiddenSize)
	setInt(&t.IntermediateSize, r.IntermediateSize)
	setInt(&t.NumLayers, r.NumLayers)
	setInt(&t.NumHeads, r.NumHeads)
	setInt(&t.HeadDim, r.HeadDim)
	setInt(&t.MaxPositions, r.MaxPositions)
	// num_key_value_heads: absent keeps the class default, null means
	// "same as num_attention_heads" (transformers' __post_init__).
	switch s := strings.TrimSpace(string(r.NumKVHeads)); s {
	case "":
	case "null":
		t.NumKVHeads = t.NumHeads
	default:
		if err := json.Unmarshal(r.NumKVHeads, &t.NumKVHeads); err != nil {
			return fmt.Errorf("num_key_value_heads: %w", err)
		}
	}
	if r.HiddenAct != nil {
		t.HiddenAct = *r.HiddenAct
	}
	if r.RMSNormEps != nil {
		t.RMSNormEps = *r.RMSNormEps
	}
	if r.RopeTheta != nil {
		t.RopeTheta = *r.RopeTheta
	}
	if r.TieWordEmbeddings != nil {
		t.TieWordEmbeddings = *r.TieWordEmbeddings
	}
	if r.BOSTokenID != nil {
		t.BOSTokenID = *r.BOSTokenID
	}
	if len(r.EOSTokenID) > 0 && string(r.EOSTokenID) != "null" {
		var one int
		if json.Unmarshal(r.EOSTokenID, &one) == nil {
			t.EOSTokenIDs = []int{one}
		} else if err := json.Unmarshal(r.EOSTokenID, &t.EOSTokenIDs); err != nil {
			return fmt.Errorf("eos_token_id: %w", err)
		}
	}
	// Newer transformers nest rope_theta (and Omni's mrope_section) in
	// rope_parameters; older files use rope_theta and rope_scaling.
	for _, blob := range []json.RawMessage{r.RopeScaling, r.RopeParameters} {
		if len(blob) == 0 || string(blob) == "null" {
			continue
		}
		var rp struct {
			Type         string   `json:"type"`
			RopeType     string   `json:"rope_type"`
			RopeTheta    *float64 `json:"rope_theta"`
			MRopeSection []int    `json:"mrope_section"`
		}
		if err := json.Unmarshal(blob, &rp); err != nil {
			return fmt.Errorf("rope parameters: %w", err)
		}
		kind := rp.RopeType
		if kind == "" {
			kind = rp.Type
		}
		if kind != "" && kind != "default" && kind != "mrope" {
			return fmt.Errorf("rope type %q is not supported (earl implements default RoPE and Omni's mrope)", kind)
		}
		if rp.RopeTheta != nil {
			t.RopeTheta = *rp.RopeTheta
		}
		if rp.MRopeSection != nil {
			t.MRopeSection = rp.MRopeSection
		}
	}
	return nil
}

func applyAudio(a *AudioConfig, raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var r rawAudio
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	for _, f := range []struct {
		dst *int
		v   *int
	}{{&a.NumMelBins, r.NumMelBins}, {&a.Layers, r.Layers}, {&a.Heads, r.Heads}, {&a.FFNDim, r.FFNDim},
		{&a.DModel, r.DModel}, {&a.MaxSourcePositions, r.MaxSourcePositions}, {&a.NWindow, r.NWindow}, {&a.OutputDim, r.OutputDim}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if r.Activation != nil {
		a.Activation = *r.Activation
	}
	if r.ScaleEmbedding != nil {
		a.ScaleEmbedding = *r.ScaleEmbedding
	}
	return nil
}

// validate rejects configurations earl cannot run, naming the field.
func (c *Config) validate() error {
	t, a := c.Text, c.Audio
	var errs []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab_size", t.VocabSize}, {"hidden_size", t.HiddenSize}, {"intermediate_size", t.IntermediateSize},
		{"num_hidden_layers", t.NumLayers}, {"num_attention_heads", t.NumHeads}, {"num_key_value_heads", t.NumKVHeads},
		{"audio num_mel_bins", a.NumMelBins}, {"audio encoder_layers", a.Layers}, {"audio encoder_attention_heads", a.Heads},
		{"audio encoder_ffn_dim", a.FFNDim}, {"audio d_model", a.DModel}, {"audio max_source_positions", a.MaxSourcePositions}} {
		check(f.v > 0, "%s must be positive, got %d", f.name, f.v)
	}
	if len(errs) == 0 {
		check(t.HeadDim > 0 || t.HiddenSize%t.NumHeads == 0, "hidden_size %d is not a multiple of num_attention_heads %d", t.HiddenSize, t.NumHeads)
		check(t.NumHeads%t.NumKVHeads == 0, "num_attention_heads %d is not a multiple of num_key_value_heads %d", t.NumHeads, t.NumKVHeads)
		check(t.headDim()%2 == 0, "head dim %d must be even for RoPE", t.headDim())
		check(a.DModel%a.Heads == 0, "audio d_model %d is not a multiple of encoder_attention_heads %d", a.DModel, a.Heads)
		check(t.HiddenAct == "silu", "hidden_act %q: earl implements silu", t.HiddenAct)
		check(a.Activation == "gelu", "audio activation_function %q: earl implements gelu", a.Activation)
		check(c.AudioTokenID >= 0 && c.AudioTokenID < t.VocabSize, "audio_token_index %d outside the vocabulary (%d)", c.AudioTokenID, t.VocabSize)
		if c.Family == Qwen25Omni {
			check(a.NWindow > 0, "audio n_window must be positive, got %d", a.NWindow)
			check(a.OutputDim == t.HiddenSize, "audio output_dim %d differs from text hidden_size %d", a.OutputDim, t.HiddenSize)
			if len(t.MRopeSection) > 0 {
				s := 0
				for _, v := range t.MRopeSection {
					s += v
				}
				check(s == t.headDim()/2, "mrope_section %v sums to %d, want head_dim/2 = %d", t.MRopeSection, s, t.headDim()/2)
			}
		}
	}
	if len(errs) > 0 {
		return errors.New("invalid config: " + strings.Join(errs, "; "))
	}
	return nil
}

// HeadDim is the decoder's attention head size.
func (c *Config) HeadDim() int { return c.Text.headDim() }

// AudioTokens is the number of audio embeddings (and <|AUDIO|> tokens) the
// encoder produces for a clip of validFrames mel frames: the stride-2 conv
// gives (T-1)//2+1 positions and the stride-2 average pool halves them,
// ((T-1)//2+1-2)//2+1. Qwen2.5-Omni's per-chunk processing gives the same
// count (each full 2*n_window chunk yields n_window/2 tokens).
func (c *Config) AudioTokens(validFrames int) int {
	if validFrames <= 0 {
		return 0
	}
	afterConv := (validFrames-1)/2 + 1
	// Python's floor division: one conv output pools to nothing.
	if afterConv < 2 {
		return 0
	}
	return (afterConv-2)/2 + 1
}

// HFJSON renders the configuration as a Hugging Face config.json that
// transformers and earl load back: Qwen2AudioForConditionalGeneration, or
// for Qwen2.5-Omni a thinker saved alone (Prefix "") or a full
// Qwen2_5OmniModel holding only the thinker (Prefix "thinker.").
func (c *Config) HFJSON() ([]byte, error) {
	t, a := c.Text, c.Audio
	text := map[string]any{
		"vocab_size": t.VocabSize, "hidden_size": t.HiddenSize, "intermediate_size": t.IntermediateSize,
		"num_hidden_layers": t.NumLayers, "num_attention_heads": t.NumHeads, "num_key_value_heads": t.NumKVHeads,
		"hidden_act": t.HiddenAct, "max_position_embeddings": t.MaxPositions, "rms_norm_eps": t.RMSNormEps,
		"rope_theta": t.RopeTheta, "tie_word_embeddings": t.TieWordEmbeddings, "use_sliding_window": false,
		"initializer_range": 0.02, "attention_dropout": 0.0, "use_cache": true,
	}
	if t.HeadDim > 0 {
		text["head_dim"] = t.HeadDim
	}
	if t.BOSTokenID != 0 {
		text["bos_token_id"] = t.BOSTokenID
	}
	if len(t.EOSTokenIDs) == 1 {
		text["eos_token_id"] = t.EOSTokenIDs[0]
	} else if len(t.EOSTokenIDs) > 1 {
		text["eos_token_id"] = t.EOSTokenIDs
	}
	audio := map[string]any{
		"num_mel_bins": a.NumMelBins, "encoder_layers": a.Layers, "encoder_attention_heads": a.Heads,
		"encoder_ffn_dim": a.FFNDim, "d_model": a.DModel, "max_source_positions": a.MaxSourcePositions,
		"activation_function": a.Activation, "scale_embedding": a.ScaleEmbedding,
		"dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
	}
	dtype := c.TorchDType
	if dtype == "" {
		dtype = "bfloat16"
	}
	var doc map[string]any
	switch c.Family {
	case Qwen2Audio:
		text["model_type"] = "qwen2"
		audio["model_type"] = "qwen2_audio_encoder"
		doc = map[string]any{
			"architectures": []string{"Qwen2AudioForConditionalGeneration"}, "model_type": "qwen2_audio",
			"audio_token_index": c.AudioTokenID, "audio_config": audio, "text_config": text,
			"vocab_size": t.VocabSize, "torch_dtype": dtype, "ignore_index": -100,
			"audio_start_token_id": c.AudioStartID, "audio_end_token_id": c.AudioEndID,
		}
	case Qwen25Omni:
		text["model_type"] = "qwen2_5_omni_text"
		if len(t.MRopeSection) > 0 {
			text["rope_scaling"] = map[string]any{"type": "mrope", "mrope_section": t.MRopeSection}
		}
		audio["model_type"] = "qwen2_5_omni_audio_encoder"
		audio["n_window"], audio["output_dim"] = a.NWindow, a.OutputDim
		thinker := map[string]any{
			"model_type": "qwen2_5_omni_thinker", "audio_config": audio, "text_config": text,
			"audio_token_index": c.AudioTokenID, "audio_start_token_id": c.AudioStartID, "audio_end_token_id": c.AudioEndID,
			"tie_word_embeddings": t.TieWordEmbeddings, "torch_dtype": dtype,
		}
		switch c.Prefix {
		case "":
			thinker["architectures"] = []string{"Qwen2_5OmniThinkerForConditionalGeneration"}
			doc = thinker
		case "thinker.":
			doc = map[string]any{
				"architectures": []string{"Qwen2_5OmniModel"}, "model_type": "qwen2_5_omni",
				"thinker_config": thinker, "enable_audio_output": false, "torch_dtype": dtype,
			}
		default:
			return nil, fmt.Errorf("no config layout for weight prefix %q", c.Prefix)
		}
	default:
		return nil, fmt.Errorf("unknown family %q", c.Family)
	}
	return json.MarshalIndent(doc, "", "  ")
}
