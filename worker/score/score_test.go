package score

import (
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

func python(t *testing.T, script string, in any) []byte {
	t.Helper()
	b, _ := json.Marshal(in)
	cmd := exec.Command("/usr/bin/python3", "-c", script)
	cmd.Stdin = strings.NewReader(string(b))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	return out
}

var tricky = []string{
	"The answer is B. Piano!", "café au lait", "cafe\u0301 (decomposed)", "naïve_snake_case x2", "½ ⅓ ٣ ३ Ⅷ", "日本語のテキスト",
	"İstanbul ΣΊΣΥΦΟΣ straße", "tab\tsep\u00a0nbsp\u2028line", "emoji 🎵 note", "don't-stop", "a.b,c;d", "", "   ",
	"\x1cfile\x1fsep", "MiXeD CaSe", "ΟΔΟΣ ΟΔΟΣ.", "ΣΑΣ", "Σ", "A Σ b",
}

// Tokens, strip and split agree with Python's re / str on tricky text.
func TestTextRulesMatchPython(t *testing.T) {
	out := python(t, `
import json, re, sys
xs = json.load(sys.stdin)
print(json.dumps([[sorted(set(re.findall(r'\b\w+\b', x.lower()))), x.strip(), x.split()] for x in xs]))`, tricky)
	var want [][]json.RawMessage
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i, x := range tricky {
		var tok []string
		var strip string
		var split []string
		json.Unmarshal(want[i][0], &tok)
		json.Unmarshal(want[i][1], &strip)
		json.Unmarshal(want[i][2], &split)
		got := []string{}
		for k := range WordTokens(x) {
			got = append(got, k)
		}
		sort.Strings(got)
		if tok == nil {
			tok = []string{}
		}
		if strings.Join(got, "|") != strings.Join(tok, "|") {
			t.Errorf("tokens of %q: %q, Python %q", x, got, tok)
		}
		if Strip(x) != strip {
			t.Errorf("strip of %q: %q, Python %q", x, Strip(x), strip)
		}
		if strings.Join(Fields(x), "|") != strings.Join(split, "|") {
			t.Errorf("split of %q: %q, Python %q", x, Fields(x), split)
		}
	}
}

func TestExtract(t *testing.T) {
	for _, c := range []struct {
		in   string
		fb   Fallback
		want string
		ok   bool
	}{
		{"<think>hmm</think><answer> B. Piano </answer>", FallbackNone, "B. Piano", true},
		{"<answer>first</answer> and <answer>second</answer>", FallbackNone, "first", true},
		{"<answer>multi\nline</answer>", FallbackNone, "multi\nline", true},
		{"no tags here", FallbackNone, "", false},
		{"  no tags here\n", FallbackWhole, "no tags here", true},
		{"<answer>unclosed", FallbackNone, "", false},
	} {
		got, ok := Extract(c.in, c.fb)
		if got != c.want || ok != c.ok {
			t.Errorf("Extract(%q, %s) = %q, %v; want %q, %v", c.in, c.fb, got, ok, c.want, c.ok)
		}
	}
}

func TestChoiceRule(t *testing.T) {
	choices := []string{"Guitar", "Piano", "Violin", "Drums"}
	for _, c := range []struct {
		pred string
		want bool
	}{
		{"Piano", true}, {" Piano ", true}, {"B", true}, {"(B)", true}, {"B.", true}, {"B. Piano", true}, {"B) Piano", true},
		{"b. piano", false}, {"C", false}, {"B. Violin", false}, {"piano", false}, {"E", false}, {"", false}, {"The piano", false},
	} {
		if got := Correct(RuleChoice, c.pred, "Piano", choices); got != c.want {
			t.Errorf("choice rule %q: %v, want %v", c.pred, got, c.want)
		}
	}
	if !Correct(RuleChoice, "3", "3", nil) || Correct(RuleChoice, "three", "3", nil) {
		t.Error("open-ended answers compare by exact text")
	}
	if !Correct(RuleMMSU, "B. something", "Piano", choices) || Correct(RuleMMSU, "C", "Piano", choices) || !Correct(RuleMMSU, "(B)", "Piano", choices) {
		t.Error("MMSU letter rule")
	}
}

// MMAU's rule against a transcription of MMAU's evaluation.py string_match
// in Python, on the real test-mini questions with predictions built to hit
// every branch: the answer, the answer inside a sentence, another choice,
// both, a letter, nothing.
func TestMMAURuleMatchesPython(t *testing.T) {
	b, err := os.ReadFile("../../../shared/testdata/mmau/mmau-test-mini.json")
	if err != nil {
		t.Fatalf("%v (../shared/testdata must sit beside the repository)", err)
	}
	var rows []struct {
		Choices []string `json:"choices"`
		Answer  string   `json:"answer"`
	}
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	type item struct {
		Answer, Prediction string
		Choices            []string
	}
	var items []item
	for i, r := range rows {
		other := r.Choices[(i+1)%len(r.Choices)]
		for _, p := range []string{r.Answer, "I think it is " + r.Answer + ".", other, r.Answer + " or " + other, "B", "", strings.ToUpper(r.Answer)} {
			items = append(items, item{r.Answer, p, r.Choices})
		}
	}
	out := python(t, `
import json, re, sys
def string_match(answer, prediction, choices):
    def tokenize(text):
        return set(re.findall(r'\b\w+\b', text.lower()))
    prediction_tokens = tokenize(prediction)
    answer_tokens = tokenize(answer)
    if not prediction_tokens:
        return False
    incorrect_tokens = set()
    for choice in choices:
        choice_tokens = tokenize(choice)
        if choice_tokens != answer_tokens:
            incorrect_tokens.update(choice_tokens - answer_tokens)
    cond1 = answer_tokens.issubset(prediction_tokens)
    cond2 = prediction_tokens.isdisjoint(incorrect_tokens)
    return cond1 and cond2
print(json.dumps([string_match(x["Answer"], x["Prediction"], x["Choices"]) for x in json.load(sys.stdin)]))`, items)
	var want []bool
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	agree, right := 0, 0
	for i, it := range items {
		got := MMAUMatch(it.Answer, it.Prediction, it.Choices)
		if got == want[i] {
			agree++
		} else {
			t.Errorf("%q vs answer %q (choices %q): earl %v, Python %v", it.Prediction, it.Answer, it.Choices, got, want[i])
		}
		if got {
			right++
		}
	}
	t.Logf("%d MMAU verdicts agree with Python (%d correct)", agree, right)
}

// SoundMind: the verdict read from the real reasoning traces matches the
// records' labels (one record's trace disagrees with its label, 0021).
func TestEntailmentOnRealTraces(t *testing.T) {
	b, err := os.ReadFile("../../../shared/testdata/soundmind/dev-head40.jsonl")
	if err != nil {
		t.Fatalf("%v (../shared/testdata must sit beside the repository)", err)
	}
	disagree := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r struct {
			ID     string `json:"id"`
			Answer string `json:"answer"`
			Label  int    `json:"label"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		want := map[int]string{1: "entailed", 0: "not-entailed"}[r.Label]
		got := Entailment(r.Answer)
		if got == "" {
			t.Errorf("%s: no verdict found in %q", r.ID, r.Answer[max(0, len(r.Answer)-60):])
		}
		if got != want {
			disagree++
			if r.ID != "0021" {
				t.Errorf("%s: verdict %q, label %q", r.ID, got, want)
			}
		}
	}
	if disagree != 1 {
		t.Errorf("%d traces disagree with their labels, want exactly 1 (0021)", disagree)
	}
	for in, want := range map[string]string{
		"<answer>not-entailed</answer>": "not-entailed", "<answer> Entailed. </answer>": "entailed",
		"so the answer: NOT entailed": "not-entailed", "<answer>maybe</answer>": "",
	} {
		if got := Entailment(in); got != want {
			t.Errorf("Entailment(%q) = %q, want %q", in, got, want)
		}
	}
}
