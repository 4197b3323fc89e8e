package tokenizer

import (
	"sync"
	"unicode"
	"unicode/utf8"

	"earl/worker/tokenizer/internal/ucd"
)

// qwen2Pattern is the Split regex of the Qwen2 pre-tokenizer. Go's regexp
// has no look-ahead, so nextPiece implements it by hand; Load accepts only
// tokenizer.json files whose Split pattern is exactly this string.
const qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// Character classes of the regex. Every character is in exactly one.
const (
	clsOther   uint8 = iota // not \s, \p{L} or \p{N}: punctuation, symbols, marks, controls
	clsLetter               // \p{L}
	clsNumber               // \p{N}
	clsSpace                // \s other than \r and \n
	clsNewline              // \r or \n
)

// The class of every code point, from the Unicode 16.0 tables in
// internal/ucd: a two-stage table (256-rune blocks, identical blocks shared)
// with a flat ASCII table in front.
var (
	asciiClass  [utf8.RuneSelf]uint8
	classIndex  [(unicode.MaxRune + 1) >> 8]uint16
	classBlocks [][256]uint8
	classOnce   sync.Once
)

func buildClassTables() {
	flat := make([]uint8, unicode.MaxRune+1)
	set := func(t *unicode.RangeTable, c uint8) {
		for _, r := range t.R16 {
			for x := rune(r.Lo); x <= rune(r.Hi); x += rune(r.Stride) {
				flat[x] = c
			}
		}
		for _, r := range t.R32 {
			for x := rune(r.Lo); x <= rune(r.Hi); x += rune(r.Stride) {
				flat[x] = c
			}
		}
	}
	set(ucd.Letter, clsLetter)
	set(ucd.Number, clsNumber)
	set(ucd.WhiteSpace, clsSpace)
	flat['\r'], flat['\n'] = clsNewline, clsNewline
	seen := map[[256]uint8]uint16{}
	for blk := range classIndex {
		var b [256]uint8
		copy(b[:], flat[blk<<8:])
		id, ok := seen[b]
		if !ok {
			id = uint16(len(classBlocks))
			classBlocks = append(classBlocks, b)
			seen[b] = id
		}
		classIndex[blk] = id
	}
	copy(asciiClass[:], flat[:utf8.RuneSelf])
}

// runeClass is the regex class of r.
func runeClass(r rune) uint8 {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	return classBlocks[classIndex[r>>8]][r&0xFF]
}

// classAt returns the class of the character starting at byte i of s (valid
// UTF-8) and its length in bytes.
func classAt(s string, i int) (uint8, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return classBlocks[classIndex[r>>8]][r&0xFF], n
}

// runEnd returns the end of the run of characters of class cls starting at
// byte i.
func runEnd(s string, i int, cls uint8) int {
	for i < len(s) {
		c, n := classAt(s, i)
		if c != cls {
			break
		}
		i += n
	}
	return i
}

// contraction returns the length of the contraction that starts at byte i
// (an ASCII apostrophe), or 0. The regex group (?i:'s|'t|'re|'ve|'m|'ll|'d)
// is case-insensitive, so "'S" and "'Ll" count; under Unicode simple case
// folding the only non-ASCII character that folds to one of these letters
// is U+017F LATIN SMALL LETTER LONG S (to 's'), which Oniguruma's
// case-insensitive match accepts too.
func contraction(s string, i int) int {
	if i+1 >= len(s) {
		return 0
	}
	switch s[i+1] | 0x20 {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if i+2 < len(s) && s[i+2]|0x20 == 'e' {
			return 3
		}
	case 'l':
		if i+2 < len(s) && s[i+2]|0x20 == 'l' {
			return 3
		}
	}
	if s[i+1] == 0xC5 && i+2 < len(s) && s[i+2] == 0xBF { // U+017F ſ
		return 3
	}
	return 0
}

// nextPiece returns the end of the pre-token that starts at byte i of s
// (valid, NFC-normalised UTF-8, i < len(s)). It is the leftmost-first match
// of qwen2Pattern at i, the alternatives tried in order as Oniguruma does:
//
//  1. (?i:'s|'t|'re|'ve|'m|'ll|'d)  a contraction.
//  2. [^\r\n\p{L}\p{N}]?\p{L}+      letters, with one leading character that
//     is not a newline, letter or digit (" word", "'word", "\tword").
//  3. \p{N}                         a single digit: Qwen splits numbers digit
//     by digit.
//  4. " ?[^\s\p{L}\p{N}]+[\r\n]*"   punctuation/symbols, with an optional
//     leading space and trailing newlines.
//  5. \s*[\r\n]+                    whitespace up to and including its last
//     newline.
//  6. \s+(?!\S)                     a whitespace run that reaches the end of
//     the text, or else the run minus its last character, which is left
//     to start the next pre-token (" word", " 1"...).
//  7. \s+                           what is left: one whitespace character
//     before a non-whitespace one.
//
// Every character is matched by one of 2..7, so pre-tokens tile the text.
func nextPiece(s string, i int) int {
	c0, n0 := classAt(s, i)
	if s[i] == '\'' {
		if n := contraction(s, i); n > 0 {
			return i + n
		}
	}
	if c0 == clsLetter {
		return runEnd(s, i+n0, clsLetter)
	}
	c1 := clsOther
	hasNext := i+n0 < len(s)
	if hasNext {
		c1, _ = classAt(s, i+n0)
	}
	if c0 != clsNumber && c0 != clsNewline && hasNext && c1 == clsLetter {
		return runEnd(s, i+n0, clsLetter)
	}
	if c0 == clsNumber {
		return i + n0
	}
	if c0 == clsOther || (s[i] == ' ' && hasNext && c1 == clsOther) {
		j := i
		if s[i] == ' ' {
			j++
		}
		j = runEnd(s, j, clsOther)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// c0 is whitespace: find the maximal run, its last newline and the
	// start of its last character.
	j, afterNewline, last, runes := i, -1, i, 0
	for j < len(s) {
		c, n := classAt(s, j)
		if c != clsSpace && c != clsNewline {
			break
		}
		if c == clsNewline {
			afterNewline = j + n
		}
		last = j
		j += n
		runes++
	}
	switch {
	case afterNewline >= 0: // 5
		return afterNewline
	case j == len(s): // 6, at the end of the text
		return j
	case runes >= 2: // 6, giving back the last whitespace character
		return last
	default: // 7
		return j
	}
}
