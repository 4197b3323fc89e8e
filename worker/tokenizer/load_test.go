package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The vocab.json + merges.txt pair (what slow Qwen2Tokenizer checkpoints
// ship), written from the real tokenizer.json, gives the same ids; LoadDir
// adds tokenizer_config.json's added tokens to it.
func TestLoadVocabMergesAndDir(t *testing.T) {
	raw, err := os.ReadFile(qwen3Path)
	if err != nil {
		t.Fatalf("real Qwen3 tokenizer: %v", err)
	}
	var f struct {
		Model struct {
			Vocab  map[string]int `json:"vocab"`
			Merges [][]string     `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vocab, err := json.Marshal(f.Model.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	var merges strings.Builder
	merges.WriteString("#version: 0.2\n")
	for _, m := range f.Model.Merges {
		fmt.Fprintf(&merges, "%s %s\n", m[0], m[1])
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("vocab.json", string(vocab))
	write("merges.txt", merges.String())

	pair, err := LoadVocabMerges(filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pair.Special("<|im_end|>"); err == nil {
		t.Error("vocab.json + merges.txt alone should have no added tokens")
	}
	if _, err := LoadDir(dir); err != nil {
		t.Fatalf("LoadDir without tokenizer_config.json: %v", err)
	}
	cfg, err := os.ReadFile(filepath.Join(filepath.Dir(qwen3Path), "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	write("tokenizer_config.json", string(cfg))
	fromDir, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fromDir.VocabSize() != 151669 {
		t.Errorf("LoadDir VocabSize = %d, want 151669", fromDir.VocabSize())
	}
	for i, w := range readJSONL[expectedLine](t, "testdata/expected.jsonl") {
		if got := fromDir.Encode(w.Text); !slices.Equal(got, w.IDs) {
			t.Fatalf("LoadDir(vocab.json + merges.txt + tokenizer_config.json), line %d %s:\n got %v\nwant %v", i+1, short(w.Text), got, w.IDs)
		}
		if got := fromDir.Decode(w.IDs); got != w.Decoded {
			t.Fatalf("line %d: decode %q", i+1, short(got))
		}
		if !strings.Contains(w.Text, "<") {
			if got := pair.Encode(w.Text); !slices.Equal(got, w.IDs) {
				t.Fatalf("LoadVocabMerges, line %d: %v, want %v", i+1, got, w.IDs)
			}
		}
	}

	// LoadDir prefers tokenizer.json.
	real, err := os.ReadFile(qwen3Path)
	if err != nil {
		t.Fatal(err)
	}
	write("tokenizer.json", string(real))
	write("vocab.json", "not json")
	if _, err := LoadDir(dir); err != nil {
		t.Errorf("LoadDir with tokenizer.json present read vocab.json: %v", err)
	}
}

// tinyTokenizer is a minimal valid Qwen2-style tokenizer.json (the 256 byte
// tokens, a few merges, two added tokens) as a generic JSON tree, for the
// rejection tests to break one setting at a time.
func tinyTokenizer() map[string]any {
	vocab := map[string]any{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	vocab["he"], vocab["ll"], vocab["hell"] = 256, 257, 258
	return map[string]any{
		"version":    "1.0",
		"truncation": nil,
		"padding":    nil,
		"added_tokens": []any{
			map[string]any{"id": 259, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
			map[string]any{"id": 260, "content": "<think>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false},
		},
		"normalizer": map[string]any{"type": "NFC"},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": qwen2Pattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		}},
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "", "end_of_word_suffix": "",
			"fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": vocab, "merges": []any{[]any{"h", "e"}, []any{"l", "l"}, []any{"he", "ll"}},
		},
	}
}

func writeJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadTiny(t *testing.T) {
	tok, err := Load(writeJSON(t, tinyTokenizer()))
	if err != nil {
		t.Fatal(err)
	}
	// "hello" -> "hell" (he+ll) "o"; byte ids are the bytes.
	if got := tok.Encode("hello<think><|endoftext|>"); !slices.Equal(got, []int{258, 'o', 260, 259}) {
		t.Errorf("tiny Encode = %v", got)
	}
	// Legacy "a b" string merges read the same.
	legacy := tinyTokenizer()
	legacy["model"].(map[string]any)["merges"] = []any{"h e", "l l", "he ll"}
	tok2, err := Load(writeJSON(t, legacy))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok2.Encode("hello"); !slices.Equal(got, []int{258, 'o'}) {
		t.Errorf("legacy merges: %v", got)
	}
}

// Settings that would change the ids are refused with the file's name and
// the setting in the message, never tokenised differently in silence.
func TestLoadRejectsUnsupported(t *testing.T) {
	model := func(m map[string]any) map[string]any { return m["model"].(map[string]any) }
	added := func(m map[string]any) map[string]any { return m["added_tokens"].([]any)[0].(map[string]any) }
	for _, c := range []struct {
		name   string
		break_ func(m map[string]any)
		want   string
	}{
		{"byte fallback", func(m map[string]any) { model(m)["byte_fallback"] = true }, "byte_fallback"},
		{"not BPE", func(m map[string]any) { model(m)["type"] = "WordPiece" }, `model.type is "WordPiece"`},
		{"dropout", func(m map[string]any) { model(m)["dropout"] = 0.1 }, "dropout"},
		{"ignore merges", func(m map[string]any) { model(m)["ignore_merges"] = true }, "ignore_merges"},
		{"subword prefix", func(m map[string]any) { model(m)["continuing_subword_prefix"] = "##" }, "continuing_subword_prefix"},
		{"NFKC", func(m map[string]any) { m["normalizer"] = map[string]any{"type": "NFKC"} }, "normalizer"},
		{"other regex", func(m map[string]any) {
			m["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)["pattern"] = map[string]any{"Regex": `\s+|\w+`}
		}, "Split pattern"},
		{"GPT-2 pre-tokenizer", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}
		}, "pre_tokenizer"},
		{"prefix space", func(m map[string]any) {
			m["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[1].(map[string]any)["add_prefix_space"] = true
		}, "add_prefix_space"},
		{"no decoder", func(m map[string]any) { m["decoder"] = nil }, "decoder is missing"},
		{"template post-processor", func(m map[string]any) { m["post_processor"] = map[string]any{"type": "TemplateProcessing"} }, "post_processor"},
		{"truncation", func(m map[string]any) { m["truncation"] = map[string]any{"max_length": 512} }, "truncation"},
		{"lstrip", func(m map[string]any) { added(m)["lstrip"] = true }, "lstrip=true"},
		{"rstrip", func(m map[string]any) { added(m)["rstrip"] = true }, "rstrip=true"},
		{"single word", func(m map[string]any) { added(m)["single_word"] = true }, "single_word=true"},
		{"normalized", func(m map[string]any) { added(m)["normalized"] = true }, "normalized=true"},
		{"merge out of vocab", func(m map[string]any) { model(m)["merges"] = []any{[]any{"h", "x"}} }, `merged token "hx"`},
		{"missing byte", func(m map[string]any) { delete(model(m)["vocab"].(map[string]any), "Ġ") }, "byte 0x20"},
		{"three-part merge", func(m map[string]any) { model(m)["merges"] = []any{"h e l"} }, "two tokens"},
		{"shared id", func(m map[string]any) { model(m)["vocab"].(map[string]any)["xyz"] = 5 }, "share id 5"},
	} {
		m := tinyTokenizer()
		c.break_(m)
		p := writeJSON(t, m)
		_, err := Load(p)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q should name %s and %q", c.name, err, p, c.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

// merges.txt errors name the file and line; LoadDir says what it looked for.
func TestLoadVocabMergesErrors(t *testing.T) {
	dir := t.TempDir()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	vb, _ := json.Marshal(vocab)
	vp, mp := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	if err := os.WriteFile(vp, vb, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ merges, want string }{
		{"#version: 0.2\nh e\n", "merges.txt line 2"},     // "he" not in the vocabulary
		{"#version: 0.2\n\nh e l\n", "merges.txt line 3"}, // three parts
	} {
		if err := os.WriteFile(mp, []byte(c.merges), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadVocabMerges(vp, mp); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("merges %q: error %v, want it to name %q", c.merges, err, c.want)
		}
	}
	if _, err := LoadDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "vocab.json") {
		t.Errorf("empty dir: %v", err)
	}
}
