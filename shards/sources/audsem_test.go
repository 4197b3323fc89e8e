package sources

import "testing"

func TestAudSem(t *testing.T) {
	q := `"What is making the sound?\nChoices:\nA. A dog\nB. A cat\nC. A bird"`
	_, entries := readString(t, "audsem", "mc_qa.json", `[
  {"file_name": "xyz.flac", "question": `+q+`, "answer": "B. A cat", "thinking": "It meows.", "semantic_elements": "cat; meow"},
  {"file_name": "0001234", "id": 77, "question": `+q+`, "answer": "A dog", "semantic_elements": {"sources": ["dog"]}},
  {"file_name": "clips/abc.flac", "question": `+q+`, "answer": "(C)"},
  {"file_name": "d.flac", "question": `+q+`, "answer": "D"},
  {"file_name": "e.flac", "question": `+q+`, "answer": "B. A dog"},
  {"file_name": "f.flac", "question": "What is making the sound?", "answer": "A dog"},
  {"file_name": "g.flac", "question": `+q+`},
  {"question": `+q+`, "answer": "A"},
  {"file_name": "i.flac", "question": `+q+`, "answer": ["A"]}
]`)
	wantCount(t, entries, 9)
	ch := []string{"A dog", "A cat", "A bird"}
	wantSample(t, wantOK(t, entries[0]), Sample{ID: "xyz", Source: "audsem", Audio: "xyz.flac", Question: "What is making the sound?",
		Choices: ch, AnswerIndex: 1, Answer: "A cat", Extra: map[string]string{"thinking": "It meows.", "semantic_elements": "cat; meow"}})
	// A file_name without extension gets ".flac"; the given id wins.
	wantSample(t, wantOK(t, entries[1]), Sample{ID: "77", Audio: "0001234.flac", Question: "What is making the sound?",
		Choices: ch, AnswerIndex: 0, Answer: "A dog", Extra: map[string]string{"semantic_elements": `{"sources":["dog"]}`}})
	wantSample(t, wantOK(t, entries[2]), Sample{ID: "abc", Audio: "clips/abc.flac", Question: "What is making the sound?", Choices: ch, AnswerIndex: 2, Answer: "A bird"})
	wantReject(t, entries[3], ReasonAnswerNotInChoices, 0, 3, "d", "choice D")
	wantReject(t, entries[4], ReasonAnswerNotInChoices, 0, 4, "e", "choice B")
	wantReject(t, entries[5], ReasonMalformed, 0, 5, "f", "no embedded choice list")
	wantReject(t, entries[6], ReasonMalformed, 0, 6, "g", `missing "answer"`)
	wantReject(t, entries[7], ReasonMalformed, 0, 7, "", "missing audio path")
	wantReject(t, entries[8], ReasonMalformed, 0, 8, "i", `"answer" must be a string, not a list`)

	// The same records as JSONL.
	_, entries = readString(t, "audsem", "mc_qa.jsonl", lines(
		`{"file_name": "xyz.flac", "question": `+q+`, "answer": "B"}`,
		`{"file_name": "xyz2.flac", "question": `+q+`, "answer": "B"`,
	))
	wantCount(t, entries, 2)
	wantSample(t, wantOK(t, entries[0]), Sample{ID: "xyz", Audio: "xyz.flac", Question: "What is making the sound?", Choices: ch, AnswerIndex: 1, Answer: "A cat"})
	wantReject(t, entries[1], ReasonMalformed, 2, 0, "", "invalid JSON")
}
