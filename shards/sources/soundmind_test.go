package sources

import (
	"testing"
)

func TestSoundMindRecords(t *testing.T) {
	p, entries := readString(t, "soundmind", "train.jsonl", lines(
		`{"user_content": "Premises ... entailed or not?", "answer": "Thinking.\n\nAnswer: entailed.", "label": 1, "id": "0001"}`,
		`{"user_content": "Q2", "answer": "Answer: not entailed.", "label": "0", "id": 2, "source": "logiqa"}`,
		`{"user_content": "Q3", "answer": "...", "label": "1", "id": "0003"}`,
		`{"user_content": "Q4", "answer": "...", "label": 2, "id": "0004"}`,
		`{"user_content": "Q5", "answer": "...", "label": "yes", "id": "0005"}`,
		`{"user_content": "Q6", "answer": "...", "id": "0006"}`,
		`{"user_content": "Q7", "answer": "...", "label": 1}`,
		`{"answer": "...", "label": 1, "id": "0008"}`,
		`{"user_content": "Q9", "answer": "...", "label": true, "id": "0009"}`,
	))
	wantCount(t, entries, 9)
	ch := []string{"entailed", "not-entailed"}
	wantSample(t, wantOK(t, entries[0]), Sample{ID: "0001", Source: "soundmind", Audio: "train/0001/question.wav",
		Question: "Premises ... entailed or not?", Choices: ch, AnswerIndex: 0, Answer: "entailed",
		Extra: map[string]string{"reasoning": "Thinking.\n\nAnswer: entailed."}})
	wantSample(t, wantOK(t, entries[1]), Sample{ID: "2", Audio: "train/2/question.wav", Question: "Q2", Choices: ch, AnswerIndex: 1, Answer: "not-entailed",
		Extra: map[string]string{"reasoning": "Answer: not entailed.", "source": "logiqa"}})
	wantSample(t, wantOK(t, entries[2]), Sample{ID: "0003", Audio: "train/0003/question.wav", Question: "Q3", Choices: ch, AnswerIndex: 0, Answer: "entailed"})
	wantReject(t, entries[3], ReasonMalformed, 4, 0, "0004", `"label" must be 1`, "not 2")
	wantReject(t, entries[4], ReasonMalformed, 5, 0, "0005", `not "yes"`)
	wantReject(t, entries[5], ReasonMalformed, 6, 0, "0006", `missing "label"`)
	wantReject(t, entries[6], ReasonMalformed, 7, 0, "", `missing "id"`)
	wantReject(t, entries[7], ReasonMalformed, 8, 0, "0008", `missing "user_content"`)
	wantReject(t, entries[8], ReasonMalformed, 9, 0, "0009", "not true")

	// Options.Split overrides the file name.
	entries = read(t, "soundmind", p, Options{Split: "test"})
	if a := entries[0].Sample.Audio; a != "test/0001/question.wav" {
		t.Errorf("audio with Options.Split: %q", a)
	}
}

func TestSplitFromFileName(t *testing.T) {
	for in, want := range map[string]string{
		"dev-head40.jsonl":        "dev",
		"train.jsonl":             "train",
		"data/test_clean.jsonl":   "test",
		"/x/y/validation.v2.json": "validation",
		"_odd.jsonl":              "_odd",
	} {
		if got := splitFromFileName(in); got != want {
			t.Errorf("splitFromFileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTraceVerdict(t *testing.T) {
	for in, want := range map[string]string{
		"x\nAnswer: entailed.":                    "entailed",
		"x\nAnswer: not entailed.\n\n":            "not-entailed",
		"Answer: entailed\nAnswer: not-entailed.": "not-entailed",
		"answer: Not Entailed":                    "not-entailed",
		"no verdict":                              "",
		"Answer: maybe":                           "",
	} {
		got, ok := traceVerdict(in)
		if (want == "") == ok || (ok && got != want) {
			t.Errorf("traceVerdict(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// TestSoundMindDevHead ingests the real head of SoundMind's dev split (CRLF
// line ends, string ids, integer labels) and compares each label with the
// final "Answer: ..." line of its reasoning trace. The label is the ground
// truth; disagreements are only counted.
func TestSoundMindDevHead(t *testing.T) {
	p := sharedTestdata(t, "soundmind/dev-head40.jsonl")
	entries := read(t, "soundmind", p, Options{})
	wantCount(t, entries, 40)
	byAnswer := map[string]int{}
	disagree, noVerdict := 0, 0
	for i, e := range entries {
		s := wantOK(t, e)
		if e.Loc.Line != i+1 {
			t.Errorf("entry %d at %s", i, e.Loc)
		}
		if want := "dev/" + s.ID + "/question.wav"; s.Audio != want {
			t.Errorf("%s: audio %q, want %q", s.ID, s.Audio, want)
		}
		if len(s.ID) != 4 || s.Question == "" || s.Extra["reasoning"] == "" {
			t.Errorf("%s: id %q, question %d bytes, reasoning %d bytes", e.Loc, s.ID, len(s.Question), len(s.Extra["reasoning"]))
		}
		byAnswer[s.Answer]++
		switch v, ok := traceVerdict(s.Extra["reasoning"]); {
		case !ok:
			noVerdict++
		case v != s.Answer:
			disagree++
			t.Logf("%s: label says %q, the trace ends with %q", s.ID, s.Answer, v)
		}
	}
	// Counts taken with python3 from the same file: 19 labels 1, 21 labels 0.
	if byAnswer["entailed"] != 19 || byAnswer["not-entailed"] != 21 {
		t.Errorf("answers %v, want 19 entailed and 21 not-entailed", byAnswer)
	}
	if noVerdict != 0 {
		t.Errorf("%d traces without a final Answer line", noVerdict)
	}
	t.Logf("SoundMind dev head: %d of %d labels disagree with their trace's final answer", disagree, len(entries))
}
