package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"earl/worker/model"
	"earl/worker/tokenizer"
)

// tools init-model writes, for each family, a directory that earl's
// checkpoint and tokenizer loaders accept with every tensor accounted for;
// the tokenizer's special ids are the ones config.json names, and the
// prompt template renders and round-trips through it.
func TestInitModelLoadsBack(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tools")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range []struct{ family, layout, prefix string }{
		{"qwen2-audio", "thinker", ""}, {"qwen2.5-omni", "thinker", ""}, {"qwen2.5-omni", "full", "thinker."},
	} {
		out := filepath.Join(dir, c.family+"-"+c.layout)
		if b, err := exec.Command(bin, "init-model", "--family", c.family, "--layout", c.layout, "--preset", "tiny", "--seed", "3", "--out", out).CombinedOutput(); err != nil {
			t.Fatalf("init-model: %v\n%s", err, b)
		}
		ck, err := model.Open(out)
		if err != nil {
			t.Fatalf("%s %s: %v", c.family, c.layout, err)
		}
		cfg := ck.Config
		if string(cfg.Family) != c.family || cfg.Prefix != c.prefix {
			t.Errorf("family %s prefix %q", cfg.Family, cfg.Prefix)
		}
		tok, err := tokenizer.LoadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]int{"<|AUDIO|>": cfg.AudioTokenID, "<|audio_bos|>": cfg.AudioStartID, "<|audio_eos|>": cfg.AudioEndID} {
			if id, err := tok.Special(name); err != nil || id != want {
				t.Errorf("%s: tokenizer id %d (%v), config %d", name, id, err, want)
			}
		}
		if tok.VocabSize() > cfg.Text.VocabSize {
			t.Errorf("tokenizer has %d ids, the embedding %d rows", tok.VocabSize(), cfg.Text.VocabSize)
		}
		tm, _ := tokenizer.NewTemplate("think")
		prompt, _ := tm.Render(tokenizer.Question{Question: "How many beeps are in the audio clip?", Choices: []string{"2", "3"}})
		f := tokenizer.ChatQwen2Audio
		if c.family == "qwen2.5-omni" {
			f = tokenizer.ChatQwen25Omni
		}
		ids, err := tokenizer.EncodeChat(tok, f, []tokenizer.Message{{Role: "user", Parts: []tokenizer.Part{{Audio: true}, {Text: prompt}}}},
			true, cfg.AudioTokenID, []int{cfg.AudioTokens(1000)})
		if err != nil {
			t.Fatal(err)
		}
		text, _ := f.Render([]tokenizer.Message{{Role: "user", Parts: []tokenizer.Part{{Audio: true}, {Text: prompt}}}}, true)
		if got := tok.Decode(ids); got != strings.Replace(text, tokenizer.AudioToken, strings.Repeat(tokenizer.AudioToken, 250), 1) {
			t.Errorf("prompt does not round-trip:\n%q", got)
		}
		// The learned merges make the prompt much shorter than its bytes.
		if len(ids)-250 > len(text)/2 {
			t.Errorf("%d tokens for %d bytes of prompt: merges barely apply", len(ids)-250, len(text))
		}
		ck.Close()
	}
}
