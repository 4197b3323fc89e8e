package tokenizer

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// python3 runs a script with Debian's Python (jinja2 and numpy come with
// `make deps`).
func python3(t *testing.T, script string, stdin []byte) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "-c", script)
	cmd.Stdin = strings.NewReader(string(stdin))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s(python3-jinja2 comes with `make deps`)", err, out)
	}
	return string(out)
}

// jinjaMessages turns messages into the transformers content-list form the
// templates consume.
func jinjaMessages(msgs []Message) []map[string]any {
	out := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		if len(m.Parts) == 1 && !m.Parts[0].Audio {
			out[i] = map[string]any{"role": m.Role, "content": m.Parts[0].Text}
			continue
		}
		var content []map[string]any
		for _, p := range m.Parts {
			if p.Audio {
				content = append(content, map[string]any{"type": "audio", "audio_url": "clip.wav"})
			} else {
				content = append(content, map[string]any{"type": "text", "text": p.Text})
			}
		}
		out[i] = map[string]any{"role": m.Role, "content": content}
	}
	return out
}

var conversations = [][]Message{
	{{Role: "user", Parts: []Part{{Audio: true}, {Text: "What is the sound? Please choose the answer from the following options: ['a dog', 'a cat']."}}}},
	{
		TextMessage("system", "You are an audio expert."),
		{Role: "user", Parts: []Part{{Text: "Compare "}, {Audio: true}, {Text: " with "}, {Audio: true}, {Text: ".\nWhich is louder?"}}},
		TextMessage("assistant", "<think>The second is louder.</think><answer>the second</answer>"),
		{Role: "user", Parts: []Part{{Audio: true}, {Text: "And this one?"}}},
	},
	{TextMessage("user", "No audio here, just text with trailing spaces   ")},
}

// Render reproduces the processors' Jinja templates exactly, as rendered by
// jinja2 with transformers' settings (trim_blocks, lstrip_blocks).
func TestRenderMatchesJinjaTemplates(t *testing.T) {
	for _, f := range []ChatFormat{ChatQwen2Audio, ChatQwen25Omni} {
		tmpl := f.Jinja()
		for i, conv := range conversations {
			for _, gen := range []bool{true, false} {
				got, err := f.Render(conv, gen)
				if err != nil {
					t.Fatal(err)
				}
				in, _ := json.Marshal(map[string]any{"template": tmpl, "messages": jinjaMessages(conv), "gen": gen})
				want := python3(t, `
import json, sys, jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
d = json.load(sys.stdin)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
sys.stdout.write(json.dumps(env.from_string(d["template"]).render(messages=d["messages"], add_generation_prompt=d["gen"])))
`, in)
				var w string
				if err := json.Unmarshal([]byte(want), &w); err != nil {
					t.Fatalf("jinja output %q: %v", want, err)
				}
				if got != w {
					t.Errorf("%s conversation %d gen=%v:\n got %q\nwant %q", f, i, gen, got, w)
				}
			}
		}
	}
}

func TestPyReprMatchesPython(t *testing.T) {
	items := []string{"a dog", "it's", `say "hi"`, `both ' and "`, `back\slash`, "tab\there", "new\nline", "cr\r",
		"\x00\x1f\x7f", "\u00a0nbsp", "é café", "日本語", "emoji 🎵", "\u200bzero width", "\u2028line sep", "", "\U000e0001tag"}
	in, _ := json.Marshal(items)
	want := python3(t, `import json, sys; print(repr(json.load(sys.stdin)), end="")`, in)
	if got := PyList(items); got != want {
		t.Errorf("PyList:\n got %s\nwant %s", got, want)
	}
}

func TestPresets(t *testing.T) {
	q := Question{Question: "What is in the video?", Choices: []string{"a dog", "it's a cat"}, Source: "avqa"}
	for name, want := range map[string]string{
		"default": `What is in the video? Please choose the answer from the following options: ['a dog', "it's a cat"]. Output the final answer in <answer> </answer>.`,
		"r1-aqa":  `What is in the audio? Please choose the answer from the following options: ['a dog', "it's a cat"]. Output the final answer in <answer> </answer>.`,
		"think":   `What is in the video? Please choose the answer from the following options: ['a dog', "it's a cat"]. Output the thinking process in <think> </think> and final answer in <answer> </answer>.`,
		"new":     `What is in the video? Please choose the answer from the following options: ['a dog', "it's a cat"]. Output the thinking process (less than 50 words) in <think> </think> and final answer in <answer> </answer>.`,
	} {
		tm, err := NewTemplate(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tm.Render(q)
		if err != nil || got != want {
			t.Errorf("%s:\n got %q (%v)\nwant %q", name, got, err, want)
		}
	}
	for _, name := range Presets() {
		tm, err := NewTemplate(name)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := tm.Render(q)
		if !strings.Contains(s, "<answer> </answer>") {
			t.Errorf("%s does not ask for <answer>: %q", name, s)
		}
	}
	custom, err := NewTemplate("Q: {{.Question}}\n{{.ChoicesLettered}}\nAnswer with the letter.")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := custom.Render(q); s != "Q: What is in the video?\nA. a dog\nB. it's a cat\nAnswer with the letter." {
		t.Errorf("custom: %q", s)
	}
	for _, bad := range []string{"nonesuch", "{{.Answer}}", "{{.Question"} {
		if _, err := NewTemplate(bad); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}

type fakeEncoder map[string]int

func (f fakeEncoder) Encode(s string) []int {
	var ids []int
	for len(s) > 0 {
		matched := false
		for tok, id := range f {
			if strings.HasPrefix(s, tok) {
				ids, s, matched = append(ids, id), s[len(tok):], true
				break
			}
		}
		if !matched {
			ids, s = append(ids, int(s[0])), s[1:]
		}
	}
	return ids
}

func TestExpandAudio(t *testing.T) {
	enc := fakeEncoder{AudioToken: 1000, AudioBOS: 1001, AudioEOS: 1002, ImStart: 1003, ImEnd: 1004}
	ids, err := EncodeChat(enc, ChatQwen25Omni, conversations[1], true, 1000, []int{3, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	var runs []int
	for i := 0; i < len(ids); i++ {
		if ids[i] == 1000 {
			n := 0
			for ; i < len(ids) && ids[i] == 1000; i++ {
				n++
			}
			if ids[i] != 1002 || ids[i-n-1] != 1001 {
				t.Fatalf("audio run not between <|audio_bos|> and <|audio_eos|>")
			}
			runs = append(runs, n)
		}
	}
	if len(runs) != 3 || runs[0] != 3 || runs[1] != 1 || runs[2] != 2 {
		t.Errorf("audio runs %v, want [3 1 2]", runs)
	}
	if _, err := EncodeChat(enc, ChatQwen25Omni, conversations[1], true, 1000, []int{3, 1}); err == nil {
		t.Error("3 placeholders with 2 clips accepted")
	}
	if _, err := ExpandAudio([]int{1000}, 1000, []int{0}); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("a zero-token clip: %v", err)
	}
}

// Full rendered conversations, audio placeholders expanded, tokenized:
// ids identical to the independent reference (testdata/gen_chat_expected.mjs:
// the processors' Jinja templates run by @huggingface/jinja, tokenized by
// @lenml/tokenizers), on the real Qwen3 tokenizer with the audio tokens at
// 151646..151648 as in the Qwen2-Audio / Omni tokenizers.
func TestEncodeChatMatchesReference(t *testing.T) {
	tok, err := Load("../../../shared/testdata/qwen3-tokenizer/tokenizer.json")
	if err != nil {
		t.Fatalf("%v (../shared/testdata must sit beside the repository)", err)
	}
	for id, s := range map[int]string{151646: AudioToken, 151647: AudioBOS, 151648: AudioEOS} {
		if err := tok.AddSpecial(s, id); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile("testdata/chat_expected.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct {
			Format   ChatFormat `json:"format"`
			Gen      bool       `json:"add_generation_prompt"`
			Messages []struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
			} `json:"messages"`
			AudioTokens []int `json:"audio_tokens"`
			IDs         []int `json:"ids"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		var msgs []Message
		for _, m := range rec.Messages {
			var s string
			if json.Unmarshal(m.Content, &s) == nil {
				msgs = append(msgs, TextMessage(m.Role, s))
				continue
			}
			var parts []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			if err := json.Unmarshal(m.Content, &parts); err != nil {
				t.Fatal(err)
			}
			msg := Message{Role: m.Role}
			for _, p := range parts {
				msg.Parts = append(msg.Parts, Part{Text: p.Text, Audio: p.Type == "audio"})
			}
			msgs = append(msgs, msg)
		}
		got, err := EncodeChat(tok, rec.Format, msgs, rec.Gen, 151646, rec.AudioTokens)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, rec.IDs) {
			t.Errorf("%s conversation %d (gen %v): %d ids, reference %d\n got %v\nwant %v", rec.Format, n, rec.Gen, len(got), len(rec.IDs), got, rec.IDs)
		}
		n++
	}
	if n != 12 {
		t.Errorf("%d reference conversations, want 12", n)
	}
}
