package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Load reads a Hugging Face tokenizer.json of the Qwen2 kind: a BPE model
// without byte fallback, an NFC (or no) normaliser, the Qwen2 Split regex
// followed by a ByteLevel pre-tokenizer, and a ByteLevel decoder. Any other
// setting that would change the ids is rejected with an error naming the
// file and the setting, rather than silently tokenising differently.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("tokenizer %s: not a tokenizer.json: %w", path, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("tokenizer %s: %s", path, fmt.Sprintf(format, a...))
	}
	if !isNull(f.Truncation) {
		return nil, bad("truncation is set: not supported (earl truncates itself; set it to null)")
	}
	if !isNull(f.Padding) {
		return nil, bad("padding is set: not supported (set it to null)")
	}
	nfc, err := checkNormalizer(f.Normalizer)
	if err != nil {
		return nil, bad("%v", err)
	}
	if err := checkPreTokenizer(f.PreTokenizer); err != nil {
		return nil, bad("%v", err)
	}
	if err := checkByteLevel("post_processor", f.PostProcessor, true); err != nil {
		return nil, bad("%v", err)
	}
	if err := checkByteLevel("decoder", f.Decoder, false); err != nil {
		return nil, bad("%v", err)
	}
	m := f.Model
	switch {
	case m.Type != "BPE":
		return nil, bad("model.type is %q: only BPE (byte-level, as in Qwen2) is supported", m.Type)
	case m.ByteFallback:
		return nil, bad("model.byte_fallback is true: byte-fallback BPE (Llama/Mistral style) is not supported, only byte-level BPE")
	case m.Dropout != nil && *m.Dropout != 0:
		return nil, bad("model.dropout is %v: BPE dropout is not supported", *m.Dropout)
	case m.IgnoreMerges:
		return nil, bad("model.ignore_merges is true: not supported (Qwen2 files set it false)")
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "":
		return nil, bad("model.continuing_subword_prefix is %q: not supported", *m.ContinuingSubwordPrefix)
	case m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return nil, bad("model.end_of_word_suffix is %q: not supported", *m.EndOfWordSuffix)
	}
	merges, err := parseMergesJSON(m.Merges)
	if err != nil {
		return nil, bad("model.merges: %v", err)
	}
	t, err := build(path, m.Vocab, merges, func(i int) string { return fmt.Sprintf("model.merges[%d]", i) }, nfc)
	if err != nil {
		return nil, err
	}
	for i, a := range f.AddedTokens {
		if err := t.addFromFile(a, fmt.Sprintf("added_tokens[%d]", i)); err != nil {
			return nil, err
		}
	}
	t.indexAdded()
	return t, nil
}

// LoadVocabMerges reads the vocab.json + merges.txt pair that slow
// (Python) Qwen2Tokenizer checkpoints ship, with the Qwen2 settings that
// tokenizer class hard-codes: NFC and the Qwen2 pre-tokenizer regex. It has
// no added tokens; LoadDir adds them from tokenizer_config.json, or use
// AddSpecial.
func LoadVocabMerges(vocabJSON, mergesTXT string) (*Tokenizer, error) {
	data, err := os.ReadFile(vocabJSON)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer %s: not a vocab.json (a JSON object of token -> id): %w", vocabJSON, err)
	}
	merges, lines, err := readMergesTXT(mergesTXT)
	if err != nil {
		return nil, err
	}
	t, err := build(vocabJSON, vocab, merges, func(i int) string {
		return fmt.Sprintf("%s line %d", mergesTXT, lines[i])
	}, true)
	if err != nil {
		return nil, err
	}
	t.indexAdded()
	return t, nil
}

// LoadDir loads the tokenizer of a Hugging Face model directory:
// tokenizer.json when it is there, otherwise vocab.json + merges.txt with
// the added tokens of tokenizer_config.json's added_tokens_decoder (when
// that file exists).
func LoadDir(dir string) (*Tokenizer, error) {
	tj := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(tj); err == nil {
		return Load(tj)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	vj, mt := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	for _, p := range []string{vj, mt} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("load tokenizer from %s: neither tokenizer.json nor vocab.json + merges.txt: %w", dir, err)
		}
	}
	t, err := LoadVocabMerges(vj, mt)
	if err != nil {
		return nil, err
	}
	t.source = dir
	cfg := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(cfg)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	var c struct {
		AddedTokensDecoder map[string]addedJSON `json:"added_tokens_decoder"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", cfg, err)
	}
	keys := make([]string, 0, len(c.AddedTokensDecoder))
	for k := range c.AddedTokensDecoder {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.source = cfg
	for _, k := range keys {
		a := c.AddedTokensDecoder[k]
		id, err := strconv.Atoi(k)
		if err != nil {
			return nil, fmt.Errorf("tokenizer %s: added_tokens_decoder key %q is not an id", cfg, k)
		}
		a.ID = &id
		if err := t.addFromFile(a, fmt.Sprintf("added_tokens_decoder[%q]", k)); err != nil {
			return nil, err
		}
	}
	t.source = dir
	t.indexAdded()
	return t, nil
}

// fileJSON is the part of tokenizer.json that decides the ids.
type fileJSON struct {
	AddedTokens   []addedJSON     `json:"added_tokens"`
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         struct {
		Type                    string          `json:"type"`
		Dropout                 *float64        `json:"dropout"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		ByteFallback            bool            `json:"byte_fallback"`
		IgnoreMerges            bool            `json:"ignore_merges"`
		Vocab                   map[string]int  `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
	} `json:"model"`
}

// addedJSON is one added token, in tokenizer.json's added_tokens or
// tokenizer_config.json's added_tokens_decoder.
type addedJSON struct {
	ID         *int   `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// addFromFile adds one added token read from t.source, where it is at.
func (t *Tokenizer) addFromFile(a addedJSON, at string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("tokenizer %s: %s: added token %q: %s", t.source, at, a.Content, fmt.Sprintf(format, args...))
	}
	switch {
	case a.ID == nil:
		return bad("no id")
	case *a.ID < 0 || *a.ID > maxTokenID:
		return bad("id %d out of range", *a.ID)
	case a.Content == "":
		return bad("empty content")
	// Hugging Face's flags all default to false in Qwen files; each true
	// one changes matching (strip neighbouring spaces, whole words only,
	// match after NFC), which earl does not implement.
	case a.LStrip:
		return bad("lstrip=true is not supported (Qwen2 files set it false)")
	case a.RStrip:
		return bad("rstrip=true is not supported (Qwen2 files set it false)")
	case a.SingleWord:
		return bad("single_word=true is not supported (Qwen2 files set it false)")
	case a.Normalized:
		return bad("normalized=true is not supported (Qwen2 files set it false)")
	}
	t.addAdded(&addedToken{content: a.Content, id: *a.ID, special: a.Special})
	return nil
}

// build makes a Tokenizer from a vocabulary and merge list; mergeAt names
// merge i in errors.
func build(source string, vocab map[string]int, merges [][2]string, mergeAt func(int) string, nfc bool) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, fmt.Errorf("tokenizer %s: empty vocabulary", source)
	}
	classOnce.Do(buildClassTables)
	t := &Tokenizer{
		source:   source,
		vocab:    make(map[string]int32, len(vocab)),
		merges:   make(map[uint64]merge, len(merges)),
		nfc:      nfc,
		added:    map[string]*addedToken{},
		addedIDs: map[int]*addedToken{},
	}
	maxID := -1
	for tok, id := range vocab {
		if id < 0 || id > maxTokenID {
			return nil, fmt.Errorf("tokenizer %s: vocabulary token %q has id %d, out of range", source, tok, id)
		}
		if tok == "" {
			return nil, fmt.Errorf("tokenizer %s: vocabulary has an empty token (id %d)", source, id)
		}
		t.vocab[tok] = int32(id)
		maxID = max(maxID, id)
	}
	t.idToTok = make([]string, maxID+1)
	for tok, id := range t.vocab {
		if prev := t.idToTok[id]; prev != "" {
			a, b := min(prev, tok), max(prev, tok)
			return nil, fmt.Errorf("tokenizer %s: vocabulary tokens %q and %q share id %d", source, a, b, id)
		}
		t.idToTok[id] = tok
	}
	for b := 0; b < 256; b++ {
		s := string(byteToRune[b])
		id, ok := t.vocab[s]
		if !ok {
			return nil, fmt.Errorf("tokenizer %s: vocabulary lacks the byte-level token %q for byte 0x%02X: not a byte-level BPE vocabulary", source, s, b)
		}
		t.byteID[b] = id
	}
	for i, p := range merges {
		a, okA := t.vocab[p[0]]
		b, okB := t.vocab[p[1]]
		ab, okAB := t.vocab[p[0]+p[1]]
		switch {
		case !okA:
			return nil, fmt.Errorf("tokenizer %s: %s: token %q is not in the vocabulary", source, mergeAt(i), p[0])
		case !okB:
			return nil, fmt.Errorf("tokenizer %s: %s: token %q is not in the vocabulary", source, mergeAt(i), p[1])
		case !okAB:
			return nil, fmt.Errorf("tokenizer %s: %s: merged token %q is not in the vocabulary", source, mergeAt(i), p[0]+p[1])
		}
		// A repeated pair keeps its last rank, as Hugging Face's
		// HashMap-collecting builder does.
		t.merges[pairKey(a, b)] = merge{rank: int32(i), id: ab}
	}
	t.decoded = make([][]byte, len(t.idToTok))
	for id, tok := range t.idToTok {
		if tok != "" {
			t.decoded[id] = decodeBytes(tok)
		}
	}
	return t, nil
}

// parseMergesJSON reads model.merges in either of its forms: pairs
// [["Ġ", "t"], ...] (tokenizers ≥ 0.20) or strings ["Ġ t", ...].
func parseMergesJSON(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err == nil {
		out := make([][2]string, len(pairs))
		for i, p := range pairs {
			if len(p) != 2 {
				return nil, fmt.Errorf("entry %d has %d parts, want 2", i, len(p))
			}
			out[i] = [2]string{p[0], p[1]}
		}
		return out, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err != nil {
		return nil, fmt.Errorf("neither a list of [a, b] pairs nor a list of \"a b\" strings: %w", err)
	}
	out := make([][2]string, len(strs))
	for i, s := range strs {
		a, b, ok := splitMerge(s)
		if !ok {
			return nil, fmt.Errorf("entry %d %q is not two tokens separated by one space", i, s)
		}
		out[i] = [2]string{a, b}
	}
	return out, nil
}

// splitMerge splits a merges.txt-style "a b" entry.
func splitMerge(s string) (a, b string, ok bool) {
	parts := strings.Split(s, " ")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// readMergesTXT reads merges.txt: an optional "#version" first line, then
// one "a b" pair per line (empty lines are skipped, as the Python tokenizer
// does). lines[i] is the 1-based line of merge i, for errors.
func readMergesTXT(path string) (merges [][2]string, lines []int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load tokenizer: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || (n == 1 && strings.HasPrefix(line, "#version")) {
			continue
		}
		a, b, ok := splitMerge(line)
		if !ok {
			return nil, nil, fmt.Errorf("tokenizer %s line %d: %q is not two tokens separated by one space", path, n, line)
		}
		merges = append(merges, [2]string{a, b})
		lines = append(lines, n)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return merges, lines, nil
}

func isNull(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) == 0 || string(s) == "null"
}

// checkNormalizer accepts no normaliser or NFC, and says whether to apply
// NFC.
func checkNormalizer(raw json.RawMessage) (nfc bool, err error) {
	if isNull(raw) {
		return false, nil
	}
	var n struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return false, fmt.Errorf("normalizer: %w", err)
	}
	if n.Type != "NFC" {
		return false, fmt.Errorf("normalizer is %s: only NFC (or none) is supported", compact(raw))
	}
	return true, nil
}

// checkPreTokenizer accepts exactly the Qwen2 pre-tokenizer:
// Sequence[Split(qwen2Pattern, Isolated), ByteLevel(no prefix space, no regex)].
func checkPreTokenizer(raw json.RawMessage) error {
	var p struct {
		Type          string `json:"type"`
		Pretokenizers []struct {
			Type    string `json:"type"`
			Pattern struct {
				Regex *string `json:"Regex"`
			} `json:"pattern"`
			Behavior       string `json:"behavior"`
			Invert         bool   `json:"invert"`
			AddPrefixSpace bool   `json:"add_prefix_space"`
			UseRegex       bool   `json:"use_regex"`
		} `json:"pretokenizers"`
	}
	if isNull(raw) {
		return errors.New("pre_tokenizer is missing: want the Qwen2 Split regex + ByteLevel")
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("pre_tokenizer: %w", err)
	}
	if p.Type != "Sequence" || len(p.Pretokenizers) != 2 || p.Pretokenizers[0].Type != "Split" || p.Pretokenizers[1].Type != "ByteLevel" {
		return fmt.Errorf("pre_tokenizer is %s: only Qwen2's Sequence[Split(regex), ByteLevel] is supported", compact(raw))
	}
	s, b := p.Pretokenizers[0], p.Pretokenizers[1]
	switch {
	case s.Pattern.Regex == nil || *s.Pattern.Regex != qwen2Pattern:
		return fmt.Errorf("pre_tokenizer Split pattern is %s: only the Qwen2 regex %q is supported", compact(raw), qwen2Pattern)
	case s.Behavior != "Isolated" || s.Invert:
		return fmt.Errorf("pre_tokenizer Split has behavior %q, invert %v: only Isolated, not inverted, is supported", s.Behavior, s.Invert)
	case b.AddPrefixSpace:
		return errors.New("pre_tokenizer ByteLevel has add_prefix_space=true: not supported (Qwen2 sets it false)")
	case b.UseRegex:
		return errors.New("pre_tokenizer ByteLevel has use_regex=true: not supported (Qwen2 sets it false)")
	}
	return nil
}

// checkByteLevel accepts a ByteLevel post-processor or decoder (both leave
// ids alone / decode bytes); nullOK allows it to be absent.
func checkByteLevel(what string, raw json.RawMessage, nullOK bool) error {
	if isNull(raw) {
		if nullOK {
			return nil
		}
		return fmt.Errorf("%s is missing: want ByteLevel", what)
	}
	var d struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d.Type != "ByteLevel" {
		return fmt.Errorf("%s is %s: only ByteLevel is supported", what, compact(raw))
	}
	return nil
}

// compact shortens a JSON value for an error message.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	s := b.String()
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
