package sources

import "testing"

func TestMMSU(t *testing.T) {
	_, entries := readString(t, "mmsu", "mmsu.jsonl", lines(
		// official form
		`{"id": "mmsu_1", "audio_path": "audio/mmsu_1.wav", "question": "Which word is stressed?", "choice_a": "I", "choice_b": " love ", "choice_c": "you", "choice_d": "all", "answer_gt": "love", "task_name": "word_stress", "category": "perception", "sub-category": "phonology", "sub-sub-category": "stress", "linguistics_sub_discipline": "phonetics", "difficulty": 3}`,
		`{"id": 2, "audio": "a/2.wav", "question": "Q?", "choice_a": "x", "choice_b": "y", "choice_c": "z", "choice_d": "w", "answer_gt": "C", "task_name": "t"}`,
		`{"id": 3, "audio": "a/3.wav", "question": "Q?", "choice_a": "x", "choice_b": "y", "choice_c": "z", "choice_d": "", "answer_gt": "z"}`,
		// options form
		`{"id": 4, "path": "a/4.wav", "question": "Q?", "options": ["x", "y", "z"], "answer_index": 2, "task": "emotion", "category": ["a", "b"]}`,
		`{"audio_path": "dir/clip5.flac", "question": "Q?", "options": ["x", "y"], "answer_index": "1"}`,
		// rejects
		`{"id": 6, "audio": "a/6.wav", "question": "Q?", "choice_a": "x", "choice_b": "y", "choice_c": "z", "choice_d": "w", "answer_gt": "v"}`,
		`{"id": 7, "audio": "a/7.wav", "question": "Q?", "choice_a": "x", "choice_b": "y", "answer_gt": "D"}`,
		`{"id": 8, "audio": "a/8.wav", "question": "Q?", "options": ["x", "y"], "answer_index": 5}`,
		`{"id": 9, "audio": "a/9.wav", "question": "Q?", "answer_gt": "x"}`,
		`{"id": 10, "question": "Q?", "options": ["x", "y"], "answer_index": 0}`,
		`{"id": 11, "audio": "a/11.wav", "question": "Q?", "choice_a": "x", "choice_b": "", "choice_c": "z", "answer_gt": "x"}`,
		`{"id": 12, "audio": "a/12.wav", "question": "Q?", "options": ["x", "y"], "answer_index": "first"}`,
		`{"id": 13, "audio": "a/13.wav", "question": "Q?", "options": ["x", "y"]}`,
		`{"id": 14, "audio": 14, "question": "Q?", "options": ["x", "y"], "answer_index": 0}`,
	))
	wantCount(t, entries, 14)
	wantSample(t, wantOK(t, entries[0]), Sample{
		ID: "mmsu_1", Source: "mmsu", Audio: "audio/mmsu_1.wav", Question: "Which word is stressed?",
		Choices: []string{"I", "love", "you", "all"}, AnswerIndex: 1, Answer: "love",
		Task: "word_stress", Categories: []string{"perception"}, SubCategory: "phonology", Difficulty: "3",
		Extra: map[string]string{"sub-sub-category": "stress", "linguistics_sub_discipline": "phonetics"},
	})
	wantSample(t, wantOK(t, entries[1]), Sample{ID: "2", Audio: "a/2.wav", Question: "Q?", Choices: []string{"x", "y", "z", "w"}, AnswerIndex: 2, Answer: "z", Task: "t"})
	// An empty trailing choice_d is dropped.
	wantSample(t, wantOK(t, entries[2]), Sample{ID: "3", Audio: "a/3.wav", Question: "Q?", Choices: []string{"x", "y", "z"}, AnswerIndex: 2, Answer: "z"})
	wantSample(t, wantOK(t, entries[3]), Sample{ID: "4", Audio: "a/4.wav", Question: "Q?", Choices: []string{"x", "y", "z"}, AnswerIndex: 2, Answer: "z",
		Task: "emotion", Categories: []string{"a", "b"}})
	// No id: the audio file's base name.
	wantSample(t, wantOK(t, entries[4]), Sample{ID: "clip5", Audio: "dir/clip5.flac", Question: "Q?", Choices: []string{"x", "y"}, AnswerIndex: 1, Answer: "y"})
	wantReject(t, entries[5], ReasonAnswerNotInChoices, 6, 0, "6", `"v"`)
	wantReject(t, entries[6], ReasonAnswerNotInChoices, 7, 0, "7", "choice D", "only 2 choices")
	wantReject(t, entries[7], ReasonAnswerNotInChoices, 8, 0, "8", "answer index 5")
	wantReject(t, entries[8], ReasonMalformed, 9, 0, "9", "no choices")
	wantReject(t, entries[9], ReasonMalformed, 10, 0, "10", "missing audio path")
	wantReject(t, entries[10], ReasonMalformed, 11, 0, "11", `"choice_b" is empty`)
	wantReject(t, entries[11], ReasonAnswerNotInChoices, 12, 0, "12", `"first"`)
	wantReject(t, entries[12], ReasonMalformed, 13, 0, "13", `missing "answer_index"`)
	wantReject(t, entries[13], ReasonMalformed, 14, 0, "14", `"audio" must be an audio path`)
}
