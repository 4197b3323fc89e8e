package sources

import (
	"path/filepath"
	"strings"
)

// audsem reads AudSem's multiple-choice QA (mc_qa) annotations, JSON array or
// JSONL:
//
//	{"file_name": "xyz.flac", "question": "...\nChoices:\nA. ...\nB. ...",
//	 "answer": "B. text", "thinking": "...", "semantic_elements": "...",
//	 "id": ...}
//
// The question must end with an embedded choice list; the answer is a letter
// or a choice's text. A file_name without an extension gets ".flac" (AudSem
// ships FLAC). A record without an id takes file_name without its extension.
// thinking and semantic_elements go to Extra.
type audsem struct{}

func init() { register(audsem{}) }

func (audsem) Name() string { return "audsem" }

func (audsem) Describe() string {
	return "AudSem mc_qa (file_name, question with embedded Choices:, answer \"B. text\", thinking, semantic_elements)"
}

func (f audsem) Read(path string, _ Options) ([]Entry, error) {
	return readEntries(f.Name(), path, parseAudSem)
}

func parseAudSem(r *record, _ int) (Sample, error) {
	s := Sample{AnswerIndex: -1}
	id, hasID, err := r.id("id")
	if err != nil {
		return s, err
	}
	s.ID = id
	if s.Audio, err = r.audio("file_name", "audio_path", "audio"); err != nil {
		return s, err
	}
	s.Audio = strings.TrimSpace(s.Audio)
	if !hasID {
		s.ID = fileStem(s.Audio)
	}
	if s.Audio != "" && filepath.Ext(s.Audio) == "" {
		s.Audio += ".flac"
	}
	q, err := r.needText("question")
	if err != nil {
		return s, err
	}
	stem, choices, ok := SplitChoices(q)
	s.Question = stem
	if !ok {
		return s, Malformed("question has no embedded choice list (a \"Choices:\" line followed by \"A. ...\" lines)")
	}
	answer, err := r.needText("answer")
	if err != nil {
		return s, err
	}
	idx, err := ResolveAnswer(answer, choices)
	if err != nil {
		return s, err
	}
	setChoices(&s, choices, idx)
	return s, nil
}
