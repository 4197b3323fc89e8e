package sources

import "testing"

func TestCountingQAPlain(t *testing.T) {
	_, entries := readString(t, "countingqa", "counting.json", `[
  {"sound": "clips/dog.wav", "question": "How many times does the dog bark?", "answer": "3"},
  {"id": 42, "sound": "b.wav", "question": "How many claps?", "answer": 4, "duration": 9.5},
  {"sound": "c.wav", "question": "How many knocks?\nChoices:\nA. 2\nB. 3\nC. 4", "answer": "B"},
  {"sound": "d.wav", "question": "How many knocks?\nChoices:\nA. 2\nB. 3", "answer": "5"},
  {"sound": "e.wav", "question": "How many?"},
  {"sound": "f.wav", "answer": "2"},
  {"sound": "g.wav", "question": "How many?", "answer": ""},
  {"id": "h", "question": "How many?", "answer": "2"},
  {"sound": "i.wav", "question": "How many?", "answer": {"n": 2}}
]`)
	wantCount(t, entries, 9)
	wantSample(t, wantOK(t, entries[0]), Sample{ID: "dog", Source: "countingqa", Audio: "clips/dog.wav", Question: "How many times does the dog bark?", AnswerIndex: -1, Answer: "3"})
	wantSample(t, wantOK(t, entries[1]), Sample{ID: "42", Audio: "b.wav", Question: "How many claps?", AnswerIndex: -1, Answer: "4",
		Extra: map[string]string{"duration": "9.5"}})
	wantSample(t, wantOK(t, entries[2]), Sample{ID: "c", Audio: "c.wav", Question: "How many knocks?", Choices: []string{"2", "3", "4"}, AnswerIndex: 1, Answer: "3"})
	wantReject(t, entries[3], ReasonAnswerNotInChoices, 0, 3, "d", `"5"`)
	wantReject(t, entries[4], ReasonMalformed, 0, 4, "e", `missing "answer"`)
	wantReject(t, entries[5], ReasonMalformed, 0, 5, "f", `missing "question"`)
	wantReject(t, entries[6], ReasonMalformed, 0, 6, "g", "empty answer")
	wantReject(t, entries[7], ReasonMalformed, 0, 7, "h", "missing audio path")
	wantReject(t, entries[8], ReasonMalformed, 0, 8, "i", `"answer" must be a string, not an object`)
}

func TestCountingQAConversations(t *testing.T) {
	_, entries := readString(t, "countingqa", "audioskills.jsonl", lines(
		`{"id": "cnt_1", "sound": "clip.wav", "conversations": [{"from": "human", "value": "<sound>\nHow many times does the bell ring?"}, {"from": "gpt", "value": "3"}]}`,
		`{"id": 2, "sound": "c2.wav", "conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "  How many? <sound>  "}, {"from": "gpt", "value": 5}, {"from": "human", "value": "Sure?"}, {"from": "gpt", "value": "Yes"}]}`,
		`{"id": 3, "sound": "c3.wav", "conversations": [{"from": "human", "value": "Listen <sound> and count.\nChoices:\nA. one\nB. two"}, {"from": "gpt", "value": "B. two"}]}`,
		`{"id": 4, "sound": "c4.wav", "conversations": [{"from": "gpt", "value": "3"}, {"from": "human", "value": "<sound>How many?"}]}`,
		`{"id": 5, "sound": "c5.wav", "conversations": [{"from": "gpt", "value": "3"}]}`,
		`{"id": 6, "sound": "c6.wav", "conversations": "How many?"}`,
		`{"id": 7, "sound": "c7.wav", "conversations": [{"from": "human", "value": "<sound>"}, {"from": "gpt", "value": "3"}]}`,
	))
	wantCount(t, entries, 7)
	wantSample(t, wantOK(t, entries[0]), Sample{ID: "cnt_1", Audio: "clip.wav", Question: "How many times does the bell ring?", AnswerIndex: -1, Answer: "3"})
	wantSample(t, wantOK(t, entries[1]), Sample{ID: "2", Audio: "c2.wav", Question: "How many?", AnswerIndex: -1, Answer: "5"})
	wantSample(t, wantOK(t, entries[2]), Sample{ID: "3", Audio: "c3.wav", Question: "Listen and count.", Choices: []string{"one", "two"}, AnswerIndex: 1, Answer: "two"})
	wantReject(t, entries[3], ReasonMalformed, 4, 0, "4", "no gpt turn after the first human turn")
	wantReject(t, entries[4], ReasonMalformed, 5, 0, "5", "no human turn")
	wantReject(t, entries[5], ReasonMalformed, 6, 0, "6", `"conversations" must be a list`)
	wantReject(t, entries[6], ReasonMalformed, 7, 0, "7", "empty question")
	if _, ok := entries[0].Sample.Extra["conversations"]; ok {
		t.Error("conversations copied to Extra")
	}
}

func TestRemoveSoundMarker(t *testing.T) {
	for in, want := range map[string]string{
		"<sound>\nHow many?":        "How many?",
		"How many?\n<sound>":        "How many?",
		"Listen <sound> and count.": "Listen and count.",
		"<sound><sound>Q":           "Q",
		"No marker":                 "No marker",
	} {
		if got := removeSoundMarker(in); got != want {
			t.Errorf("removeSoundMarker(%q) = %q, want %q", in, got, want)
		}
	}
}
