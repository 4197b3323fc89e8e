package sources

import (
	"fmt"
	"testing"
)

func TestJSONLFormat(t *testing.T) {
	_, entries := readString(t, "jsonl", "mine.jsonl", lines(
		`{"id": "q1", "audio": "clips/q1.wav", "question": " What is playing? ", "choices": ["guitar", " piano "], "answer": "piano", "task": "music", "category": ["instruments", "timbre"], "sub_category": "keys", "difficulty": "easy", "meta": {"source": "mine", "n": 3, "tags": ["a"], "none": null}}`,
		`{"id": 183, "audio": "183.wav", "question": "Q?", "choices": ["a", "b"], "answer_index": 1}`,
		`{"id": 1.5e3, "audio": "x.wav", "question": "Q?", "choices": ["a", "b"], "answer": "a", "answer_index": 0, "category": "single"}`,
		`{"id": "open", "audio": "o.wav", "question": "How many?", "answer": "3"}`,
		`{"id": "q5", "audio": "a.wav", "question": "Q?", "choices": ["a", "b"], "answer": "b", "answer_index": 0}`,
		`{"id": "q6", "audio": "a.wav", "question": "Q?", "choices": ["a", "b"], "answer": "c"}`,
		`{"id": "q7", "audio": "a.wav", "question": "Q?", "choices": ["a", "b"], "answer_index": 2}`,
		`{"id": "q8", "audio": "a.wav", "question": "Q?", "choices": ["a", "b"]}`,
		`{"id": "q9", "audio": "a.wav", "question": "Q?", "answer_index": 0}`,
		`{"id": "q10", "audio": "a.wav", "questoin": "Q?", "answer": "x"}`,
		`{"audio": "a.wav", "question": "Q?", "answer": "x"}`,
		`{"id": "q12", "question": "Q?", "answer": "x"}`,
		`{"id": "q13", "audio": "a.wav", "question": "Q?", "choices": ["a", 2], "answer": "a"}`,
		`{"id": "q14", "audio": "a.wav", "question": "Q?", "choices": ["a", "b"], "answer_index": "1"}`,
		`{"id": "q15", "audio": "a.wav", "question": 15, "answer": "x"}`,
		`{"id": "q16", "audio": "a.wav", "question": "Q?", "answer": "x", "meta": "m"}`,
		`{"id": "q17", "audio": "a.wav", "question": "Q?"}`,
		`{"id": "q18", "audio": "a.wav", "question": "Q?", "choices": ["a", "b"], "answer": "B"}`,
		`{"id": "q19", "audio": "a.wav", "question": "Q?", "answer": "x", "category": [1]}`,
		`{"id": true, "audio": "a.wav", "question": "Q?", "answer": "x"}`,
	))
	wantCount(t, entries, 20)
	wantSample(t, wantOK(t, entries[0]), Sample{
		ID: "q1", Source: "jsonl", Audio: "clips/q1.wav", Question: "What is playing?", Choices: []string{"guitar", "piano"},
		AnswerIndex: 1, Answer: "piano", Task: "music", Categories: []string{"instruments", "timbre"}, SubCategory: "keys", Difficulty: "easy",
		Extra: map[string]string{"source": "mine", "n": "3", "tags": `["a"]`},
	})
	wantSample(t, wantOK(t, entries[1]), Sample{ID: "183", Audio: "183.wav", Question: "Q?", Choices: []string{"a", "b"}, AnswerIndex: 1, Answer: "b"})
	wantSample(t, wantOK(t, entries[2]), Sample{ID: "1.5e3", Audio: "x.wav", Question: "Q?", Choices: []string{"a", "b"}, AnswerIndex: 0, Answer: "a",
		Categories: []string{"single"}})
	wantSample(t, wantOK(t, entries[3]), Sample{ID: "open", Audio: "o.wav", Question: "How many?", AnswerIndex: -1, Answer: "3"})
	wantReject(t, entries[4], ReasonAnswerNotInChoices, 5, 0, "q5", `"answer" "b" disagrees with "answer_index" 0`)
	wantReject(t, entries[5], ReasonAnswerNotInChoices, 6, 0, "q6", `"c" is not one of the choices`)
	wantReject(t, entries[6], ReasonAnswerNotInChoices, 7, 0, "q7", "answer index 2")
	wantReject(t, entries[7], ReasonMalformed, 8, 0, "q8", `without "answer" or "answer_index"`)
	wantReject(t, entries[8], ReasonMalformed, 9, 0, "q9", `"answer_index" without "choices"`)
	wantReject(t, entries[9], ReasonMalformed, 10, 0, "q10", `unknown key(s) "questoin"`)
	wantReject(t, entries[10], ReasonMalformed, 11, 0, "", `missing "id"`)
	wantReject(t, entries[11], ReasonMalformed, 12, 0, "q12", `missing "audio"`)
	wantReject(t, entries[12], ReasonMalformed, 13, 0, "q13", `"choices": item 1 must be a string, not a number`)
	wantReject(t, entries[13], ReasonMalformed, 14, 0, "q14", `"answer_index" must be an integer, not "1"`)
	wantReject(t, entries[14], ReasonMalformed, 15, 0, "q15", `"question" must be a string, not a number`)
	wantReject(t, entries[15], ReasonMalformed, 16, 0, "q16", `"meta" must be an object`)
	wantReject(t, entries[16], ReasonMalformed, 17, 0, "q17", `missing "answer"`)
	// The generic format takes the answer's text, not a letter.
	wantReject(t, entries[17], ReasonAnswerNotInChoices, 18, 0, "q18")
	wantReject(t, entries[18], ReasonMalformed, 19, 0, "q19", `"category" must be a string or a list of strings`)
	wantReject(t, entries[19], ReasonMalformed, 20, 0, "", `"id" must be a string or a number`)
}

// TestNumericIDRoundTrip checks that numeric ids keep their literal text
// through every format that reads an id.
func TestNumericIDRoundTrip(t *testing.T) {
	for _, tc := range []struct{ format, record string }{
		{"jsonl", `{"id": %s, "audio": "a.wav", "question": "Q?", "answer": "x"}`},
		{"avqa", `{"id": %s, "video_name": "v", "question_text": "Q?", "multi_choice": ["a", "b"], "answer": 0}`},
		{"mmau", `{"id": %s, "audio_id": "a.wav", "question": "Q?", "choices": ["a", "b"], "answer": "a"}`},
		{"mmsu", `{"id": %s, "audio": "a.wav", "question": "Q?", "options": ["a", "b"], "answer_index": 0}`},
		{"audsem", `{"id": %s, "file_name": "a.flac", "question": "Q?\nChoices:\nA. a\nB. b", "answer": "A"}`},
		{"countingqa", `{"id": %s, "sound": "a.wav", "question": "Q?", "answer": "1"}`},
		{"soundmind", `{"id": %s, "user_content": "Q?", "label": 1}`},
	} {
		var recs []string
		ids := []string{"183", "0", "-4", "12345678901234567890", "1.830", "1.83e2", `"0183"`}
		for _, id := range ids {
			recs = append(recs, fmt.Sprintf(tc.record, id))
		}
		_, entries := readString(t, tc.format, "ids.jsonl", lines(recs...))
		wantCount(t, entries, len(ids))
		for i, e := range entries {
			s := wantOK(t, e)
			want := ids[i]
			if want[0] == '"' {
				want = want[1 : len(want)-1]
			}
			if s.ID != want {
				t.Errorf("%s: id %s read as %q", tc.format, ids[i], s.ID)
			}
		}
	}
}
