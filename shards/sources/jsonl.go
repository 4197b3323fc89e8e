package sources

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// jsonlFormat is earl's own generic format for anyone else's data: one JSON
// object per line (a JSON array of the same objects is accepted too).
//
//	{"id": "q1", "audio": "clips/q1.wav", "question": "What is playing?",
//	 "choices": ["guitar", "piano"], "answer": "piano"}
//
// Required: id (string or number), audio, question. Optional: choices (a list
// of strings) with answer (the text of one choice) and/or answer_index
// (0-based; when both are given they must agree); for an open-ended question
// answer alone; task, category (a string or a list of strings),
// sub_category, difficulty; meta, an object whose fields go to Extra. Any
// other top-level key is malformed, so that typos are caught. docs/formats.md
// is the full specification.
type jsonlFormat struct{}

func init() { register(jsonlFormat{}) }

func (jsonlFormat) Name() string { return "jsonl" }

func (jsonlFormat) Describe() string {
	return "earl's generic JSONL: id, audio, question, [choices + answer | answer_index], [task, category, sub_category, difficulty, meta] (strict keys)"
}

func (f jsonlFormat) Read(path string, _ Options) ([]Entry, error) {
	return readEntries(f.Name(), path, parseJSONL)
}

var jsonlKeys = map[string]bool{
	"id": true, "audio": true, "question": true, "choices": true, "answer": true,
	"answer_index": true, "task": true, "category": true, "sub_category": true,
	"difficulty": true, "meta": true,
}

func parseJSONL(r *record, _ int) (Sample, error) {
	s := Sample{AnswerIndex: -1}
	id, ok, err := r.id("id")
	if err != nil {
		return s, err
	}
	if !ok {
		return s, Malformed(`missing "id"`)
	}
	s.ID = id
	if unknown := r.unknownKeys(jsonlKeys); len(unknown) > 0 {
		return s, Malformed("unknown key(s) %s: the jsonl format allows only id, audio, question, choices, answer, answer_index, task, category, sub_category, difficulty, meta (put anything else under \"meta\")",
			quoteList(unknown))
	}
	if s.Audio, err = requiredString(r, "audio"); err != nil {
		return s, err
	}
	if s.Question, err = requiredString(r, "question"); err != nil {
		return s, err
	}
	s.Question = strings.TrimSpace(s.Question)
	if err := jsonlAnswer(r, &s); err != nil {
		return s, err
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"task", &s.Task}, {"sub_category", &s.SubCategory}, {"difficulty", &s.Difficulty}} {
		if *f.dst, _, err = r.str(f.key); err != nil {
			return s, err
		}
	}
	if err := jsonlCategory(r, &s); err != nil {
		return s, err
	}
	if s.Extra, err = jsonlMeta(r); err != nil {
		return s, err
	}
	return s, nil
}

func requiredString(r *record, key string) (string, error) {
	v, ok, err := r.str(key)
	if err == nil && !ok {
		err = Malformed("missing %q", key)
	}
	return v, err
}

func jsonlAnswer(r *record, s *Sample) error {
	answer, hasAnswer, err := r.str("answer")
	if err != nil {
		return err
	}
	var idx int
	hasIndex := false
	if v, ok := r.take("answer_index"); ok {
		i, isInt := intValue(v)
		if !isNumber(v) || !isInt {
			return Malformed(`"answer_index" must be an integer, not %s`, rawText(v))
		}
		idx, hasIndex = i, true
	}
	var choices []string
	if v, ok := r.take("choices"); ok {
		var list []json.RawMessage
		if v[0] != '[' || json.Unmarshal(v, &list) != nil {
			return Malformed(`"choices" must be a list of strings, not %s`, JSONKind(v))
		}
		for i, it := range list {
			var c string
			if it = bytes.TrimSpace(it); len(it) == 0 || it[0] != '"' || json.Unmarshal(it, &c) != nil {
				return Malformed(`"choices": item %d must be a string, not %s`, i, JSONKind(it))
			}
			choices = append(choices, c)
		}
		if choices, err = cleanChoices("choices", choices); err != nil {
			return err
		}
	}
	if len(choices) == 0 {
		if hasIndex {
			return Malformed(`"answer_index" without "choices"`)
		}
		if !hasAnswer {
			return Malformed(`missing "answer"`)
		}
		setOpen(s, answer)
		return nil
	}
	switch {
	case hasIndex:
		if _, err := checkIndex(idx, choices); err != nil {
			return err
		}
		if hasAnswer && strings.TrimSpace(answer) != choices[idx] {
			return &RecordError{Reason: ReasonAnswerNotInChoices,
				Detail: fmt.Sprintf(`"answer" %q disagrees with "answer_index" %d, which is choice %q`, strings.TrimSpace(answer), idx, choices[idx])}
		}
	case hasAnswer:
		if idx, err = exactChoice(answer, choices); err != nil {
			return err
		}
	default:
		return Malformed(`"choices" without "answer" or "answer_index"`)
	}
	setChoices(s, choices, idx)
	return nil
}

func jsonlCategory(r *record, s *Sample) error {
	v, ok := r.take("category")
	if !ok {
		return nil
	}
	var one string
	if v[0] == '"' && json.Unmarshal(v, &one) == nil {
		s.Categories = []string{one}
		return nil
	}
	var list []string
	if v[0] != '[' || json.Unmarshal(v, &list) != nil {
		return Malformed(`"category" must be a string or a list of strings, not %s`, JSONKind(v))
	}
	s.Categories = list
	return nil
}

func jsonlMeta(r *record) (map[string]string, error) {
	v, ok := r.take("meta")
	if !ok {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if v[0] != '{' || json.Unmarshal(v, &m) != nil {
		return nil, Malformed(`"meta" must be an object, not %s`, JSONKind(v))
	}
	var out map[string]string
	for k, x := range m {
		if s, ok := extraValue(x); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = s
		}
	}
	return out, nil
}
