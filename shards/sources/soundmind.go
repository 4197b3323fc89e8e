package sources

import (
	"path"
	"path/filepath"
	"strings"
)

// soundmind reads SoundMind's audio logical reasoning (ALR) JSONL:
//
//	{"id": "0001", "user_content": "...", "answer": "<reasoning ...
//	 Answer: entailed.>", "label": 1}
//
// The question is user_content; the choices are "entailed" and
// "not-entailed"; label 1 (or "1") means entailed (index 0), 0 (or "0")
// not-entailed (index 1), anything else is malformed. The reasoning trace
// goes to Extra["reasoning"]. Audio lives at SPLIT/ID/question.wav, SPLIT
// being Options.Split or, when that is empty, the annotation file's base
// name up to its first '-', '_' or '.' ("dev-head40.jsonl" → "dev"). The id
// is required, since it names the audio directory.
type soundmind struct{}

func init() { register(soundmind{}) }

func (soundmind) Name() string { return "soundmind" }

func (soundmind) Describe() string {
	return "SoundMind ALR JSONL (id, user_content, answer = reasoning trace, label 1/0 = entailed/not-entailed); audio SPLIT/ID/question.wav"
}

// soundmindChoices are the two answers, in label order 1, 0.
var soundmindChoices = []string{"entailed", "not-entailed"}

func (f soundmind) Read(file string, opt Options) ([]Entry, error) {
	split := opt.Split
	if split == "" {
		split = splitFromFileName(file)
	}
	return readEntries(f.Name(), file, func(r *record, _ int) (Sample, error) {
		return parseSoundMind(r, split)
	})
}

// splitFromFileName is the base name up to the first '-', '_' or '.'
// ("train.jsonl" → "train"); the base name without extension when that
// leaves nothing.
func splitFromFileName(file string) string {
	base := filepath.Base(file)
	if i := strings.IndexAny(base, "-_."); i > 0 {
		return base[:i]
	}
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func parseSoundMind(r *record, split string) (Sample, error) {
	s := Sample{AnswerIndex: -1}
	id, ok, err := r.id("id")
	if err != nil {
		return s, err
	}
	if !ok {
		return s, Malformed(`missing "id": it names the audio directory SPLIT/ID/question.wav`)
	}
	s.ID = id
	s.Audio = path.Join(split, strings.TrimSpace(id), "question.wav")
	if s.Question, err = r.question("user_content"); err != nil {
		return s, err
	}
	trace, _, err := r.text("answer")
	if err != nil {
		return s, err
	}
	if trace != "" {
		s.Extra = map[string]string{"reasoning": trace}
	}
	v, ok := r.take("label")
	if !ok {
		return s, Malformed(`missing "label"`)
	}
	label, isInt := intValue(v)
	switch {
	case isInt && label == 1:
		setChoices(&s, soundmindChoices, 0)
	case isInt && label == 0:
		setChoices(&s, soundmindChoices, 1)
	default:
		return s, Malformed(`"label" must be 1 (entailed) or 0 (not-entailed), not %s`, rawText(v))
	}
	return s, nil
}

// traceVerdict is the verdict of a reasoning trace's last "Answer: ..." line,
// normalised to "entailed" or "not-entailed" ("not entailed." counts); ok is
// false when the trace has no such line or it says something else.
func traceVerdict(trace string) (string, bool) {
	lines := strings.Split(trace, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if len(l) < 7 || !strings.EqualFold(l[:7], "answer:") {
			continue
		}
		v := strings.ToLower(strings.TrimSpace(l[7:]))
		v = strings.Trim(v, ".*'\" ")
		v = strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '-' || r == '_' }), "-")
		switch v {
		case "entailed", "not-entailed":
			return v, true
		}
		return v, false
	}
	return "", false
}
