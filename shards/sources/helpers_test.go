package sources

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFile writes content to a file called name in a fresh temporary
// directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// lines joins JSONL records with "\n" and a final newline.
func lines(recs ...string) string { return strings.Join(recs, "\n") + "\n" }

// read runs the named format on path; the file must be readable as a whole.
func read(t *testing.T, format, path string, opt Options) []Entry {
	t.Helper()
	f, err := Lookup(format)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := f.Read(path, opt)
	if err != nil {
		t.Fatalf("%s.Read(%s): %v", format, path, err)
	}
	return entries
}

// readString writes content to name and reads it with format.
func readString(t *testing.T, format, name, content string) (string, []Entry) {
	t.Helper()
	p := writeFile(t, name, content)
	return p, read(t, format, p, Options{})
}

// wantCount checks the number of entries.
func wantCount(t *testing.T, entries []Entry, n int) {
	t.Helper()
	if len(entries) != n {
		for _, e := range entries {
			t.Logf("%s: %+v err=%v", e.Loc, e.Sample, e.Err)
		}
		t.Fatalf("got %d entries, want %d", len(entries), n)
	}
}

// wantOK checks that e was accepted and returns its sample.
func wantOK(t *testing.T, e Entry) Sample {
	t.Helper()
	if e.Err != nil {
		t.Fatalf("%s: unexpected reject: %v", e.Loc, e.Err)
	}
	return e.Sample
}

// wantReject checks that e was rejected for reason at the given location (a
// 1-based line when line > 0, else the 0-based index) with id, and that the
// error mentions every one of the fragments.
func wantReject(t *testing.T, e Entry, reason Reason, line, index int, id string, fragments ...string) {
	t.Helper()
	if e.Err == nil {
		t.Fatalf("%s: accepted %+v, want a %s reject", e.Loc, e.Sample, reason)
	}
	if got := ReasonOf(e.Err); got != reason {
		t.Errorf("%s: reason %s, want %s (%v)", e.Loc, got, reason, e.Err)
	}
	if line > 0 {
		if e.Loc.Line != line || e.Loc.Index != nil {
			t.Errorf("location %s, want line %d", e.Loc, line)
		}
	} else if e.Loc.Index == nil || *e.Loc.Index != index || e.Loc.Line != 0 {
		t.Errorf("location %s, want index %d", e.Loc, index)
	}
	if e.Sample.ID != id {
		t.Errorf("%s: reject id %q, want %q", e.Loc, e.Sample.ID, id)
	}
	for _, f := range fragments {
		if !strings.Contains(e.Err.Error(), f) {
			t.Errorf("%s: error %q does not mention %q", e.Loc, e.Err, f)
		}
	}
}

// wantSample compares the fields of got that want sets (ID, Audio, Question,
// Choices, AnswerIndex, Answer always; the rest when non-zero in want).
func wantSample(t *testing.T, got, want Sample) {
	t.Helper()
	if got.ID != want.ID || got.Audio != want.Audio || got.Question != want.Question ||
		!reflect.DeepEqual(got.Choices, want.Choices) || got.AnswerIndex != want.AnswerIndex || got.Answer != want.Answer {
		t.Errorf("sample\n got %+v\nwant %+v", got, want)
	}
	if want.Source != "" && got.Source != want.Source {
		t.Errorf("source %q, want %q", got.Source, want.Source)
	}
	if want.Task != "" && got.Task != want.Task {
		t.Errorf("task %q, want %q", got.Task, want.Task)
	}
	if want.Categories != nil && !reflect.DeepEqual(got.Categories, want.Categories) {
		t.Errorf("categories %q, want %q", got.Categories, want.Categories)
	}
	if want.SubCategory != "" && got.SubCategory != want.SubCategory {
		t.Errorf("sub-category %q, want %q", got.SubCategory, want.SubCategory)
	}
	if want.Difficulty != "" && got.Difficulty != want.Difficulty {
		t.Errorf("difficulty %q, want %q", got.Difficulty, want.Difficulty)
	}
	if want.Extra != nil && !reflect.DeepEqual(got.Extra, want.Extra) {
		t.Errorf("extra\n got %q\nwant %q", got.Extra, want.Extra)
	}
}

// sharedTestdata is the path of a file under ../shared/testdata beside the
// repository; the test fails when it is missing.
func sharedTestdata(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", "testdata", rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test data missing: %v (the real annotations live in ../shared/testdata beside the repository)", err)
	}
	return p
}
