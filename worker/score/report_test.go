package score

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func writeText(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// lines joins golden lines; each golden line below was written by hand from
// counting the verdicts, with the column layout of Write's doc comment.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// sevenVerdicts: 4 of 7 correct. By hand:
//
//	task      music 1/2, sound 2/3 (" sound" is "sound"), speech 1/2
//	category  Info 1/2, Reas 3/4, none 0/1
//	sub-cat   Info/Instr 1/2, Reas/ASI 2/3 ("ASI " is "ASI"), Reas/Count 1/1, none 0/1
//	difficulty easy 3/3, hard 0/1, medium 1/2, none 0/1
func sevenVerdicts() *Report {
	r := NewReport("demo")
	for _, v := range []Verdict{
		{true, "sound", []string{"Reas"}, "ASI", "easy"},
		{false, "sound", []string{"Reas"}, "ASI", "hard"},
		{true, "music", []string{"Info"}, "Instr", "easy"},
		{false, "music", []string{"Info"}, "Instr", "medium"},
		{true, "speech", []string{"Reas"}, "Count", "medium"},
		{false, "speech", nil, "", ""},
		{true, " sound", []string{"Reas"}, "ASI ", "easy"},
	} {
		r.Add(v)
	}
	return r
}

func TestReportTables(t *testing.T) {
	r := sevenVerdicts()
	if c, n := r.Accuracy(); c != 4 || n != 7 {
		t.Fatalf("Accuracy = %d/%d, want 4/7", c, n)
	}
	want := lines(
		"demo",
		"overall         4/7   57.14%",
		"",
		"by task",
		"  music         1/2   50.00%",
		"  sound         2/3   66.67%",
		"  speech        1/2   50.00%",
		"",
		"by category",
		"  Info          1/2   50.00%",
		"  Reas          3/4   75.00%",
		"  (none)        0/1    0.00%",
		"",
		"by sub-category",
		"  Info / Instr  1/2   50.00%",
		"  Reas / ASI    2/3   66.67%",
		"  Reas / Count  1/1  100.00%",
		"  (none)        0/1    0.00%",
		"",
		"by difficulty",
		"  easy          3/3  100.00%",
		"  hard          0/1    0.00%",
		"  medium        1/2   50.00%",
		"  (none)        0/1    0.00%",
	)
	if got := writeText(t, r); got != want {
		t.Errorf("tables:\n%s\nwant:\n%s", got, want)
	}

	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var j JSONReport
	if err := json.Unmarshal(js, &j); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if j.Title != "demo" || j.Overall.Correct != 4 || j.Overall.Total != 7 || math.Abs(*j.Overall.Percent-400.0/7) > 1e-9 {
		t.Errorf("overall %+v", j.Overall)
	}
	subs := []string{}
	for _, row := range j.SubCategory {
		subs = append(subs, row.Label)
	}
	if strings.Join(subs, "|") != "Info / Instr|Reas / ASI|Reas / Count|(none)" {
		t.Errorf("sub-category labels %q", subs)
	}
	if row := j.Difficulty[2]; row.Label != "medium" || row.Correct != 1 || row.Total != 2 || *row.Percent != 50 {
		t.Errorf("difficulty row 2 %+v", row)
	}

	// What JSON wrote reads back into the same tables.
	back, err := ParseJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	if got := writeText(t, back); got != want {
		t.Errorf("tables after a JSON round trip:\n%s", got)
	}
}

func TestReportEmpty(t *testing.T) {
	r := NewReport("empty")
	if got, want := writeText(t, r), lines("empty", "overall  0/0        -"); got != want {
		t.Errorf("empty report:\n%q\nwant\n%q", got, want)
	}
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	o := m["overall"].(map[string]any)
	if o["correct"] != 0.0 || o["total"] != 0.0 || o["percent"] != nil || len(m) != 2 {
		t.Errorf("empty report JSON: %s", js)
	}
	if got := writeText(t, NewReport("")); got != "overall  0/0        -\n" {
		t.Errorf("untitled empty report: %q", got)
	}
}

// Labels in Greek, Chinese (two columns a character) and with a combining
// accent (none) line up in terminal columns, sorted by code point.
func TestReportUnicodeLabels(t *testing.T) {
	r := NewReport("")
	r.Add(Verdict{Correct: true, Task: "音乐"})
	r.Add(Verdict{Correct: false, Task: "Ελληνικά"})
	r.Add(Verdict{Correct: true, Task: "cafe\u0301"})
	want := lines(
		"overall     2/3   66.67%",
		"",
		"by task",
		"  cafe\u0301      1/1  100.00%",
		"  Ελληνικά  0/1    0.00%",
		"  音乐      1/1  100.00%",
	)
	if got := writeText(t, r); got != want {
		t.Errorf("tables:\n%s\nwant:\n%s", got, want)
	}
}

// MMSU reuses sub-category names under both categories: they stay apart,
// and a question listed twice in a category counts once there.
func TestReportNestedSubCategories(t *testing.T) {
	r := NewReport("mmsu")
	r.Add(Verdict{Correct: true, Categories: []string{"perception"}, SubCategory: "semantics"})
	r.Add(Verdict{Correct: false, Categories: []string{"reasoning"}, SubCategory: "semantics"})
	r.Add(Verdict{Correct: true, Categories: []string{"reasoning"}, SubCategory: "semantics"})
	r.Add(Verdict{Correct: true, Categories: []string{"perception", "reasoning", "perception"}, SubCategory: "phonology"})
	want := lines(
		"mmsu",
		"overall                   3/4   75.00%",
		"",
		"by category",
		"  perception              2/2  100.00%",
		"  reasoning               2/3   66.67%",
		"",
		"by sub-category",
		"  perception / phonology  1/1  100.00%",
		"  perception / semantics  1/1  100.00%",
		"  reasoning / phonology   1/1  100.00%",
		"  reasoning / semantics   1/2   50.00%",
	)
	if got := writeText(t, r); got != want {
		t.Errorf("tables:\n%s\nwant:\n%s", got, want)
	}
}

func TestReportSkipped(t *testing.T) {
	r := NewReport("")
	r.Add(Verdict{Correct: true})
	r.Skip("unreadable response")
	r.Skip("no model_output")
	r.Skip("unreadable response")
	want := lines(
		"overall  1/1  100.00%",
		"",
		"skipped 3 (left out of every total): 1 no model_output; 2 unreadable response",
	)
	if got := writeText(t, r); got != want {
		t.Errorf("tables:\n%q\nwant:\n%q", got, want)
	}
}

// Two reports with different groups: start has tasks music and sound and
// difficulties; final has sound and speech and categories. By hand:
// start 2/3 (music 1/1, sound 1/2; easy 1/1, hard 1/2), final 3/4 (sound
// 1/1, speech 2/3; Reas 3/3, none 0/1).
func TestCompare(t *testing.T) {
	start := NewReport("start")
	start.Add(Verdict{Correct: true, Task: "music", Difficulty: "easy"})
	start.Add(Verdict{Correct: false, Task: "sound", Difficulty: "hard"})
	start.Add(Verdict{Correct: true, Task: "sound", Difficulty: "hard"})
	final := NewReport("final")
	final.Add(Verdict{Correct: true, Task: "sound", Categories: []string{"Reas"}})
	final.Add(Verdict{Correct: true, Task: "speech", Categories: []string{"Reas"}})
	final.Add(Verdict{Correct: false, Task: "speech"})
	final.Add(Verdict{Correct: true, Task: "speech", Categories: []string{"Reas"}})

	var b bytes.Buffer
	if err := Compare(&b, []string{"start", "final"}, []*Report{start, final}); err != nil {
		t.Fatal(err)
	}
	want := lines(
		"                  start          final",
		"overall    66.67% (n=3)   75.00% (n=4)",
		"",
		"by task",
		"  music   100.00% (n=1)              -",
		"  sound    50.00% (n=2)  100.00% (n=1)",
		"  speech              -   66.67% (n=3)",
		"",
		"by category",
		"  Reas                -  100.00% (n=3)",
		"  (none)              -    0.00% (n=1)",
		"",
		"by difficulty",
		"  easy    100.00% (n=1)              -",
		"  hard     50.00% (n=2)              -",
	)
	if got := b.String(); got != want {
		t.Errorf("compare:\n%s\nwant:\n%s", got, want)
	}

	if err := Compare(&b, []string{"a"}, []*Report{start, final}); err == nil || !strings.Contains(err.Error(), "1 names for 2 reports") {
		t.Errorf("mismatched names: %v", err)
	}
	if err := Compare(&b, []string{"a", "b"}, []*Report{start, nil}); err == nil || !strings.Contains(err.Error(), `report 1 ("b") is nil`) {
		t.Errorf("nil report: %v", err)
	}
	if err := Compare(&b, nil, nil); err == nil {
		t.Error("no reports: no error")
	}
}

func TestParseJSONRejectsBadCounts(t *testing.T) {
	for _, bad := range []string{
		`{"overall": {"correct": 3, "total": 2}}`,
		`{"overall": {"correct": 1, "total": 2}, "task": [{"correct": 1, "total": 2}]}`,
		`{"overall": {"correct": 1, "total": 2}, "task": [{"label": "a", "correct": 1, "total": 1}, {"label": "a", "correct": 0, "total": 1}]}`,
		`[1, 2]`,
	} {
		if _, err := ParseJSON([]byte(bad)); err == nil {
			t.Errorf("ParseJSON(%s): no error", bad)
		}
	}
}
