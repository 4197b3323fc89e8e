package sources

import (
	"reflect"
	"testing"
)

func TestSplitChoices(t *testing.T) {
	for _, tc := range []struct {
		name, q, stem string
		choices       []string
		ok            bool
	}{
		{"dot", "What is the sound?\nChoices:\nA. guitar\nB. piano", "What is the sound?", []string{"guitar", "piano"}, true},
		{"paren", "Which?\nchoices:\n(A) one\n(B) two\n(C) three", "Which?", []string{"one", "two", "three"}, true},
		{"close paren", "Which?\nCHOICES\nA) one\nB) two", "Which?", []string{"one", "two"}, true},
		{"colon", "Which?\nOptions:\nA: one\nB: two", "Which?", []string{"one", "two"}, true},
		{"options lower", "Which?\noptions:\nA. one\nB. two\n", "Which?", []string{"one", "two"}, true},
		{"crlf and spaces", "  Which one?  \r\nChoices: \r\n A.  one \r\n\r\nB. two  \r\n", "Which one?", []string{"one", "two"}, true},
		{"multi-line stem", "Listen.\nThen answer: which?\nChoices:\nA. x\nB. y", "Listen.\nThen answer: which?", []string{"x", "y"}, true},
		{"last header wins", "Options: see below\nChoices:\nA. x\nB. y", "Options: see below", []string{"x", "y"}, true},
		{"choice text with label-like start", "Q?\nChoices:\nA. B. C. D.\nB. E.", "Q?", []string{"B. C. D.", "E."}, true},
		{"no list", "How many times does the dog bark?", "How many times does the dog bark?", nil, false},
		{"header only", "Q?\nChoices:", "Q?\nChoices:", nil, false},
		{"one choice", "Q?\nChoices:\nA. x", "Q?\nChoices:\nA. x", nil, false},
		{"letters out of order", "Q?\nChoices:\nA. x\nC. y", "Q?\nChoices:\nA. x\nC. y", nil, false},
		{"trailing text", "Q?\nChoices:\nA. x\nB. y\nAnswer with the letter.", "Q?\nChoices:\nA. x\nB. y\nAnswer with the letter.", nil, false},
		{"empty choice", "Q?\nChoices:\nA.\nB. y", "Q?\nChoices:\nA.\nB. y", nil, false},
		{"no space after label", "Q?\nChoices:\nA.x\nB.y", "Q?\nChoices:\nA.x\nB.y", nil, false},
	} {
		stem, choices, ok := SplitChoices(tc.q)
		if stem != tc.stem || !reflect.DeepEqual(choices, tc.choices) || ok != tc.ok {
			t.Errorf("%s: SplitChoices(%q) = %q, %q, %v; want %q, %q, %v", tc.name, tc.q, stem, choices, ok, tc.stem, tc.choices, tc.ok)
		}
	}
}

func TestResolveAnswer(t *testing.T) {
	choices := []string{"guitar", "piano", "drums", "B"}
	for _, tc := range []struct {
		answer string
		idx    int
		reason Reason // "" when resolved
	}{
		{"guitar", 0, ""},
		{"  piano ", 1, ""},
		{"A", 0, ""},
		{"C", 2, ""},
		{"(B)", 1, ""},
		{"B.", 1, ""},
		{"B)", 1, ""},
		{"B:", 1, ""},
		{"B. piano", 1, ""},
		{"B) piano", 1, ""},
		{"(B) piano", 1, ""},
		{"B: Piano", 1, ""},    // case aside
		{" C.  drums ", 2, ""}, // surrounding and inner whitespace trimmed
		{"B", 3, ""},           // exact text wins over the letter
		{"E", -1, ReasonAnswerNotInChoices},
		{"(Z)", -1, ReasonAnswerNotInChoices},
		{"B. drums", -1, ReasonAnswerNotInChoices},
		{"violin", -1, ReasonAnswerNotInChoices},
		{"Piano", -1, ReasonAnswerNotInChoices}, // bare text matches exactly; only a letter's text forgives case
		{"", -1, ReasonMalformed},
		{"   ", -1, ReasonMalformed},
	} {
		idx, err := ResolveAnswer(tc.answer, choices)
		switch {
		case tc.reason == "" && (err != nil || idx != tc.idx):
			t.Errorf("ResolveAnswer(%q) = %d, %v; want %d", tc.answer, idx, err, tc.idx)
		case tc.reason != "" && (err == nil || ReasonOf(err) != tc.reason || idx != -1):
			t.Errorf("ResolveAnswer(%q) = %d, %v; want a %s error", tc.answer, idx, err, tc.reason)
		}
	}
}

func TestResolveAnswerFirstDuplicate(t *testing.T) {
	// MMAU has questions whose choices repeat; the first equal one wins.
	if idx, err := ResolveAnswer("four", []string{"one", "four", "four"}); err != nil || idx != 1 {
		t.Errorf("got %d, %v; want 1", idx, err)
	}
}

func TestChoiceLetter(t *testing.T) {
	if ChoiceLetter(0) != "A" || ChoiceLetter(25) != "Z" || ChoiceLetter(26) != "#26" {
		t.Error(ChoiceLetter(0), ChoiceLetter(25), ChoiceLetter(26))
	}
}
