package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tools tokenize, run as a built binary on the real Qwen3 tokenizer
// directory: ids for the corpus lines match the JavaScript reference's
// (worker/tokenizer/testdata/expected.jsonl), --decode inverts them,
// --special adds the audio tokens, and bad input fails naming the line.
func TestTokenizeCommand(t *testing.T) {
	tokDir := "../../shared/testdata/qwen3-tokenizer"
	if _, err := os.Stat(filepath.Join(tokDir, "tokenizer.json")); err != nil {
		t.Fatalf("real Qwen3 tokenizer missing (%v): ../shared/testdata must sit beside the repository", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tools")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(stdin string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, append([]string{"tokenize", "--tokenizer", tokDir}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}

	// The first 120 reference lines, through a file.
	f, err := os.Open("../worker/tokenizer/testdata/expected.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type ref struct {
		Text    string `json:"text"`
		IDs     []int  `json:"ids"`
		Decoded string `json:"decoded"`
	}
	var refs []ref
	var in strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() && len(refs) < 120 {
		var r ref
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r)
		b, _ := json.Marshal(map[string]string{"text": r.Text})
		in.Write(append(b, '\n'))
	}
	jsonl := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(jsonl, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := run("", "--jsonl", jsonl)
	if err != nil {
		t.Fatalf("tools tokenize: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(refs) {
		t.Fatalf("%d output lines for %d inputs", len(lines), len(refs))
	}
	var decodeIn strings.Builder
	for i, l := range lines {
		var got struct{ IDs []int }
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("output line %d %q: %v", i+1, l, err)
		}
		if !slices.Equal(got.IDs, refs[i].IDs) {
			t.Errorf("line %d %q: ids %v, want %v", i+1, refs[i].Text, got.IDs, refs[i].IDs)
		}
		decodeIn.WriteString(l + "\n")
	}
	out, stderr, err = run(decodeIn.String(), "--decode")
	if err != nil {
		t.Fatalf("tools tokenize --decode: %v\n%s", err, stderr)
	}
	for i, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var got struct{ Text string }
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatal(err)
		}
		if got.Text != refs[i].Decoded {
			t.Errorf("decode line %d: %q, want %q", i+1, got.Text, refs[i].Decoded)
		}
	}

	// Audio tokens on top of Qwen3, special tokens as text, skipping them.
	audio := `{"text": "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>"}` + "\n"
	out, stderr, err = run(audio, "--special", "<|AUDIO|>=151646", "--special", "<|audio_bos|>=151647", "--special", "<|audio_eos|>=151648")
	if err != nil || strings.TrimSpace(out) != `{"ids":[14755,220,16,25,220,151647,151646,151648]}` {
		t.Errorf("--special: %q %v %s", out, err, stderr)
	}
	out, _, err = run(`{"text": "<|im_end|>"}`+"\n", "--split-special")
	if err != nil || strings.Contains(out, "151645") {
		t.Errorf("--split-special kept <|im_end|>: %q %v", out, err)
	}
	out, _, err = run(`{"ids": [151644, 872, 151645]}`+"\n", "--decode", "--skip-special")
	if err != nil || strings.TrimSpace(out) != `{"text":"user"}` {
		t.Errorf("--skip-special: %q %v", out, err)
	}

	// Bad input: the error names the line and what is wrong.
	for _, c := range []struct {
		stdin string
		args  []string
		want  []string
	}{
		{"{\"text\": \"ok\"}\nnot json\n", nil, []string{"standard input line 2", "not a JSON object"}},
		{`{"ids": [1]}` + "\n", nil, []string{"line 1", `no "text" field`}},
		{`{"text": 5}` + "\n", nil, []string{"line 1", `"text" is not a string`}},
		{"\n" + `{"ids": [1, 999999]}` + "\n", []string{"--decode"}, []string{"line 2", "ids[1] = 999999"}},
		{`{"ids": "x"}` + "\n", []string{"--decode"}, []string{"line 1", "not a list of integers"}},
		{"", []string{"--special", "<|AUDIO|>"}, []string{"NAME=ID"}},
	} {
		_, stderr, err := run(c.stdin, c.args...)
		if err == nil {
			t.Errorf("%q %v: accepted", c.stdin, c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q %v: stderr %q lacks %q", c.stdin, c.args, stderr, w)
			}
		}
	}

	// --bench writes its figures.
	text := filepath.Join(dir, "bench.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("You are a helpful assistant. 你好！\n", 200)), 0o644); err != nil {
		t.Fatal(err)
	}
	js := filepath.Join(dir, "bench.json")
	if _, stderr, err := run("", "--bench", text, "--repeat", "1", "--json", js); err != nil {
		t.Fatalf("--bench: %v\n%s", err, stderr)
	}
	var figs struct {
		Bytes, Tokens int
		WarmMBs       float64 `json:"warm_mb_s"`
		IDsSHA256     string  `json:"ids_sha256"`
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &figs); err != nil || figs.Bytes == 0 || figs.Tokens == 0 || figs.WarmMBs <= 0 || len(figs.IDsSHA256) != 64 {
		t.Errorf("bench JSON %s: %+v %v", b, figs, err)
	}
}
