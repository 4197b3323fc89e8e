package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"earl/worker/ckpt"
	"earl/worker/model"
	"earl/worker/tokenizer/tinybpe"
)

func initModelCommand() *cli.Command {
	return &cli.Command{
		Name:      "init-model",
		Usage:     "write a randomly initialised model in the Hugging Face layout of a real checkpoint",
		UsageText: "tools init-model --family qwen2-audio|qwen2.5-omni --preset tiny|small --seed S --out DIR [--tokenizer DIR] [--layout thinker|full]",
		Description: "Writes config.json, model.safetensors (bf16 by default), generation_config.json, the processor files\n" +
			"(preprocessor_config.json, chat_template.json) and a tokenizer: a small byte-level BPE learned from earl's\n" +
			"prompt text, or, with --tokenizer, a real Qwen tokenizer.json whose ids 151646-151648 become the audio\n" +
			"tokens <|AUDIO|>, <|audio_bos|>, <|audio_eos|>. The model loads through the same path as real checkpoints.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "family", Value: string(model.Qwen2Audio), Usage: "qwen2-audio or qwen2.5-omni"},
			&cli.StringFlag{Name: "preset", Value: "tiny", Usage: strings.Join(model.PresetNames(), ", ")},
			&cli.Uint64Flag{Name: "seed", Value: 1},
			&cli.StringFlag{Name: "out", Required: true},
			&cli.StringFlag{Name: "tokenizer", Usage: "directory holding a real Qwen tokenizer.json (and tokenizer_config.json)"},
			&cli.IntFlag{Name: "merges", Value: 400, Usage: "BPE merges of the generated tokenizer"},
			&cli.StringFlag{Name: "layout", Value: "thinker", Usage: "qwen2.5-omni only: thinker (saved alone) or full (Qwen2_5OmniModel, thinker.* names)"},
			&cli.StringFlag{Name: "dtype", Value: "bf16", Usage: "bf16 or f32"},
			&cli.Float64Flag{Name: "audio-conv-std", Value: 0.02, Usage: "std of the audio tower's conv weights (transformers' init_std is 0.02; " +
				"at that scale a tiny random encoder passes almost nothing of the audio through: its sinusoidal position table dominates, " +
				"and a tiny model trained from scratch learns audio tasks only with about 0.2)"},
		},
		Action: runInitModel,
	}
}

func runInitModel(c *cli.Context) error {
	fam := model.Family(c.String("family"))
	if fam != model.Qwen2Audio && fam != model.Qwen25Omni {
		return fmt.Errorf("--family %q: use qwen2-audio or qwen2.5-omni", fam)
	}
	dtype := map[string]ckpt.DType{"bf16": ckpt.BF16, "f32": ckpt.F32}[c.String("dtype")]
	if dtype == "" {
		return fmt.Errorf("--dtype %q: use bf16 or f32", c.String("dtype"))
	}
	var files map[string][]byte
	var special map[string]int
	var size int
	var err error
	if dir := c.String("tokenizer"); dir != "" {
		files, special, size, err = realTokenizer(dir)
	} else {
		files, special, size, err = tinybpe.Files(c.Int("merges"))
	}
	if err != nil {
		return err
	}
	vocab := (size + 63) / 64 * 64 // padded like Qwen's vocabularies, for aligned matmuls
	cfg, err := model.NewConfig(fam, c.String("preset"), vocab, special["<|AUDIO|>"], special["<|audio_bos|>"], special["<|audio_eos|>"],
		[]int{special["<|im_end|>"], special["<|endoftext|>"]})
	if err != nil {
		return err
	}
	if fam == model.Qwen25Omni {
		switch c.String("layout") {
		case "thinker":
		case "full":
			cfg.Prefix = "thinker."
			cfg.Architecture = "Qwen2_5OmniModel"
		default:
			return fmt.Errorf("--layout %q: use thinker or full", c.String("layout"))
		}
	}
	tensors := cfg.RandomWeights(c.Uint64("seed"), dtype)
	if std := c.Float64("audio-conv-std"); std != 0.02 {
		if std <= 0 {
			return fmt.Errorf("--audio-conv-std %g: must be positive", std)
		}
		// Scaling keeps every other tensor (and the draws) as they are.
		for _, t := range tensors {
			if strings.Contains(t.Name, "audio_tower.conv") && strings.HasSuffix(t.Name, ".weight") {
				for i := range t.Values {
					t.Values[i] *= float32(std / 0.02)
				}
			}
		}
	}
	if err := model.WriteHF(c.String("out"), cfg, tensors, files, 0); err != nil {
		return err
	}
	var params int
	for _, t := range tensors {
		params += len(t.Values)
	}
	fmt.Printf("wrote a random %s %s model to %s: %d tensors, %.2fM parameters, vocabulary %d (%d used)\n",
		fam, c.String("preset"), c.String("out"), len(tensors), float64(params)/1e6, cfg.Text.VocabSize, size)
	return nil
}

// realTokenizer copies a Qwen tokenizer and gives ids 151646-151648 to the
// audio tokens, as the Qwen2-Audio and Omni tokenizers do (the Qwen3 file
// in ../shared/testdata uses those ids for other tokens).
func realTokenizer(dir string) (map[string][]byte, map[string]int, int, error) {
	p := filepath.Join(dir, "tokenizer.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, 0, err
	}
	var tok map[string]json.RawMessage
	if err := json.Unmarshal(b, &tok); err != nil {
		return nil, nil, 0, fmt.Errorf("%s: %w", p, err)
	}
	var added []map[string]any
	if err := json.Unmarshal(tok["added_tokens"], &added); err != nil {
		return nil, nil, 0, fmt.Errorf("%s: added_tokens: %w", p, err)
	}
	audio := map[int]string{151646: "<|AUDIO|>", 151647: "<|audio_bos|>", 151648: "<|audio_eos|>"}
	special := map[string]int{}
	size := 0
	var vocab map[string]json.RawMessage
	var m map[string]json.RawMessage
	if err := json.Unmarshal(tok["model"], &m); err == nil {
		json.Unmarshal(m["vocab"], &vocab)
	}
	size = len(vocab)
	for _, a := range added {
		id := int(a["id"].(float64))
		if s, ok := audio[id]; ok {
			a["content"], a["special"] = s, true
			delete(audio, id)
		}
		special[a["content"].(string)] = id
		size = max(size, id+1)
	}
	for id, s := range audio {
		added = append(added, map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
		special[s] = id
		size = max(size, id+1)
	}
	for _, need := range []string{"<|im_end|>", "<|endoftext|>", "<|im_start|>"} {
		if _, ok := special[need]; !ok {
			return nil, nil, 0, fmt.Errorf("%s has no %s token: not a Qwen tokenizer", p, need)
		}
	}
	if tok["added_tokens"], err = json.Marshal(added); err != nil {
		return nil, nil, 0, err
	}
	out, err := json.Marshal(tok)
	if err != nil {
		return nil, nil, 0, err
	}
	cfg, _ := json.MarshalIndent(map[string]any{"tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|im_end|>",
		"pad_token": "<|endoftext|>", "bos_token": nil, "unk_token": nil, "model_max_length": 32768, "errors": "replace",
		"split_special_tokens": false, "clean_up_tokenization_spaces": false}, "", "  ")
	return map[string][]byte{"tokenizer.json": out, "tokenizer_config.json": cfg}, special, size, nil
}
