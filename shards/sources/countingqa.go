package sources

import (
	"bytes"
	"encoding/json"
	"strings"
)

// countingqa reads CountingQA annotations (JSON array or JSONL) in two
// shapes, detected per record:
//
//   - plain: {"sound": "clip.wav", "question": "How many times ...?",
//     "answer": "3", "id"?: ...};
//   - AudioSkills conversations: {"id": ..., "sound": "clip.wav",
//     "conversations": [{"from": "human", "value": "<sound>\nHow many ...?"},
//     {"from": "gpt", "value": "3"}]}: the question is the first human turn
//     with the <sound> marker removed, the answer the first gpt turn after it.
//
// Questions are open-ended (AnswerIndex -1) unless they end with an embedded
// choice list, in which case the answer must resolve to a choice. A record
// without an id takes the audio file's base name without its extension.
type countingqa struct{}

func init() { register(countingqa{}) }

func (countingqa) Name() string { return "countingqa" }

func (countingqa) Describe() string {
	return "CountingQA: {sound, question, answer} or AudioSkills {sound, conversations}; open-ended unless the question embeds Choices:"
}

func (f countingqa) Read(path string, _ Options) ([]Entry, error) {
	return readEntries(f.Name(), path, parseCountingQA)
}

func parseCountingQA(r *record, _ int) (Sample, error) {
	s := Sample{AnswerIndex: -1}
	id, hasID, err := r.id("id")
	if err != nil {
		return s, err
	}
	s.ID = id
	if s.Audio, err = r.audio("sound", "audio", "audio_path"); err != nil {
		return s, err
	}
	if !hasID {
		s.ID = fileStem(s.Audio)
	}
	var q, answer string
	if r.has("conversations") {
		q, answer, err = conversationQA(r)
	} else {
		if q, err = r.needText("question"); err == nil {
			answer, err = r.needText("answer")
		}
	}
	if err != nil {
		return s, err
	}
	stem, choices, ok := SplitChoices(q)
	s.Question = stem
	if !ok {
		setOpen(&s, answer)
		return s, nil
	}
	idx, err := ResolveAnswer(answer, choices)
	if err != nil {
		return s, err
	}
	setChoices(&s, choices, idx)
	return s, nil
}

// conversationQA takes the first human turn as the question (without the
// <sound> marker) and the first gpt turn after it as the answer.
func conversationQA(r *record) (question, answer string, err error) {
	v, _ := r.take("conversations")
	var turns []map[string]json.RawMessage
	if v[0] != '[' || json.Unmarshal(v, &turns) != nil {
		return "", "", Malformed(`"conversations" must be a list of {"from", "value"} objects, not %s`, JSONKind(v))
	}
	role := func(t map[string]json.RawMessage) string {
		s, _ := scalarText(bytes.TrimSpace(t["from"]))
		return strings.ToLower(strings.TrimSpace(s))
	}
	human := -1
	for i, t := range turns {
		if t == nil {
			return "", "", Malformed(`"conversations": turn %d is not an object`, i)
		}
		switch role(t) {
		case "human", "user":
			if human < 0 {
				human = i
				q, ok := scalarText(bytes.TrimSpace(t["value"]))
				if !ok {
					return "", "", Malformed(`"conversations": turn %d has no text "value"`, i)
				}
				question = removeSoundMarker(q)
			}
		case "gpt", "assistant":
			if human >= 0 {
				a, ok := scalarText(bytes.TrimSpace(t["value"]))
				if !ok {
					return "", "", Malformed(`"conversations": turn %d has no text "value"`, i)
				}
				return question, a, nil
			}
		}
	}
	if human < 0 {
		return "", "", Malformed(`"conversations" has no human turn`)
	}
	return "", "", Malformed(`"conversations" has no gpt turn after the first human turn`)
}

// removeSoundMarker drops every "<sound>" and the whitespace around it.
func removeSoundMarker(q string) string {
	parts := strings.Split(q, "<sound>")
	kept := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, " ")
}
