package sources

import (
	"reflect"
	"testing"
)

func TestMMAURecords(t *testing.T) {
	_, entries := readString(t, "mmau", "mmau.json", `[
  {"id": "u1", "audio_id": "./test-mini-audios/u1.wav", "question": "Who speaks?", "choices": [" Man", "Woman "], "answer": "Woman", "dataset": "AudioSet", "task": "sound", "split": "test-mini", "category": "Reasoning", "sub-category": "Acoustic Source Inference", "difficulty": "medium"},
  {"id": "u2", "audio_id": "./test-mini-audios/u2.wav", "question": "Q?", "choices": ["a", "b"], "answer": "a", "task": "music", "category": ["Reasoning", "Information Extraction"]},
  {"audio_id": "./test-mini-audios/u3.wav", "question": "Q?", "choices": ["a", "b"], "answer": "b"},
  {"id": "u4", "audio_id": "./test-mini-audios/u4.wav", "question": "Q?", "choices": ["a", "b"], "answer": "c"},
  {"id": "u5", "audio_id": "./test-mini-audios/u5.wav", "question": "Q?", "choices": ["a", "b"], "answer": "B"},
  {"id": "u6", "question": "Q?", "choices": ["a", "b"], "answer": "a"},
  {"id": "u7", "audio_id": "./test-mini-audios/u7.wav", "question": "Q?", "choices": ["a", 2], "answer": "a"},
  {"id": "u8", "audio_id": "./test-mini-audios/u8.wav", "question": "Q?", "choices": ["a", {"b": 1}], "answer": "a"},
  {"id": "u9", "audio_id": "./test-mini-audios/u9.wav", "question": "Q?", "choices": ["a", "b"], "answer": "a", "category": 7},
  {"id": "u10", "audio_id": "./test-mini-audios/u10.wav", "question": "Q?", "choices": ["a", "b"], "answer": "a", "category": {"x": 1}},
  {"id": "u11", "audio_id": "./test-mini-audios/u11.wav", "question": "", "choices": ["a", "b"], "answer": "a"}
]`)
	wantCount(t, entries, 11)
	wantSample(t, wantOK(t, entries[0]), Sample{
		ID: "u1", Source: "mmau", Audio: "./test-mini-audios/u1.wav", Question: "Who speaks?", Choices: []string{"Man", "Woman"},
		AnswerIndex: 1, Answer: "Woman", Task: "sound", Categories: []string{"Reasoning"},
		SubCategory: "Acoustic Source Inference", Difficulty: "medium",
		Extra: map[string]string{"dataset": "AudioSet", "split": "test-mini"},
	})
	wantSample(t, wantOK(t, entries[1]), Sample{ID: "u2", Audio: "./test-mini-audios/u2.wav", Question: "Q?", Choices: []string{"a", "b"},
		AnswerIndex: 0, Answer: "a", Task: "music", Categories: []string{"Reasoning", "Information Extraction"}})
	// No id: audio_id's base name.
	wantSample(t, wantOK(t, entries[2]), Sample{ID: "u3", Audio: "./test-mini-audios/u3.wav", Question: "Q?", Choices: []string{"a", "b"}, AnswerIndex: 1, Answer: "b"})
	wantReject(t, entries[3], ReasonAnswerNotInChoices, 0, 3, "u4", `"c" is not one of the choices`)
	// MMAU's answer is the choice's text; a letter is not accepted.
	wantReject(t, entries[4], ReasonAnswerNotInChoices, 0, 4, "u5")
	wantReject(t, entries[5], ReasonMalformed, 0, 5, "u6", "audio_id")
	// A number among the choices is taken as its literal text.
	wantSample(t, wantOK(t, entries[6]), Sample{ID: "u7", Audio: "./test-mini-audios/u7.wav", Question: "Q?", Choices: []string{"a", "2"}, AnswerIndex: 0, Answer: "a"})
	wantReject(t, entries[7], ReasonMalformed, 0, 7, "u8", `"choices": item 1 must be a string, not an object`)
	if s := wantOK(t, entries[8]); !reflect.DeepEqual(s.Categories, []string{"7"}) {
		t.Errorf("numeric category: %q", s.Categories)
	}
	wantReject(t, entries[9], ReasonMalformed, 0, 9, "u10", `"category" must be a string`)
	wantReject(t, entries[10], ReasonMalformed, 0, 10, "u11", "empty question")
}

// TestMMAUTestMini ingests the real MMAU test-mini annotations. The expected
// counts were taken with python3's json module from the same file.
func TestMMAUTestMini(t *testing.T) {
	p := sharedTestdata(t, "mmau/mmau-test-mini.json")
	entries := read(t, "mmau", p, Options{})
	wantCount(t, entries, 1000)
	ids := map[string]bool{}
	tasks := map[string]int{}
	listCats := 0
	for i, e := range entries {
		s := wantOK(t, e)
		if e.Loc.Index == nil || *e.Loc.Index != i {
			t.Fatalf("entry %d at %s", i, e.Loc)
		}
		if ids[s.ID] {
			t.Errorf("duplicate id %q", s.ID)
		}
		ids[s.ID] = true
		tasks[s.Task]++
		if want := "./test-mini-audios/" + s.ID + ".wav"; s.Audio != want {
			t.Errorf("%s: audio %q, want %q", s.ID, s.Audio, want)
		}
		if len(s.Categories) != 1 || s.Categories[0] == "" {
			t.Errorf("%s: categories %q", s.ID, s.Categories)
		}
		if s.Extra["split"] != "test-mini" || s.Extra["dataset"] == "" || s.SubCategory == "" || s.Difficulty == "" {
			t.Errorf("%s: labels %q %q %q", s.ID, s.SubCategory, s.Difficulty, s.Extra)
		}
		if listCategory[s.ID] {
			listCats++
			if !reflect.DeepEqual(s.Categories, []string{"Reasoning"}) {
				t.Errorf("%s: list category read as %q", s.ID, s.Categories)
			}
		}
	}
	if want := map[string]int{"music": 334, "sound": 333, "speech": 333}; !reflect.DeepEqual(tasks, want) {
		t.Errorf("per-task counts %v, want %v", tasks, want)
	}
	if listCats != len(listCategory) {
		t.Errorf("found %d of the %d records whose category is a list", listCats, len(listCategory))
	}
	// A record whose choices have surrounding spaces, answer likewise.
	found := false
	for _, e := range entries {
		if e.Sample.ID == "58987ac8-0f11-41c2-9789-3efd40631a81" {
			found = true
			if e.Sample.Answer != "Second speaker's claim of seeing something at four in the morning." || e.Sample.AnswerIndex != 0 {
				t.Errorf("trimmed answer: %q at %d", e.Sample.Answer, e.Sample.AnswerIndex)
			}
		}
	}
	if !found {
		t.Error("record 58987ac8-... not found")
	}
	// Repeated choices (27 test-mini questions have them): the first equal
	// choice is the answer.
	for _, e := range entries {
		if e.Sample.ID == "dd249c7f-9b01-4114-a7a8-c7d0f4a1ed19" &&
			(!reflect.DeepEqual(e.Sample.Choices, []string{"four", "nine", "fourteen", "fourteen"}) || e.Sample.AnswerIndex != 1) {
			t.Errorf("repeated choices: %q, answer %d", e.Sample.Choices, e.Sample.AnswerIndex)
		}
	}
}

// listCategory are the 13 test-mini records whose category is a list
// (["Reasoning"] in every case), found with python3.
var listCategory = map[string]bool{
	"43df3159-5981-4a39-9de2-437fc9f16f70": true,
	"bbabe360-0573-43d4-b2e6-6892150cbdcd": true,
	"b7701ab1-c37e-49f2-8ad9-7177fe0465e9": true,
	"8abcf9b4-089d-48dc-892c-951f3b852eb6": true,
	"12b245bb-65b5-4ffc-8743-3e8c4481bfb5": true,
	"5e398782-d659-4b0c-bc19-ac3cfbd9a113": true,
	"71a1d3e1-8178-4058-950d-4e473cb30f29": true,
	"09247cc2-fb6a-43e0-ab58-e0c3f80a789b": true,
	"8f8ce566-7bad-458b-92b6-845654636a6d": true,
	"a9906024-7cb6-4e81-a4e8-fd212b3b8b6c": true,
	"54f6aefa-70c7-49ab-a381-a465fd0d8acf": true,
	"6c12307f-99d3-498f-8af4-e0a1f8b17be6": true,
	"bccf9565-3b4a-4214-847a-dd0f07579106": true,
}
