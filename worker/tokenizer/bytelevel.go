package tokenizer

import (
	"unicode/utf8"
)

// byteToRune is GPT-2's bytes_to_unicode table, which byte-level BPE uses so
// that every vocabulary entry is a printable string: the printable Latin-1
// bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves and the other 68
// bytes are shifted to U+0100 onwards in byte order (space becomes 'Ġ',
// newline 'Ċ').
var byteToRune [256]rune

// runeToByte inverts byteToRune; runeToByteOK marks the runes in its range.
var (
	runeToByte   [0x144]byte
	runeToByteOK [0x144]bool
)

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
	}
	for b, r := range byteToRune {
		runeToByte[r] = byte(b)
		runeToByteOK[r] = true
	}
}

// byteLevelBytes maps a token spelled in the byte-level alphabet back to the
// raw bytes it stands for. ok is false when some character of tok is not in
// the alphabet; the caller then uses tok's own UTF-8 bytes, as Hugging
// Face's ByteLevel decoder does.
func byteLevelBytes(tok string) (b []byte, ok bool) {
	b = make([]byte, 0, len(tok))
	for _, r := range tok {
		if r < 0 || int(r) >= len(runeToByteOK) || !runeToByteOK[r] {
			return nil, false
		}
		b = append(b, runeToByte[r])
	}
	return b, true
}

// decodeBytes returns the raw bytes a token stands for in decoded text.
func decodeBytes(tok string) []byte {
	if b, ok := byteLevelBytes(tok); ok {
		return b
	}
	return []byte(tok)
}

// appendLossy appends b to dst as valid UTF-8, replacing each maximal
// subpart of an ill-formed sequence with one U+FFFD. This is the Unicode
// "substitution of maximal subparts" practice that Rust's
// String::from_utf8_lossy (Hugging Face's decoder), Python's
// bytes.decode("utf-8", "replace") and the WHATWG TextDecoder all follow:
// a truncated multi-byte sequence such as E4 B8 becomes one U+FFFD, not two,
// while a stray continuation byte or an impossible lead byte (C0, C1,
// F5..FF) is one U+FFFD each. Go's own range-over-string would give one
// U+FFFD per byte, hence this function.
func appendLossy(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		// Expected length and the valid range of the second byte (Unicode
		// Table 3-7, well-formed UTF-8 byte sequences).
		var n int
		lo, hi := byte(0x80), byte(0xBF)
		switch {
		case c >= 0xC2 && c <= 0xDF:
			n = 2
		case c == 0xE0:
			n, lo = 3, 0xA0
		case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
			n = 3
		case c == 0xED:
			n, hi = 3, 0x9F
		case c == 0xF0:
			n, lo = 4, 0x90
		case c >= 0xF1 && c <= 0xF3:
			n = 4
		case c == 0xF4:
			n, hi = 4, 0x8F
		default: // continuation byte or a byte that never starts a sequence
			dst = append(dst, "\uFFFD"...)
			i++
			continue
		}
		j := i + 1
		for k := 1; k < n; k++ {
			if j >= len(b) {
				break
			}
			x := b[j]
			if k == 1 {
				if x < lo || x > hi {
					break
				}
			} else if x < 0x80 || x > 0xBF {
				break
			}
			j++
		}
		if j-i == n {
			dst = append(dst, b[i:j]...)
		} else {
			dst = append(dst, "\uFFFD"...)
		}
		i = j
	}
	return dst
}

// validUTF8 returns s unchanged when it is valid UTF-8 and otherwise a copy
// with every maximal ill-formed subpart replaced by U+FFFD, the string a
// Python caller would get from bytes.decode("utf-8", "replace").
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(appendLossy(make([]byte, 0, len(s)+8), []byte(s)))
}
