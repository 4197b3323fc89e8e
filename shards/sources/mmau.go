package sources

import "strings"

// mmau reads the MMAU benchmark's JSON array (test-mini, test):
//
//	{"id": "3fe6...", "audio_id": "./test-mini-audios/3fe6....wav",
//	 "question": "...", "choices": ["Man", "Woman", ...], "answer": "Man",
//	 "dataset": "AudioSet", "task": "sound", "split": "test-mini",
//	 "category": "Reasoning", "sub-category": "...", "difficulty": "medium"}
//
// The answer is the text of one choice (equal after trimming); category is a
// string or a list of strings. A record without an id takes the base name of
// audio_id without its extension, which is how MMAU names its clips.
type mmau struct{}

func init() { register(mmau{}) }

func (mmau) Name() string { return "mmau" }

func (mmau) Describe() string {
	return "MMAU JSON array (id, audio_id, question, choices, answer text, task, category, sub-category, difficulty)"
}

func (f mmau) Read(path string, _ Options) ([]Entry, error) {
	return readEntries(f.Name(), path, parseMMAU)
}

func parseMMAU(r *record, _ int) (Sample, error) {
	s := Sample{AnswerIndex: -1}
	id, hasID, err := r.id("id")
	if err != nil {
		return s, err
	}
	s.ID = id
	if s.Audio, err = r.audio("audio_id"); err != nil {
		return s, err
	}
	if !hasID {
		s.ID = fileStem(s.Audio)
	}
	if s.Question, err = r.question("question"); err != nil {
		return s, err
	}
	list, ok, err := r.textList("choices")
	if err != nil {
		return s, err
	}
	if !ok {
		return s, Malformed(`missing "choices"`)
	}
	choices, err := cleanChoices("choices", list)
	if err != nil {
		return s, err
	}
	answer, err := r.needText("answer")
	if err != nil {
		return s, err
	}
	idx, err := exactChoice(answer, choices)
	if err != nil {
		return s, err
	}
	setChoices(&s, choices, idx)
	if err := labels(r, &s, []string{"task"}, []string{"sub-category", "sub_category"}); err != nil {
		return s, err
	}
	return s, nil
}

// labels fills Task, Categories (from "category", a string or a list),
// SubCategory and Difficulty from the first present key of each kind.
func labels(r *record, s *Sample, taskKeys, subKeys []string) error {
	var err error
	if k := r.firstKey(taskKeys...); k != "" {
		if s.Task, _, err = r.text(k); err != nil {
			return err
		}
	}
	cats, err := r.textOrList("category")
	if err != nil {
		return err
	}
	for _, c := range cats {
		if c = strings.TrimSpace(c); c != "" {
			s.Categories = append(s.Categories, c)
		}
	}
	if k := r.firstKey(subKeys...); k != "" {
		if s.SubCategory, _, err = r.text(k); err != nil {
			return err
		}
	}
	if s.Difficulty, _, err = r.text("difficulty"); err != nil {
		return err
	}
	return nil
}
