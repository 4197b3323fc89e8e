package tokenizer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// qwen3Path is the real Qwen3 tokenizer (the same BPE, merges and
// pre-tokenizer as Qwen2/Qwen2.5), kept beside the repository.
const qwen3Path = "../../../shared/testdata/qwen3-tokenizer/tokenizer.json"

var (
	qwen3Once sync.Once
	qwen3Tok  *Tokenizer
	qwen3Err  error
)

// qwen3 loads the real tokenizer once per test binary. It fails, never
// skips, when the file is absent: the tests are meaningless without it.
func qwen3(t testing.TB) *Tokenizer {
	t.Helper()
	qwen3Once.Do(func() { qwen3Tok, qwen3Err = Load(qwen3Path) })
	if qwen3Err != nil {
		t.Fatalf("real Qwen3 tokenizer: %v (../shared/testdata must sit beside the repository)", qwen3Err)
	}
	return qwen3Tok
}

// withAudio is a fresh Qwen3 tokenizer with the Qwen2-Audio / Omni audio
// tokens at 151646..151648, where the Qwen3 file has other tokens.
func withAudio(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Load(qwen3Path)
	if err != nil {
		t.Fatal(err)
	}
	for id, s := range map[int]string{151646: "<|AUDIO|>", 151647: "<|audio_bos|>", 151648: "<|audio_eos|>"} {
		if err := tok.AddSpecial(s, id); err != nil {
			t.Fatal(err)
		}
	}
	return tok
}

func readJSONL[T any](t testing.TB, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s line %d: %v", path, n, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The ids Qwen's own documentation and transformers give for the default
// system prompt and earl's audio prefix.
func TestKnownIDs(t *testing.T) {
	tok := qwen3(t)
	for _, c := range []struct {
		text string
		ids  []int
	}{
		{"You are a helpful assistant.", []int{2610, 525, 264, 10950, 17847, 13}},
		{"Audio 1: ", []int{14755, 220, 16, 25, 220}},
		{"<|im_start|>user\nhi<|im_end|>", []int{151644, 872, 198, 6023, 151645}},
	} {
		if got := tok.Encode(c.text); !slices.Equal(got, c.ids) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.ids)
		}
	}
	if n := tok.VocabSize(); n != 151669 {
		t.Errorf("VocabSize = %d, want 151669 (151643 BPE tokens + 26 added)", n)
	}
}

type expectedLine struct {
	Text               string  `json:"text"`
	IDs                []int   `json:"ids"`
	Decoded            string  `json:"decoded"`
	IDsNoSpecial       *[]int  `json:"ids_no_special"`
	IDsAudio           *[]int  `json:"ids_audio"`
	DecodedSkipSpecial *string `json:"decoded_skip_special"`
}

// Every corpus line against the ids that @lenml/tokenizers (an independent
// JavaScript implementation of the Hugging Face pipeline) computed from the
// same tokenizer.json: testdata/gen_expected.mjs. Also checks
// split_special_tokens, the audio tokens on top of Qwen3, and decoding.
func TestCorpusMatchesReference(t *testing.T) {
	tok, audio := qwen3(t), withAudio(t)
	corpus := readJSONL[struct{ Text string }](t, "testdata/corpus.jsonl")
	want := readJSONL[expectedLine](t, "testdata/expected.jsonl")
	if len(corpus) != len(want) || len(want) < 300 {
		t.Fatalf("corpus has %d lines, expected.jsonl %d: rerun gen_expected.mjs", len(corpus), len(want))
	}
	bad := 0
	fail := func(format string, a ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, a...)
		}
	}
	for i, w := range want {
		line := i + 1
		if corpus[i].Text != w.Text {
			t.Fatalf("line %d: corpus and expected.jsonl disagree on the text: rerun gen_expected.mjs", line)
		}
		if got := tok.Encode(w.Text); !slices.Equal(got, w.IDs) {
			fail("line %d %s:\n got %v\nwant %v", line, short(w.Text), got, w.IDs)
		}
		if got := tok.Decode(w.IDs); got != w.Decoded {
			fail("line %d: Decode = %q, want %q", line, short(got), short(w.Decoded))
		}
		wantNS := w.IDs
		if w.IDsNoSpecial != nil {
			wantNS = *w.IDsNoSpecial
		}
		if got := tok.EncodeNoSpecial(w.Text); !slices.Equal(got, wantNS) {
			fail("line %d %s: EncodeNoSpecial\n got %v\nwant %v", line, short(w.Text), got, wantNS)
		}
		wantAudio := w.IDs
		if w.IDsAudio != nil {
			wantAudio = *w.IDsAudio
		}
		if got := audio.Encode(w.Text); !slices.Equal(got, wantAudio) {
			fail("line %d %s: with audio tokens\n got %v\nwant %v", line, short(w.Text), got, wantAudio)
		}
		wantSkip := w.Decoded
		if w.DecodedSkipSpecial != nil {
			wantSkip = *w.DecodedSkipSpecial
		}
		if got := tok.DecodeSkipSpecial(w.IDs); got != wantSkip {
			fail("line %d: DecodeSkipSpecial = %q, want %q", line, short(got), short(wantSkip))
		}
	}
	if bad > 0 {
		t.Fatalf("%d mismatches over %d corpus lines", bad, len(want))
	}
	t.Logf("%d corpus lines: ids, split-special ids, audio-token ids and decodes all identical to the reference", len(want))
}

// Decoding id sequences that cut characters apart, random byte tokens and
// random token sequences, against TextDecoder's U+FFFD replacement (the
// same maximal-subpart rule as Rust's from_utf8_lossy and Python's
// errors="replace").
func TestDecodeMatchesReference(t *testing.T) {
	tok := qwen3(t)
	cases := readJSONL[struct {
		IDs      []int   `json:"ids"`
		Text     string  `json:"text"`
		TextSkip *string `json:"text_skip_special"`
	}](t, "testdata/decode.jsonl")
	bad := 0
	for i, c := range cases {
		wantSkip := c.Text
		if c.TextSkip != nil {
			wantSkip = *c.TextSkip
		}
		got, gotSkip := tok.Decode(c.IDs), tok.DecodeSkipSpecial(c.IDs)
		if got != c.Text || gotSkip != wantSkip {
			bad++
			if bad <= 20 {
				t.Errorf("decode.jsonl line %d %v: Decode %q / skip %q, want %q / %q", i+1, c.IDs, got, gotSkip, c.Text, wantSkip)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d decode cases differ", bad, len(cases))
	}
}

func short(s string) string {
	if len(s) > 120 {
		return fmt.Sprintf("%q... (%d bytes)", s[:120], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// The lookups and AddSpecial's replacement of the Qwen3 tokens at the
// audio ids.
func TestLookupsAndAddSpecial(t *testing.T) {
	tok := qwen3(t)
	if id, err := tok.Special("<|im_end|>"); err != nil || id != 151645 {
		t.Errorf("Special(<|im_end|>) = %d, %v", id, err)
	}
	if id, err := tok.Special("<think>"); err != nil || id != 151667 {
		t.Errorf("Special(<think>) = %d, %v", id, err)
	}
	if _, err := tok.Special("<|AUDIO|>"); err == nil || !strings.Contains(err.Error(), "AddSpecial") {
		t.Errorf("Special(<|AUDIO|>) on Qwen3: err = %v, want a hint at AddSpecial", err)
	}
	if id, ok := tok.TokenToID("Ġthe"); !ok || id != 279 {
		t.Errorf("TokenToID(Ġthe) = %d, %v", id, ok)
	}
	if s, ok := tok.IDToToken(279); !ok || s != "Ġthe" {
		t.Errorf("IDToToken(279) = %q, %v", s, ok)
	}
	if s, ok := tok.IDToToken(151646); !ok || s != "<|object_ref_start|>" {
		t.Errorf("IDToToken(151646) = %q, %v", s, ok)
	}
	for _, id := range []int{-1, 151669, 1 << 30} {
		if s, ok := tok.IDToToken(id); ok {
			t.Errorf("IDToToken(%d) = %q, want none", id, s)
		}
	}
	// Unknown ids are skipped, as Hugging Face skips them.
	if got := tok.Decode([]int{-5, 14755, 999999, 220}); got != "Audio " {
		t.Errorf("Decode with unknown ids = %q", got)
	}

	a := withAudio(t)
	prompt := "Audio 1: <|audio_bos|><|AUDIO|><|AUDIO|><|audio_eos|>\n"
	want := []int{14755, 220, 16, 25, 220, 151647, 151646, 151646, 151648, 198}
	if got := a.Encode(prompt); !slices.Equal(got, want) {
		t.Errorf("audio prompt: %v, want %v", got, want)
	}
	if got := a.Decode(want); got != prompt {
		t.Errorf("audio prompt decodes to %q", got)
	}
	if got := a.DecodeSkipSpecial(want); got != "Audio 1: \n" {
		t.Errorf("audio prompt without specials: %q", got)
	}
	if got := a.EncodeNoSpecial("<|AUDIO|>"); slices.Contains(got, 151646) {
		t.Errorf("EncodeNoSpecial kept <|AUDIO|> as a token: %v", got)
	}
	// The Qwen3 token that had id 151646 is gone: it is text now.
	if _, ok := a.TokenToID("<|object_ref_start|>"); ok {
		t.Error("<|object_ref_start|> still an added token after AddSpecial took its id")
	}
	if got := a.Encode("<|object_ref_start|>"); len(got) < 2 {
		t.Errorf("<|object_ref_start|> after AddSpecial = %v, want plain text tokens", got)
	}
	if a.VocabSize() != 151669 {
		t.Errorf("VocabSize with audio tokens = %d", a.VocabSize())
	}
	// Re-pointing a token moves it; a new id beyond the table grows it.
	if err := a.AddSpecial("<|AUDIO|>", 151700); err != nil {
		t.Fatal(err)
	}
	if got := a.Encode("<|AUDIO|>"); !slices.Equal(got, []int{151700}) {
		t.Errorf("re-pointed <|AUDIO|> = %v", got)
	}
	if s, ok := a.IDToToken(151646); ok {
		t.Errorf("id 151646 still decodes to %q after its token moved", s)
	}
	if a.VocabSize() != 151701 {
		t.Errorf("VocabSize = %d, want 151701", a.VocabSize())
	}
	for _, c := range []struct {
		s  string
		id int
	}{{"", 5}, {"<x>", -1}, {"<x>", 1 << 30}} {
		if err := a.AddSpecial(c.s, c.id); err == nil {
			t.Errorf("AddSpecial(%q, %d) accepted", c.s, c.id)
		}
	}
}

// Encode and Decode from many goroutines at once (run with -race): the
// word cache is shared.
func TestConcurrentUse(t *testing.T) {
	tok := qwen3(t)
	want := readJSONL[expectedLine](t, "testdata/expected.jsonl")
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := 0; k < len(want); k++ {
				w := want[(k*7+g*13)%len(want)]
				if got := tok.Encode(w.Text); !slices.Equal(got, w.IDs) {
					errs <- fmt.Sprintf("goroutine %d: %s", g, short(w.Text))
					return
				}
				if got := tok.Decode(w.IDs); got != w.Decoded {
					errs <- fmt.Sprintf("goroutine %d: decode %s", g, short(w.Text))
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
