package sources

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	want := []string{"audsem", "avqa", "countingqa", "jsonl", "mmau", "mmsu", "soundmind"}
	if got := Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	for _, n := range want {
		f, err := Lookup(n)
		if err != nil || f.Name() != n || f.Describe() == "" {
			t.Errorf("Lookup(%q) = %v, %v", n, f, err)
		}
	}
	if _, err := Lookup("avqa2"); err == nil || !strings.Contains(err.Error(), "avqa, countingqa") {
		t.Errorf("Lookup(avqa2) error = %v", err)
	}
}

const goodJSONL = `{"id": "a", "audio": "a.wav", "question": "Q?", "answer": "yes"}`

func TestReadWholeFileFailures(t *testing.T) {
	dir := t.TempDir()
	f, _ := Lookup("jsonl")
	for _, tc := range []struct {
		name, content string
		fragments     []string
	}{
		{"empty.jsonl", "", []string{"empty.jsonl", "empty file"}},
		{"blank.jsonl", "\n  \r\n\t\n", []string{"blank.jsonl", "empty file"}},
		{"data.csv", "id,audio,question\n1,a.wav,Q?\n", []string{"data.csv:1:1", "not a JSON annotation file", `"i"`}},
		{"bom.csv", "\ufeff\n  id,audio\n", []string{"bom.csv:2:3", `"i"`}},
		{"array.json", "[\n  {\"id\": 1},\n  {\"id\" 2}\n]\n", []string{"array.json:3:9", "invalid JSON", "after object key"}},
		{"trailing.json", "[{\"id\": 1}]\n]", []string{"trailing.json:2:1", "after top-level value"}},
		{"truncated.json", "[{\"id\": 1},\n{\"id\":", []string{"truncated.json:2:7", "unexpected end"}},
		{"pretty.json", "{\n  \"id\": 1,\n  \"audio\": \"a.wav\"\n}\n", []string{"pretty.json", "one JSON object spread over several lines"}},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		entries, err := f.Read(p, Options{})
		if err == nil {
			t.Errorf("%s: read %d entries, want an error", tc.name, len(entries))
			continue
		}
		for _, frag := range tc.fragments {
			if !strings.Contains(err.Error(), frag) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, frag)
			}
		}
	}
	missing := filepath.Join(dir, "missing.jsonl")
	if _, err := f.Read(missing, Options{}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %v does not name it", err)
	}
}

func TestReadBOMAndCRLF(t *testing.T) {
	content := "\ufeff" + goodJSONL + "\r\n\r\n" + strings.Replace(goodJSONL, `"a"`, `"b"`, 1) + "\r\n"
	_, entries := readString(t, "jsonl", "crlf.jsonl", content)
	wantCount(t, entries, 2)
	for i, e := range entries {
		s := wantOK(t, e)
		if want := []int{1, 3}[i]; e.Loc.Line != want {
			t.Errorf("entry %d at %s, want line %d", i, e.Loc, want)
		}
		if s.Answer != "yes" {
			t.Errorf("answer %q", s.Answer)
		}
	}
	if entries[0].Sample.ID != "a" || entries[1].Sample.ID != "b" {
		t.Errorf("ids %q %q", entries[0].Sample.ID, entries[1].Sample.ID)
	}
	// A BOM before a JSON array, CRLF inside it.
	_, entries = readString(t, "jsonl", "bom.json", "\ufeff[\r\n"+goodJSONL+"\r\n]\r\n")
	wantCount(t, entries, 1)
	wantOK(t, entries[0])
}

func TestReadLongLine(t *testing.T) {
	long := strings.Repeat("x", 300_000) // far past bufio.Scanner's 64 KB
	content := lines(`{"id": 1, "audio": "a.wav", "question": "`+long+`", "answer": "y"}`, goodJSONL)
	_, entries := readString(t, "jsonl", "long.jsonl", content)
	wantCount(t, entries, 2)
	if s := wantOK(t, entries[0]); len(s.Question) != len(long) {
		t.Errorf("question of %d bytes, want %d", len(s.Question), len(long))
	}
	if entries[1].Loc.Line != 2 {
		t.Errorf("second entry at %s", entries[1].Loc)
	}
}

func TestReadSniffsLayout(t *testing.T) {
	// A JSON array where JSONL is usual, JSONL where an array is usual.
	_, entries := readString(t, "jsonl", "data.jsonl", "  \n["+goodJSONL+", "+goodJSONL+"]")
	wantCount(t, entries, 2)
	for i, e := range entries {
		wantOK(t, e)
		if e.Loc.Index == nil || *e.Loc.Index != i || e.Loc.Line != 0 {
			t.Errorf("entry %d at %s, want index %d", i, e.Loc, i)
		}
	}
	_, entries = readString(t, "mmau", "mmau.json", lines(
		`{"id": "m1", "audio_id": "./a/m1.wav", "question": "Q?", "choices": ["x", "y"], "answer": "y"}`))
	wantCount(t, entries, 1)
	if s := wantOK(t, entries[0]); s.AnswerIndex != 1 || entries[0].Loc.Line != 1 {
		t.Errorf("%s: %+v", entries[0].Loc, s)
	}
}

func TestReadBadRecords(t *testing.T) {
	content := lines(
		`{"id": "q1", "audio": "a.wav", "question": "Q?", "answer": "x"`, // truncated
		`{"id": 77, "audio": "a.wav", "question": "Q?" "answer": "x"}`,   // missing comma
		`[1, 2]`,
		`"just a string"`,
		`null`,
		goodJSONL,
	)
	_, entries := readString(t, "jsonl", "bad.jsonl", content)
	wantCount(t, entries, 6)
	wantReject(t, entries[0], ReasonMalformed, 1, 0, "q1", "invalid JSON", "column 63")
	wantReject(t, entries[1], ReasonMalformed, 2, 0, "77", "invalid JSON", "column 47")
	wantReject(t, entries[2], ReasonMalformed, 3, 0, "", "expected a JSON object, found a list")
	wantReject(t, entries[3], ReasonMalformed, 4, 0, "", "found a string")
	wantReject(t, entries[4], ReasonMalformed, 5, 0, "", "found null")
	wantOK(t, entries[5])
	for _, e := range entries {
		if e.Sample.Source != "jsonl" {
			t.Errorf("%s: source %q", e.Loc, e.Sample.Source)
		}
	}

	// In an array, one bad element is one reject at its index.
	_, entries = readString(t, "jsonl", "bad.json", "["+goodJSONL+", 3, {\"id\": \"z\"}, "+goodJSONL+"]")
	wantCount(t, entries, 4)
	wantOK(t, entries[0])
	wantReject(t, entries[1], ReasonMalformed, 0, 1, "", "found a number")
	wantReject(t, entries[2], ReasonMalformed, 0, 2, "z", `missing "audio"`)
	wantOK(t, entries[3])
}

func TestLineCol(t *testing.T) {
	data := []byte("ab\ncd\n\nef")
	for _, tc := range []struct{ pos, line, col int }{
		{0, 1, 1}, {1, 1, 2}, {2, 1, 3}, {3, 2, 1}, {6, 3, 1}, {8, 4, 2}, {9, 4, 3}, {99, 4, 3},
	} {
		if l, c := lineCol(data, tc.pos); l != tc.line || c != tc.col {
			t.Errorf("lineCol(%d) = %d:%d, want %d:%d", tc.pos, l, c, tc.line, tc.col)
		}
	}
}

func TestExtraValues(t *testing.T) {
	r, err := decodeObject([]byte(`{"s": "text", "n": 1.50, "big": 12345678901234567890, "b": true,
		"o": {"a": [1, 2],  "b": null}, "l": [ "x" , 2 ], "z": null, "used": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	r.take("used")
	want := map[string]string{"s": "text", "n": "1.50", "big": "12345678901234567890", "b": "true",
		"o": `{"a":[1,2],"b":null}`, "l": `["x",2]`}
	if got := r.extra(); !reflect.DeepEqual(got, want) {
		t.Errorf("extra = %q, want %q", got, want)
	}
}

func TestIDsKeepTheirLiteral(t *testing.T) {
	r, err := decodeObject([]byte(`{"a": 183, "b": "0183", "c": 1.83e2, "d": -7, "e": 18446744073709551617, "f": true}`))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"a": "183", "b": "0183", "c": "1.83e2", "d": "-7", "e": "18446744073709551617"} {
		if got, ok, err := r.id(key); !ok || err != nil || got != want {
			t.Errorf("id %s = %q, %v, %v; want %q", key, got, ok, err, want)
		}
	}
	if _, _, err := r.id("f"); err == nil {
		t.Error("boolean id accepted")
	}
}
