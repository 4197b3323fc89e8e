package sources

import "strconv"

// avqa reads AVQA annotations in the two shapes in circulation, detected per
// record:
//
//   - the r1-aqa JSONL: {"id": 183, "video_name": "-HG3Omg_89c_000030",
//     "question_text": "...", "multi_choice": [...], "answer": 1,
//     "audio_path": "audio/-HG3Omg_89c_000030.wav", ...}, answer a 0-based
//     index into multi_choice;
//   - the Hugging Face "avqa-processed" style: {"id": ..., "question":
//     "...\nChoices:\nA. x\nB. y", "answer": "B. y", "audio_path" | "audio" |
//     "file_name": "..."}.
//
// Records without an id get their 1-based position (line number, or index+1
// in a JSON array).
type avqa struct{}

func init() { register(avqa{}) }

func (avqa) Name() string { return "avqa" }

func (avqa) Describe() string {
	return "AVQA: r1-aqa JSONL (question_text, multi_choice, answer index) or avqa-processed (question with Choices:, answer \"B. text\")"
}

func (f avqa) Read(path string, _ Options) ([]Entry, error) {
	return readEntries(f.Name(), path, parseAVQA)
}

func parseAVQA(r *record, num int) (Sample, error) {
	s := Sample{AnswerIndex: -1}
	id, ok, err := r.id("id")
	if err != nil {
		return s, err
	}
	if !ok {
		id = strconv.Itoa(num)
	}
	s.ID = id
	switch {
	case r.has("question_text") || r.has("multi_choice"):
		return avqaR1(r, s)
	case r.has("question"):
		return avqaProcessed(r, s)
	}
	return s, Malformed(`neither "question_text" and "multi_choice" (r1-aqa form) nor "question" (avqa-processed form)`)
}

var avqaAudioKeys = []string{"audio_path", "audio", "file_name"}

func avqaR1(r *record, s Sample) (Sample, error) {
	var err error
	switch {
	case r.firstKey(avqaAudioKeys...) != "":
		if s.Audio, err = r.audio(avqaAudioKeys...); err != nil {
			return s, err
		}
	case r.has("video_name"):
		// video_name stays in Extra; here it only names the audio file.
		name, ok := scalarText(r.m["video_name"])
		if !ok || name == "" {
			return s, Malformed(`"video_name" must be a non-empty string, not %s`, JSONKind(r.m["video_name"]))
		}
		s.Audio = name + ".wav"
	default:
		return s, Malformed(`missing audio: no "audio_path" and no "video_name"`)
	}
	if s.Question, err = r.question("question_text"); err != nil {
		return s, err
	}
	list, ok, err := r.textList("multi_choice")
	if err != nil {
		return s, err
	}
	if !ok {
		return s, Malformed(`missing "multi_choice"`)
	}
	choices, err := cleanChoices("multi_choice", list)
	if err != nil {
		return s, err
	}
	v, ok := r.take("answer")
	if !ok {
		return s, Malformed(`missing "answer"`)
	}
	idx, err := answerFromValue("answer", v, choices)
	if err != nil {
		return s, err
	}
	setChoices(&s, choices, idx)
	// AVQA's question type ("Which", "Come From", "Happening", ...) and
	// relation ("View", "Sound", "Both") are its task taxonomy: mapped so
	// inspect and eval reports can break accuracy down by them.
	if s.Task, _, err = r.text("question_type"); err != nil {
		return s, err
	}
	if s.Categories, err = r.textOrList("question_relation"); err != nil {
		return s, err
	}
	return s, nil
}

func avqaProcessed(r *record, s Sample) (Sample, error) {
	var err error
	if s.Audio, err = r.audio(avqaAudioKeys...); err != nil {
		return s, err
	}
	q, err := r.needText("question")
	if err != nil {
		return s, err
	}
	stem, choices, ok := SplitChoices(q)
	s.Question = stem
	if !ok {
		key := r.firstKey("choices", "options")
		if key == "" {
			return s, Malformed("question has no embedded choice list (a \"Choices:\" line followed by \"A. ...\" lines) and the record has no \"choices\"")
		}
		list, _, err := r.textList(key)
		if err != nil {
			return s, err
		}
		if choices, err = cleanChoices(key, list); err != nil {
			return s, err
		}
	}
	v, ok := r.take("answer")
	if !ok {
		return s, Malformed(`missing "answer"`)
	}
	idx, err := answerFromValue("answer", v, choices)
	if err != nil {
		return s, err
	}
	setChoices(&s, choices, idx)
	return s, nil
}
