package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"earl/worker/ckpt"
	"earl/worker/tokenizer"
)

// WriteHF writes a Hugging Face model directory that transformers (and
// earl) load: config.json, the weights as safetensors (sharded above
// maxShardBytes, 0 for transformers' 5 GB default), generation_config.json,
// the processor files (preprocessor_config.json for the Whisper feature
// extractor, chat_template.json) and the given tokenizer files
// (tokenizer.json, tokenizer_config.json, ...) by name. Every file is
// written through a temporary name.
func WriteHF(dir string, c *Config, tensors []ckpt.Tensor, tokenizerFiles map[string][]byte, maxShardBytes int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg, err := c.HFJSON()
	if err != nil {
		return err
	}
	chat := tokenizer.ChatQwen2Audio
	processor := "Qwen2AudioProcessor"
	seconds := 30
	if c.Family == Qwen25Omni {
		chat, processor, seconds = tokenizer.ChatQwen25Omni, "Qwen2_5OmniProcessor", 300
	}
	gen := map[string]any{"do_sample": false, "eos_token_id": c.Text.EOSTokenIDs}
	if c.Text.BOSTokenID != 0 {
		gen["bos_token_id"] = c.Text.BOSTokenID
	}
	pre := map[string]any{
		"feature_extractor_type": "WhisperFeatureExtractor", "feature_size": c.Audio.NumMelBins, "sampling_rate": 16000,
		"hop_length": 160, "n_fft": 400, "chunk_length": seconds, "n_samples": seconds * 16000, "nb_max_frames": seconds * 100,
		"padding_side": "right", "padding_value": 0.0, "return_attention_mask": true, "dither": 0.0,
		"processor_class": processor,
	}
	files := map[string][]byte{"config.json": cfg}
	for name, v := range map[string]any{
		"generation_config.json":   gen,
		"preprocessor_config.json": pre,
		"chat_template.json":       map[string]string{"chat_template": chat.Jinja()},
	} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		files[name] = b
	}
	for name, b := range tokenizerFiles {
		files[name] = b
	}
	if maxShardBytes <= 0 {
		maxShardBytes = ckpt.DefaultMaxShardBytes
	}
	if err := ckpt.WriteDir(dir, tensors, map[string]string{"format": "pt"}, maxShardBytes); err != nil {
		return err
	}
	for name, b := range files {
		if err := writeAtomic(filepath.Join(dir, name), append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
