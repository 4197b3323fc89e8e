package sources

import "strings"

// mmsu reads MMSU (spoken language understanding) annotations, JSON array or
// JSONL, in two shapes detected per record:
//
//   - options form: {"id", "audio_path" | "audio" | "path", "question",
//     "options": [...], "answer_index": 2, ...};
//   - the official form: {"id", "audio_path" | "audio", "question",
//     "choice_a", "choice_b", "choice_c", "choice_d", "answer_gt",
//     "task_name", "category", "sub-category", "sub-sub-category",
//     "linguistics_sub_discipline", ...}, answer_gt the text of the correct
//     choice or a bare letter.
//
// Task comes from task_name (or task), Categories from category, SubCategory
// from sub-category; everything else goes to Extra. A record without an id
// takes its audio file's base name without the extension.
type mmsu struct{}

func init() { register(mmsu{}) }

func (mmsu) Name() string { return "mmsu" }

func (mmsu) Describe() string {
	return "MMSU: official form (choice_a..choice_d, answer_gt, task_name) or options form (options, answer_index)"
}

func (f mmsu) Read(path string, _ Options) ([]Entry, error) {
	return readEntries(f.Name(), path, parseMMSU)
}

func parseMMSU(r *record, _ int) (Sample, error) {
	s := Sample{AnswerIndex: -1}
	id, hasID, err := r.id("id")
	if err != nil {
		return s, err
	}
	s.ID = id
	if s.Audio, err = r.audio("audio_path", "audio", "path"); err != nil {
		return s, err
	}
	if !hasID {
		s.ID = fileStem(s.Audio)
	}
	if s.Question, err = r.question("question"); err != nil {
		return s, err
	}
	var choices []string
	var idx int
	switch {
	case r.has("options"):
		choices, idx, err = mmsuOptions(r)
	case r.has("choice_a"):
		choices, idx, err = mmsuOfficial(r)
	default:
		err = Malformed(`no choices: neither an "options" list nor "choice_a".."choice_d"`)
	}
	if err != nil {
		return s, err
	}
	setChoices(&s, choices, idx)
	if err := labels(r, &s, []string{"task_name", "task"}, []string{"sub-category", "sub_category"}); err != nil {
		return s, err
	}
	return s, nil
}

func mmsuOptions(r *record) ([]string, int, error) {
	list, _, err := r.textList("options")
	if err != nil {
		return nil, 0, err
	}
	choices, err := cleanChoices("options", list)
	if err != nil {
		return nil, 0, err
	}
	key := r.firstKey("answer_index", "answer")
	if key == "" {
		return nil, 0, Malformed(`missing "answer_index"`)
	}
	v, _ := r.take(key)
	idx, err := answerFromValue(key, v, choices)
	return choices, idx, err
}

// mmsuOfficial collects choice_a, choice_b, ... while they are present. Empty
// trailing choices (a three-way question with an empty choice_d) are dropped;
// an empty choice before a filled one is malformed.
func mmsuOfficial(r *record) ([]string, int, error) {
	var list []string
	for c := 'a'; c <= 'z'; c++ {
		key := "choice_" + string(c)
		if _, present := r.m[key]; !present {
			break
		}
		t, _, err := r.text(key)
		if err != nil {
			return nil, 0, err
		}
		list = append(list, t)
	}
	for len(list) > 0 && strings.TrimSpace(list[len(list)-1]) == "" {
		list = list[:len(list)-1]
	}
	if len(list) < 2 {
		return nil, 0, Malformed("fewer than two non-empty choices in choice_a, choice_b, ...")
	}
	choices := make([]string, len(list))
	for i, t := range list {
		if choices[i] = strings.TrimSpace(t); choices[i] == "" {
			return nil, 0, Malformed("%q is empty", "choice_"+strings.ToLower(ChoiceLetter(i)))
		}
	}
	key := r.firstKey("answer_gt", "answer")
	if key == "" {
		return nil, 0, Malformed(`missing "answer_gt"`)
	}
	answer, err := r.needText(key)
	if err != nil {
		return nil, 0, err
	}
	idx, err := ResolveAnswer(answer, choices)
	return choices, idx, err
}
