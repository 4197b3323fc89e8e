package tokenizer

import (
	"fmt"
	"sort"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Tokenizer is a Qwen2 byte-level BPE tokenizer. Encode, Decode and the
// look-ups are safe for concurrent use; AddSpecial is not, so call it while
// setting up, before sharing the Tokenizer.
type Tokenizer struct {
	source string // the file or directory it was loaded from, for errors

	vocab   map[string]int32 // byte-level spelling -> id, the BPE model's own tokens
	idToTok []string         // id -> byte-level spelling ("" for ids the model lacks)
	merges  map[uint64]merge // (left id, right id) -> merge
	byteID  [256]int32       // id of each single byte's token
	nfc     bool             // apply NFC to the text between added tokens

	added    map[string]*addedToken // content -> added token
	addedIDs map[int]*addedToken    // id -> added token
	// Added tokens bucketed by their first byte, longest first, for the
	// leftmost-longest split; hasFirst says which bytes start one.
	byFirst  [256][]*addedToken
	hasFirst [256]bool

	decoded [][]byte // id -> bytes it decodes to (nil: unknown id)
	maxID   int

	cache wordCache
}

// addedToken is a token matched verbatim in the input before BPE: the
// control tokens (<|im_start|>, <|endoftext|>, <think>, <|AUDIO|>, ...).
type addedToken struct {
	content string
	id      int
	special bool // skipped by DecodeSkipSpecial, kept as text by EncodeNoSpecial
}

// Encode returns the token ids of text as Hugging Face's Qwen2 tokenizer
// gives them (tokenizer(text)["input_ids"]; no BOS/EOS is added). Added
// tokens that occur literally, such as "<|im_start|>", become their ids.
// Text that is not valid UTF-8 is first repaired as Python's
// bytes.decode("utf-8", "replace") would, each maximal ill-formed subpart
// becoming U+FFFD.
func (t *Tokenizer) Encode(text string) []int {
	return t.encode(text, false)
}

// EncodeNoSpecial is Encode with Hugging Face's split_special_tokens=True:
// special added tokens (those with "special": true, e.g. "<|im_end|>",
// "<|endoftext|>", and every token added with AddSpecial) are tokenised as
// the plain text they spell, so user-supplied text cannot inject control
// tokens. Non-special added tokens ("<think>", "<tool_call>" in Qwen3) are
// still matched, exactly as Hugging Face does.
func (t *Tokenizer) EncodeNoSpecial(text string) []int {
	return t.encode(text, true)
}

func (t *Tokenizer) encode(text string, textSpecial bool) []int {
	text = validUTF8(text)
	ids := make([]int, 0, len(text)/3+4)
	start := 0
	for i := 0; i < len(text); {
		if !t.hasFirst[text[i]] {
			i++
			continue
		}
		tok := t.longestAddedAt(text, i)
		if tok == nil {
			i++
			continue
		}
		if textSpecial && tok.special {
			// Hugging Face skips this match as a whole and resumes the
			// search after it: the span stays text.
			i += len(tok.content)
			continue
		}
		ids = t.encodeText(ids, text[start:i])
		ids = append(ids, tok.id)
		i += len(tok.content)
		start = i
	}
	return t.encodeText(ids, text[start:])
}

// longestAddedAt returns the longest added token that text has at byte i,
// or nil. Scanning left to right and taking the longest at the first
// position that has one is the leftmost-longest matching of Hugging Face's
// AddedVocabulary (an Aho-Corasick automaton in LeftmostLongest mode).
func (t *Tokenizer) longestAddedAt(text string, i int) *addedToken {
	for _, tok := range t.byFirst[text[i]] {
		if strings.HasPrefix(text[i:], tok.content) {
			return tok
		}
	}
	return nil
}

// encodeText appends the ids of a stretch of text that holds no added
// token: NFC, then the pre-tokenizer split, then byte-level BPE per
// pre-token.
func (t *Tokenizer) encodeText(ids []int, s string) []int {
	if s == "" {
		return ids
	}
	if t.nfc {
		s = norm.NFC.String(s)
	}
	for i := 0; i < len(s); {
		j := nextPiece(s, i)
		ids = t.encodeWord(ids, s[i:j])
		i = j
	}
	return ids
}

// Decode returns the text of ids: each token's bytes concatenated, then
// read as UTF-8 with every maximal ill-formed subpart (a token boundary in
// the middle of a character, say) replaced by U+FFFD, as Hugging Face's
// decode does. Added tokens decode to their content. Ids that are neither
// in the vocabulary nor added tokens are skipped, as Hugging Face skips
// them; check them with IDToToken first where that matters.
func (t *Tokenizer) Decode(ids []int) string {
	return t.decode(ids, false)
}

// DecodeSkipSpecial is Decode without the special added tokens
// (skip_special_tokens=True): "<|im_end|>" and "<|AUDIO|>" vanish, while
// non-special added tokens such as Qwen3's "<think>" stay.
func (t *Tokenizer) DecodeSkipSpecial(ids []int) string {
	return t.decode(ids, true)
}

func (t *Tokenizer) decode(ids []int, skipSpecial bool) string {
	n := 0
	for _, id := range ids {
		if id >= 0 && id < len(t.decoded) {
			n += len(t.decoded[id])
		}
	}
	raw := make([]byte, 0, n)
	for _, id := range ids {
		if id < 0 || id >= len(t.decoded) {
			continue
		}
		if skipSpecial {
			if a := t.addedIDs[id]; a != nil && a.special {
				continue
			}
		}
		raw = append(raw, t.decoded[id]...)
	}
	return string(appendLossy(make([]byte, 0, len(raw)+8), raw))
}

// TokenToID returns the id of a token: an added token's content
// ("<|im_end|>") or a vocabulary entry in its byte-level spelling ("Ġthe"
// for " the").
func (t *Tokenizer) TokenToID(tok string) (int, bool) {
	if a := t.added[tok]; a != nil {
		return a.id, true
	}
	id, ok := t.vocab[tok]
	return int(id), ok
}

// IDToToken returns the token with this id: an added token's content, or a
// vocabulary entry in its byte-level spelling.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if a := t.addedIDs[id]; a != nil {
		return a.content, true
	}
	if id >= 0 && id < len(t.idToTok) && t.idToTok[id] != "" {
		return t.idToTok[id], true
	}
	return "", false
}

// VocabSize is one more than the largest id, added tokens included: the
// number of rows an id-indexed table needs. For Qwen2/Qwen3 (151643 BPE
// tokens and added tokens from 151643 on) it equals len(tokenizer) in
// transformers, 151669 for Qwen3; the models' embedding matrices are
// padded beyond it.
func (t *Tokenizer) VocabSize() int { return t.maxID + 1 }

// Special returns the id of an added token by its content, e.g.
// Special("<|im_end|>"); it covers the non-special added tokens such as
// "<think>" too. The error names the tokenizer, so a prompt builder that
// needs "<|AUDIO|>" on a tokenizer without it fails with a useful message.
func (t *Tokenizer) Special(content string) (int, error) {
	if a := t.added[content]; a != nil {
		return a.id, nil
	}
	return 0, fmt.Errorf("tokenizer %s has no added token %q (add it with AddSpecial if the model defines it)", t.source, content)
}

// AddSpecial adds a special token, or re-points one: afterwards content
// encodes to id (matched verbatim, like <|im_end|>) and id decodes to
// content. A token that had this id or this content before is replaced.
// This is how the Qwen2-Audio / Qwen2.5-Omni audio tokens are put on top of
// the Qwen3 tokenizer file, whose ids 151646..151648 belong to other tokens:
//
//	tok.AddSpecial("<|AUDIO|>", 151646)
//	tok.AddSpecial("<|audio_bos|>", 151647)
//	tok.AddSpecial("<|audio_eos|>", 151648)
//
// It is not safe to call concurrently with any other method.
func (t *Tokenizer) AddSpecial(content string, id int) error {
	if content == "" {
		return fmt.Errorf("tokenizer %s: AddSpecial: empty token", t.source)
	}
	if id < 0 {
		return fmt.Errorf("tokenizer %s: AddSpecial(%q, %d): negative id", t.source, content, id)
	}
	if id > maxTokenID {
		return fmt.Errorf("tokenizer %s: AddSpecial(%q, %d): id above %d", t.source, content, id, maxTokenID)
	}
	t.addAdded(&addedToken{content: validUTF8(content), id: id, special: true})
	t.indexAdded()
	return nil
}

// maxTokenID bounds ids so that a typo cannot make the id tables huge.
const maxTokenID = 1 << 24

// addAdded inserts a, dropping any added token with the same id or content.
func (t *Tokenizer) addAdded(a *addedToken) {
	if old := t.addedIDs[a.id]; old != nil {
		delete(t.added, old.content)
	}
	if old := t.added[a.content]; old != nil {
		delete(t.addedIDs, old.id)
		t.setDecoded(old.id)
	}
	t.added[a.content] = a
	t.addedIDs[a.id] = a
	t.setDecoded(a.id)
}

// setDecoded recomputes what id decodes to.
func (t *Tokenizer) setDecoded(id int) {
	for len(t.decoded) <= id {
		t.decoded = append(t.decoded, nil)
	}
	switch {
	case t.addedIDs[id] != nil:
		// Hugging Face's ByteLevel decoder maps a token through the
		// byte-level alphabet when all its characters are in it and
		// otherwise takes its UTF-8 bytes; for ASCII control tokens such
		// as "<|im_end|>" both give the content itself.
		t.decoded[id] = decodeBytes(t.addedIDs[id].content)
	case id < len(t.idToTok) && t.idToTok[id] != "":
		t.decoded[id] = decodeBytes(t.idToTok[id])
	default:
		t.decoded[id] = nil
	}
}

// indexAdded rebuilds the first-byte buckets of the added tokens and the
// largest id.
func (t *Tokenizer) indexAdded() {
	t.byFirst = [256][]*addedToken{}
	t.hasFirst = [256]bool{}
	t.maxID = len(t.idToTok) - 1
	for _, a := range t.added {
		t.maxID = max(t.maxID, a.id)
		b := a.content[0]
		t.byFirst[b] = append(t.byFirst[b], a)
		t.hasFirst[b] = true
	}
	for b := range t.byFirst {
		toks := t.byFirst[b]
		sort.Slice(toks, func(i, j int) bool {
			if len(toks[i].content) != len(toks[j].content) {
				return len(toks[i].content) > len(toks[j].content)
			}
			return toks[i].content < toks[j].content
		})
	}
}
