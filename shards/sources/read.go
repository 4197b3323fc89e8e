package sources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds what every format shares: loading an annotation file as a
// list of undecoded records (JSON array or JSONL, sniffed), and a lenient view
// of one record's fields that remembers which ones the format mapped, so the
// rest can go to Sample.Extra.

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// rawRecord is one undecoded record of an annotation file.
type rawRecord struct {
	loc Location
	// num is the record's 1-based position: its line number in a JSONL file,
	// index+1 in a JSON array. Formats without ids derive one from it.
	num  int
	data []byte
}

// loadRecords reads path and splits it into records. The first non-space
// byte decides the layout: '[' a JSON array, '{' one JSON object per line.
// It fails only when the file cannot be read or is not JSON at all; the
// error names the file (and line:column for a JSON syntax error).
func loadRecords(path string) ([]rawRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	body := bytes.TrimPrefix(data, utf8BOM)
	first := bytes.IndexFunc(body, func(r rune) bool { return !isJSONSpace(r) })
	switch {
	case first < 0:
		return nil, fmt.Errorf("%s: empty file: expected a JSON array or one JSON object per line", path)
	case body[first] == '[':
		return loadArray(path, body)
	case body[first] == '{':
		return loadLines(path, body)
	}
	line, col := lineCol(body, first)
	return nil, fmt.Errorf("%s:%d:%d: not a JSON annotation file: it starts with %q, expected a JSON array ('[') or one JSON object per line ('{')",
		path, line, col, firstRune(body[first:]))
}

func isJSONSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func firstRune(b []byte) string {
	r, _ := utf8.DecodeRune(b)
	return string(r)
}

// loadArray decodes a JSON array into its elements; a syntax error anywhere
// fails the file, since no element boundary can be trusted after it.
func loadArray(path string, body []byte) ([]rawRecord, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(body, &elems); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(body, syntaxPos(body, se))
			return nil, fmt.Errorf("%s:%d:%d: invalid JSON: %v", path, line, col, err)
		}
		return nil, fmt.Errorf("%s: invalid JSON: %v", path, err)
	}
	recs := make([]rawRecord, len(elems))
	for i, e := range elems {
		recs[i] = rawRecord{loc: AtIndex(path, i), num: i + 1, data: e}
	}
	return recs, nil
}

// loadLines splits a JSONL file into its non-blank lines. Lines may be of any
// length and end in LF or CRLF.
func loadLines(path string, body []byte) ([]rawRecord, error) {
	whole := body
	var recs []rawRecord
	n := 0
	for len(body) > 0 {
		n++
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		recs = append(recs, rawRecord{loc: AtLine(path, n), num: n, data: line})
	}
	// A first line that is not JSON on its own while the whole file is one
	// JSON value: a pretty-printed object, which would otherwise come back
	// as one reject per line.
	if len(recs) >= 2 && !json.Valid(recs[0].data) && json.Valid(whole) {
		return nil, fmt.Errorf("%s: the file is one JSON object spread over several lines: expected one JSON object per line (JSONL) or a JSON array of objects", path)
	}
	return recs, nil
}

// syntaxPos turns a json.SyntaxError's Offset (bytes read, including the
// offending one) into the 0-based position of the offending byte.
func syntaxPos(data []byte, se *json.SyntaxError) int {
	pos := int(se.Offset) - 1
	if strings.Contains(se.Error(), "unexpected end of JSON input") {
		pos = len(data)
	}
	return max(0, min(pos, len(data)))
}

// lineCol converts a 0-based byte position into a 1-based line and column
// (columns count bytes).
func lineCol(data []byte, pos int) (line, col int) {
	pos = max(0, min(pos, len(data)))
	before := data[:pos]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = pos - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// record is a decoded JSON object with lenient typed accessors. Every key a
// format reads is marked used; extra() returns the others.
type record struct {
	m    map[string]json.RawMessage
	used map[string]bool
}

// decodeObject decodes one record, which must be a JSON object.
func decodeObject(data []byte) (*record, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			_, col := lineCol(data, syntaxPos(data, se))
			return nil, Malformed("invalid JSON at column %d: %v", col, err)
		}
		return nil, Malformed("expected a JSON object, found %s", JSONKind(data))
	}
	if m == nil {
		return nil, Malformed("expected a JSON object, found null")
	}
	return &record{m: m, used: map[string]bool{}}, nil
}

var idPattern = regexp.MustCompile(`"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*)`)

// salvageID digs the id out of a record that is not valid JSON, so its reject
// can still name it; "" when there is none to be found.
func salvageID(data []byte) string {
	m := idPattern.FindSubmatch(data)
	if m == nil {
		return ""
	}
	var s string
	if m[1][0] == '"' {
		if json.Unmarshal(m[1], &s) != nil {
			return ""
		}
		return s
	}
	return string(m[1])
}

// JSONKind names the JSON type of a raw value for error messages ("a
// string", "an object", "null", ...).
func JSONKind(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isNumber(v []byte) bool {
	return len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))
}

// has reports whether key is present with a non-null value; it does not
// mark the key used.
func (r *record) has(key string) bool {
	v, ok := r.m[key]
	return ok && string(bytes.TrimSpace(v)) != "null"
}

// firstKey returns the first of keys that has a non-null value, or "".
func (r *record) firstKey(keys ...string) string {
	for _, k := range keys {
		if r.has(k) {
			return k
		}
	}
	return ""
}

// take returns key's raw value and marks it used; ok is false when the key
// is absent or null.
func (r *record) take(key string) (json.RawMessage, bool) {
	v, ok := r.m[key]
	if !ok {
		return nil, false
	}
	r.used[key] = true
	v = bytes.TrimSpace(v)
	if string(v) == "null" {
		return nil, false
	}
	return v, true
}

// scalarText is a string's value or a number's literal text.
func scalarText(v json.RawMessage) (string, bool) {
	if len(v) > 0 && v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", false
		}
		return s, true
	}
	if isNumber(v) {
		return string(v), true
	}
	return "", false
}

// text reads a string field, accepting a number as its literal text.
func (r *record) text(key string) (string, bool, error) {
	v, ok := r.take(key)
	if !ok {
		return "", false, nil
	}
	s, ok := scalarText(v)
	if !ok {
		return "", true, Malformed("%q must be a string, not %s", key, JSONKind(v))
	}
	return s, true, nil
}

// needText is text for a required field.
func (r *record) needText(key string) (string, error) {
	s, ok, err := r.text(key)
	if err == nil && !ok {
		err = Malformed("missing %q", key)
	}
	return s, err
}

// question reads a required text field trimmed of surrounding whitespace.
func (r *record) question(key string) (string, error) {
	s, err := r.needText(key)
	return strings.TrimSpace(s), err
}

// str reads a field that must be a JSON string (the strict jsonl format).
func (r *record) str(key string) (string, bool, error) {
	v, ok := r.take(key)
	if !ok {
		return "", false, nil
	}
	var s string
	if v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", true, Malformed("%q must be a string, not %s", key, JSONKind(v))
	}
	return s, true, nil
}

// id reads an id: a string kept as it is, or a number kept as its literal
// text (183 stays "183").
func (r *record) id(key string) (string, bool, error) {
	v, ok := r.take(key)
	if !ok {
		return "", false, nil
	}
	s, ok := scalarText(v)
	if !ok {
		return "", true, Malformed("%q must be a string or a number, not %s", key, JSONKind(v))
	}
	return s, true, nil
}

// textList reads a list of strings (numbers accepted as their literal text).
func (r *record) textList(key string) ([]string, bool, error) {
	v, ok := r.take(key)
	if !ok {
		return nil, false, nil
	}
	var items []json.RawMessage
	if v[0] != '[' || json.Unmarshal(v, &items) != nil {
		return nil, true, Malformed("%q must be a list of strings, not %s", key, JSONKind(v))
	}
	out := make([]string, len(items))
	for i, it := range items {
		s, ok := scalarText(bytes.TrimSpace(it))
		if !ok {
			return nil, true, Malformed("%q: item %d must be a string, not %s", key, i, JSONKind(it))
		}
		out[i] = s
	}
	return out, true, nil
}

// textOrList reads a field that is either one string or a list of strings
// (MMAU's category drifts between the two).
func (r *record) textOrList(key string) ([]string, error) {
	v, ok := r.m[key]
	if !ok {
		return nil, nil
	}
	if v = bytes.TrimSpace(v); len(v) > 0 && v[0] == '[' {
		l, _, err := r.textList(key)
		return l, err
	}
	s, ok, err := r.text(key)
	if err != nil || !ok {
		return nil, err
	}
	return []string{s}, nil
}

// intValue parses an integer given as a JSON number or a string of digits.
func intValue(v json.RawMessage) (int, bool) {
	s, ok := scalarText(v)
	if !ok {
		return 0, false
	}
	s = strings.TrimSpace(s)
	if i, err := strconv.Atoi(s); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, false
	}
	return int(f), true
}

// rawText shortens a raw value for an error message.
func rawText(v []byte) string {
	s := string(bytes.TrimSpace(v))
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// audio reads the audio path from the first present key of keys. Besides a
// plain string it accepts a Hugging Face audio object {"path": "..."}.
func (r *record) audio(keys ...string) (string, error) {
	key := r.firstKey(keys...)
	if key == "" {
		for _, k := range keys {
			r.used[k] = true
		}
		return "", Malformed("missing audio path: none of %s", quoteList(keys))
	}
	v, _ := r.take(key)
	if s, ok := scalarText(v); ok && v[0] == '"' {
		return s, nil
	}
	if v[0] == '{' {
		var obj struct {
			Path *string `json:"path"`
		}
		if json.Unmarshal(v, &obj) == nil && obj.Path != nil {
			return *obj.Path, nil
		}
	}
	return "", Malformed("%q must be an audio path (a string or an object with \"path\"), not %s", key, JSONKind(v))
}

// extra returns the fields no accessor took: strings as they are, numbers as
// their literal, booleans as true/false, objects and lists as compact JSON;
// nulls are dropped. Nil when nothing is left.
func (r *record) extra() map[string]string {
	var out map[string]string
	for k, v := range r.m {
		if r.used[k] {
			continue
		}
		if s, ok := extraValue(v); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = s
		}
	}
	return out
}

func extraValue(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return "", false
	}
	if s, ok := scalarText(v); ok {
		return s, true
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return string(v), true
	}
	return buf.String(), true
}

// unknownKeys lists the record's keys that are not in known, sorted.
func (r *record) unknownKeys(known map[string]bool) []string {
	var out []string
	for k := range r.m {
		if !known[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func quoteList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = strconv.Quote(k)
	}
	return strings.Join(q, ", ")
}

// cleanChoices trims every choice; an empty choice is malformed.
func cleanChoices(key string, choices []string) ([]string, error) {
	out := make([]string, len(choices))
	for i, c := range choices {
		out[i] = strings.TrimSpace(c)
		if out[i] == "" {
			return nil, Malformed("%q: choice %s (index %d) is empty", key, ChoiceLetter(i), i)
		}
	}
	return out, nil
}

// answerFromValue resolves an answer field against choices: a JSON number is
// a 0-based index; a string equal to a choice is that choice; a string of
// digits is a 0-based index; any other string goes through ResolveAnswer
// (letter forms such as "B" or "B. text").
func answerFromValue(key string, v json.RawMessage, choices []string) (int, error) {
	if isNumber(v) {
		i, ok := intValue(v)
		if !ok {
			return -1, Malformed("%q: %s is not an integer choice index", key, rawText(v))
		}
		return checkIndex(i, choices)
	}
	s, ok := scalarText(v)
	if !ok {
		return -1, Malformed("%q must be a choice index or text, not %s", key, JSONKind(v))
	}
	if i, err := exactChoice(s, choices); err == nil {
		return i, nil
	}
	if i, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		return checkIndex(i, choices)
	}
	return ResolveAnswer(s, choices)
}

// checkIndex checks a 0-based answer index against the choices.
func checkIndex(i int, choices []string) (int, error) {
	if i < 0 || i >= len(choices) {
		return -1, &RecordError{Reason: ReasonAnswerNotInChoices,
			Detail: fmt.Sprintf("answer index %d is out of range for %d choices", i, len(choices))}
	}
	return i, nil
}

// exactChoice is the index of the choice equal to answer after trimming both,
// or an answer-not-in-choices error.
func exactChoice(answer string, choices []string) (int, error) {
	a := strings.TrimSpace(answer)
	for i, c := range choices {
		if strings.TrimSpace(c) == a {
			return i, nil
		}
	}
	return -1, &RecordError{Reason: ReasonAnswerNotInChoices,
		Detail: fmt.Sprintf("answer %q is not one of the choices %q", a, choices)}
}

// setChoices fills the choice fields of s from a resolved answer index.
func setChoices(s *Sample, choices []string, idx int) {
	s.Choices = choices
	s.AnswerIndex = idx
	s.Answer = choices[idx]
}

// setOpen makes s an open-ended question.
func setOpen(s *Sample, answer string) {
	s.Choices = nil
	s.AnswerIndex = -1
	s.Answer = strings.TrimSpace(answer)
}

// fileStem is a path's base name without its extension ("a/b/x.wav" → "x").
func fileStem(p string) string {
	b := filepath.Base(strings.ReplaceAll(p, `\`, "/"))
	return strings.TrimSuffix(b, filepath.Ext(b))
}

// parseFunc turns one decoded record into a Sample. num is the record's
// 1-based position (line number or index+1). It sets Sample.ID as early as it
// can, so rejects are named.
type parseFunc func(r *record, num int) (Sample, error)

// readEntries loads path and parses every record with parse: the shared body
// of every Format.Read. Each sample gets Source = name, the record's unmapped
// fields in Extra (the parser's own Extra entries win) and Validate's verdict.
func readEntries(name, path string, parse parseFunc) ([]Entry, error) {
	recs, err := loadRecords(path)
	if err != nil {
		return nil, fmt.Errorf("%s annotations: %w", name, err)
	}
	entries := make([]Entry, 0, len(recs))
	for _, rr := range recs {
		e := Entry{Loc: rr.loc}
		r, err := decodeObject(rr.data)
		if err != nil {
			e.Sample = Sample{ID: salvageID(rr.data), Source: name, AnswerIndex: -1}
			e.Err = err
			entries = append(entries, e)
			continue
		}
		s, err := parse(r, rr.num)
		s.Source = name
		if x := r.extra(); x != nil {
			if s.Extra == nil {
				s.Extra = x
			} else {
				for k, v := range x {
					if _, set := s.Extra[k]; !set {
						s.Extra[k] = v
					}
				}
			}
		}
		if err == nil {
			err = s.Validate()
		}
		e.Sample, e.Err = s, err
		entries = append(entries, e)
	}
	return entries, nil
}
