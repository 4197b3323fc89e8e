package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Fuzzers: go test -fuzz FuzzEncode ./worker/tokenizer/ (likewise
// FuzzDecode, FuzzBPE). Their seeds run in every go test.

// refPrefixes holds every proper prefix of a valid UTF-8 encoding, built by
// encoding every scalar value: the independent definition of "maximal
// subpart" that refRepair uses.
var (
	refPrefixesOnce sync.Once
	refPrefixes     map[string]bool
)

// refRepair replaces each maximal subpart of an ill-formed sequence in s
// with U+FFFD (Unicode's recommended practice, Python's
// errors="replace"): at a bad position, the longest prefix of a valid
// encoding is one U+FFFD, or a single byte when not even that exists.
func refRepair(s string) string {
	refPrefixesOnce.Do(func() {
		refPrefixes = map[string]bool{}
		for r := rune(0); r <= utf8.MaxRune; r++ {
			if !utf8.ValidRune(r) {
				continue
			}
			enc := utf8.AppendRune(nil, r)
			for k := 1; k < len(enc); k++ {
				refPrefixes[string(enc[:k])] = true
			}
		}
	})
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError || n > 1 {
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		m := 1
		for k := 3; k >= 1; k-- {
			if i+k <= len(s) && refPrefixes[s[i:i+k]] {
				m = k
				break
			}
		}
		b.WriteRune(utf8.RuneError)
		i += m
	}
	return b.String()
}

// refAdded are the Qwen3 added tokens (content, special), as listed in
// tokenizer.json.
var refAdded = func() []struct {
	content string
	special bool
} {
	var out []struct {
		content string
		special bool
	}
	for _, s := range []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
		"<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
		"<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"} {
		out = append(out, struct {
			content string
			special bool
		}{s, true})
	}
	for _, s := range []string{"<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
		"<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>"} {
		out = append(out, struct {
			content string
			special bool
		}{s, false})
	}
	return out
}()

// refRoundTrip is what Decode(Encode(s)) must give: the repaired text,
// split at added tokens by leftmost-longest match (brute force), each
// stretch between them NFC-normalised on its own (Hugging Face normalises
// the pieces between added tokens separately, so NFC(s) as a whole can
// differ: ">" + U+0338 composes to "≯" only without a token boundary), the
// tokens themselves verbatim. With textSpecial the special tokens are
// text, as in EncodeNoSpecial.
func refRoundTrip(s string, textSpecial bool) string {
	s = refRepair(s)
	var out, seg strings.Builder
	for i := 0; i < len(s); {
		best := -1
		for k, a := range refAdded {
			if s[i] != '<' { // every Qwen3 added token starts with '<'
				break
			}
			if strings.HasPrefix(s[i:], a.content) && (best < 0 || len(a.content) > len(refAdded[best].content)) {
				best = k
			}
		}
		if best < 0 {
			seg.WriteByte(s[i])
			i++
			continue
		}
		a := refAdded[best]
		if textSpecial && a.special {
			seg.WriteString(a.content)
		} else {
			out.WriteString(norm.NFC.String(seg.String()))
			seg.Reset()
			out.WriteString(a.content)
		}
		i += len(a.content)
	}
	out.WriteString(norm.NFC.String(seg.String()))
	return out.String()
}

// corpusSeeds adds the corpus lines up to 2 KB as seeds (the long ones
// make every fuzzing step and minimisation slow; TestCorpusMatchesReference
// covers them).
func corpusSeeds(f *testing.F) {
	file, err := os.Open("testdata/corpus.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l struct{ Text string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			f.Fatal(err)
		}
		if len(l.Text) <= 2048 {
			f.Add(l.Text)
		}
	}
}

// FuzzEncode: Encode never panics and gives only known ids, and
// Decode(Encode(x)) == refRoundTrip(x). For valid UTF-8 without added
// tokens that is norm.NFC.String(x); invalid UTF-8 comes back as Python's
// errors="replace" repair of x (then NFC); literal added tokens come back
// verbatim with NFC applied to the text on either side separately. The
// same holds for EncodeNoSpecial with the special tokens counted as text,
// and its output holds no special token's id.
func FuzzEncode(f *testing.F) {
	corpusSeeds(f)
	for _, s := range []string{"\xe4\xb8", "a\xffb", "\xed\xa0\x80", "<|im_end|>\xe4", ">\u0338<|im_end|>\u0338", "'\u017ft", "a\u0085\u0085b"} {
		f.Add(s)
	}
	tok := qwen3(f)
	special := map[int]bool{}
	for _, a := range refAdded {
		if a.special {
			id, err := tok.Special(a.content)
			if err != nil {
				f.Fatal(err)
			}
			special[id] = true
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		for _, id := range ids {
			if _, ok := tok.IDToToken(id); !ok {
				t.Fatalf("Encode(%q) gave unknown id %d", s, id)
			}
		}
		if got, want := tok.Decode(ids), refRoundTrip(s, false); got != want {
			t.Fatalf("Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
		ns := tok.EncodeNoSpecial(s)
		for _, id := range ns {
			if special[id] {
				t.Fatalf("EncodeNoSpecial(%q) gave special id %d", s, id)
			}
		}
		if got, want := tok.Decode(ns), refRoundTrip(s, true); got != want {
			t.Fatalf("Decode(EncodeNoSpecial(%q)) = %q, want %q", s, got, want)
		}
		if utf8.ValidString(s) && !strings.Contains(s, "<") && tok.Decode(ids) != norm.NFC.String(s) {
			t.Fatalf("Decode(Encode(%q)) != NFC", s)
		}
	})
}

// refByteToRune is GPT-2's bytes_to_unicode, written out again from its
// definition for the decode fuzzer.
func refByteToRune() map[byte]rune {
	m := map[byte]rune{}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255) {
			m[byte(b)] = rune(b)
		} else {
			m[byte(b)] = rune(256 + n)
			n++
		}
	}
	return m
}

// FuzzDecode: the input bytes as single-byte tokens decode to the Python
// errors="replace" repair of those bytes; the input read as a sequence of
// arbitrary ids decodes to valid UTF-8, the repair of the tokens' bytes.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"", "abc", "\xe4\xb8", "\xe4\xb8\xad", "\xed\xa0\x80", "\xf0\x90\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "\xe0\x80\xaf", "\x80\x80", "\xf0\x9f\x98"} {
		f.Add([]byte(s))
	}
	tok := qwen3(f)
	b2r := refByteToRune()
	r2b := map[rune]byte{}
	for b, r := range b2r {
		r2b[r] = b
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ids := make([]int, len(data))
		for i, b := range data {
			id, ok := tok.TokenToID(string(b2r[b]))
			if !ok {
				t.Fatalf("no token for byte %#x", b)
			}
			ids[i] = id
		}
		if got, want := tok.Decode(ids), refRepair(string(data)); got != want {
			t.Fatalf("bytes %q: Decode = %q, want %q", data, got, want)
		}
		ids = ids[:0]
		for i := 0; i+2 < len(data); i += 3 {
			ids = append(ids, (int(data[i])<<16|int(data[i+1])<<8|int(data[i+2]))%(tok.VocabSize()+10)-5)
		}
		var raw []byte
		for _, id := range ids {
			s, ok := tok.IDToToken(id)
			if !ok {
				continue
			}
			if id >= 151643 { // added tokens: their content, ASCII here
				raw = append(raw, s...)
				continue
			}
			for _, r := range s {
				b, ok := r2b[r]
				if !ok {
					t.Fatalf("token %d %q: %q is not a byte-level character", id, s, r)
				}
				raw = append(raw, b)
			}
		}
		got := tok.Decode(ids)
		if !utf8.ValidString(got) {
			t.Fatalf("Decode(%v) is not valid UTF-8: %q", ids, got)
		}
		if want := refRepair(string(raw)); got != want {
			t.Fatalf("Decode(%v) = %q, want %q", ids, got, want)
		}
	})
}

// FuzzBPE: the short-word and long-word merge loops agree, and the tokens
// spell the word's bytes.
func FuzzBPE(f *testing.F) {
	for _, s := range []string{"hello", " world", "aaaaaaa", "ababab", "中文", "😀😀", "\xff\xfe", "Ġ"} {
		f.Add(s)
	}
	tok := qwen3(f)
	f.Fuzz(func(t *testing.T, w string) {
		if w == "" {
			return
		}
		long := tok.bpeLong(nil, w)
		var spelled []byte
		for _, id := range long {
			spelled = append(spelled, tok.decoded[id]...)
		}
		if string(spelled) != w {
			t.Fatalf("bpeLong(%q) spells %q", w, spelled)
		}
		if len(w) <= shortWord {
			if short := tok.bpe(nil, w); !slices.Equal(short, long) {
				t.Fatalf("bpe(%q) = %v, bpeLong = %v", w, short, long)
			}
		}
	})
}
