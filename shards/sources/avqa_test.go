package sources

import "testing"

func TestAVQAR1(t *testing.T) {
	_, entries := readString(t, "avqa", "train.jsonl", lines(
		`{"id": 183, "video_name": "-HG3Omg_89c_000030", "video_id": 341, "question_text": "What happened in the video?", "multi_choice": ["motorboat", " Yacht consignment ", "Sailboat set sail", "Consignment car"], "answer": 1, "question_relation": "View", "question_type": "Happening", "dataset_name": "AVQA", "audio_path": "audio/-HG3Omg_89c_000030.wav"}`,
		`{"id": "184", "video_name": "abc_000010", "question_text": " Where is it? ", "multi_choice": ["park", "street"], "answer": "0"}`,
		`{"video_name": "abc_000020", "question_text": "Which?", "multi_choice": ["a", "b"], "answer": 1.0}`,
		`{"id": 186, "video_name": "v", "question_text": "Q?", "multi_choice": ["a", "b"], "answer": 2}`,
		`{"id": 187, "video_name": "v", "question_text": "Q?", "multi_choice": ["a", "b"], "answer": -1}`,
		`{"id": 188, "video_name": "v", "question_text": "Q?", "multi_choice": ["a", "b"]}`,
		`{"id": 189, "video_name": "v", "multi_choice": ["a", "b"], "answer": 0}`,
		`{"id": 190, "video_name": "v", "question_text": "Q?", "multi_choice": "a, b", "answer": 0}`,
		`{"id": 191, "question_text": "Q?", "multi_choice": ["a", "b"], "answer": 0}`,
		`{"id": 192, "video_name": "v", "question_text": "Q?", "multi_choice": ["a", "b"], "answer": true}`,
		`{"id": [192], "video_name": "v", "question_text": "Q?", "multi_choice": ["a", "b"], "answer": 0}`,
		`{"id": 193, "video_name": "v", "question_text": "Q?", "multi_choice": ["a", "b"], "answer": 0.5}`,
		`{"id": 194, "video_name": "v", "question_text": "Q?", "multi_choice": ["a", ""], "answer": 0}`,
	))
	wantCount(t, entries, 13)
	wantSample(t, wantOK(t, entries[0]), Sample{
		ID: "183", Source: "avqa", Audio: "audio/-HG3Omg_89c_000030.wav", Question: "What happened in the video?",
		Choices:     []string{"motorboat", "Yacht consignment", "Sailboat set sail", "Consignment car"},
		AnswerIndex: 1, Answer: "Yacht consignment", Task: "Happening", Categories: []string{"View"},
		Extra: map[string]string{"video_name": "-HG3Omg_89c_000030", "video_id": "341", "dataset_name": "AVQA"},
	})
	wantSample(t, wantOK(t, entries[1]), Sample{
		ID: "184", Audio: "abc_000010.wav", Question: "Where is it?", Choices: []string{"park", "street"}, AnswerIndex: 0, Answer: "park",
		Extra: map[string]string{"video_name": "abc_000010"},
	})
	// No id: the record's line number.
	wantSample(t, wantOK(t, entries[2]), Sample{
		ID: "3", Audio: "abc_000020.wav", Question: "Which?", Choices: []string{"a", "b"}, AnswerIndex: 1, Answer: "b",
	})
	wantReject(t, entries[3], ReasonAnswerNotInChoices, 4, 0, "186", "answer index 2", "2 choices")
	wantReject(t, entries[4], ReasonAnswerNotInChoices, 5, 0, "187", "answer index -1")
	wantReject(t, entries[5], ReasonMalformed, 6, 0, "188", `missing "answer"`)
	wantReject(t, entries[6], ReasonMalformed, 7, 0, "189", `missing "question_text"`)
	wantReject(t, entries[7], ReasonMalformed, 8, 0, "190", `"multi_choice" must be a list of strings, not a string`)
	wantReject(t, entries[8], ReasonMalformed, 9, 0, "191", `no "audio_path" and no "video_name"`)
	wantReject(t, entries[9], ReasonMalformed, 10, 0, "192", `"answer" must be a choice index or text, not a boolean`)
	wantReject(t, entries[10], ReasonMalformed, 11, 0, "", `"id" must be a string or a number, not a list`)
	wantReject(t, entries[11], ReasonMalformed, 12, 0, "193", "not an integer choice index")
	wantReject(t, entries[12], ReasonMalformed, 13, 0, "194", "choice B (index 1) is empty")
}

func TestAVQAProcessed(t *testing.T) {
	_, entries := readString(t, "avqa", "avqa-processed.json", `[
  {"id": 5, "question": "What is the sound?\nChoices:\nA. guitar\nB. piano", "answer": "B. piano", "audio_path": "a/5.wav", "split": "train"},
  {"id": "6", "question": "What is the sound?\nChoices:\n(A) guitar\n(B) piano", "answer": "A", "audio": {"path": "a/6.wav", "sampling_rate": 16000}},
  {"id": 7, "question": "Which?\nOptions:\nA) x\nB) y", "answer": "y", "file_name": "7.wav"},
  {"question": "Q\nChoices:\nA. x\nB. y", "answer": "(B)", "file_name": "8.wav"},
  {"id": 9, "question": "What is the sound?\nChoices:\nA. guitar\nB. piano", "answer": "C", "audio_path": "a/9.wav"},
  {"id": 10, "question": "What is the sound?\nChoices:\nA. guitar\nB. piano", "answer": "B. guitar", "audio_path": "a/10.wav"},
  {"id": 11, "question": "What is the sound?\nChoices:\nA. guitar\nB. piano", "answer": "violin", "audio_path": "a/11.wav"},
  {"id": 12, "question": "What is the sound?", "answer": "piano", "audio_path": "a/12.wav"},
  {"id": 13, "question": "What is the sound?\nChoices:\nA. guitar\nB. piano", "answer": "A"},
  {"id": 14, "question": "What is the sound?", "choices": ["guitar", "piano"], "answer": "piano", "audio": "14.wav"},
  {"id": 15, "audio": "15.wav", "answer": "x"}
]`)
	wantCount(t, entries, 11)
	gp := []string{"guitar", "piano"}
	wantSample(t, wantOK(t, entries[0]), Sample{ID: "5", Audio: "a/5.wav", Question: "What is the sound?", Choices: gp, AnswerIndex: 1, Answer: "piano",
		Extra: map[string]string{"split": "train"}})
	wantSample(t, wantOK(t, entries[1]), Sample{ID: "6", Audio: "a/6.wav", Question: "What is the sound?", Choices: gp, AnswerIndex: 0, Answer: "guitar"})
	wantSample(t, wantOK(t, entries[2]), Sample{ID: "7", Audio: "7.wav", Question: "Which?", Choices: []string{"x", "y"}, AnswerIndex: 1, Answer: "y"})
	// No id: index+1 in an array.
	wantSample(t, wantOK(t, entries[3]), Sample{ID: "4", Audio: "8.wav", Question: "Q", Choices: []string{"x", "y"}, AnswerIndex: 1, Answer: "y"})
	wantReject(t, entries[4], ReasonAnswerNotInChoices, 0, 4, "9", "choice C", "only 2 choices")
	wantReject(t, entries[5], ReasonAnswerNotInChoices, 0, 5, "10", `names choice B, whose text is "piano"`)
	wantReject(t, entries[6], ReasonAnswerNotInChoices, 0, 6, "11", "violin")
	wantReject(t, entries[7], ReasonMalformed, 0, 7, "12", "no embedded choice list")
	wantReject(t, entries[8], ReasonMalformed, 0, 8, "13", "missing audio path")
	wantSample(t, wantOK(t, entries[9]), Sample{ID: "14", Audio: "14.wav", Question: "What is the sound?", Choices: gp, AnswerIndex: 1, Answer: "piano"})
	wantReject(t, entries[10], ReasonMalformed, 0, 10, "15", "neither")
}
