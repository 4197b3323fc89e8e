package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"earl/shards/sources"
	"earl/worker/score"
)

func scoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "score",
		Usage:     "judge benchmark predictions as the benchmark's own script does and print accuracy tables",
		UsageText: "tools score --bench mmau|mmsu|exact --input PRED.json [--key FIELD] [--missing error|skip|wrong] [--json]",
		Description: `PRED.json is a JSON array or JSONL (one object per line). Its first row decides the layout:
a row with "reference" is earl's own (what worker eval writes), any other the bench's format.

earl's predictions, any --bench: "id", "output" (the completion), "answer" (extracted from
  <answer>…</answer>), "reference", "choices", "correct" (earl's verdict: re-judged here, and
  rows where it differs are counted on stderr), "task", "categories", "sub_category",
  "difficulty". The prediction is "answer" (--key output judges the whole completion).

--bench mmau: MMAU's format as its evaluation.py reads it: the test-mini / test rows ("id",
  "choices", "answer", "task", "category", "sub-category", "difficulty", ...) with the model's
  text under "model_output". Correct when every word of the answer and no word that only other
  choices have is in it (words: runs of \w in the lower-cased text, Python's rules); the whole
  text is matched, with no <answer> extraction, as the official script does.
--bench mmsu: MMSU's format as its mmsu_evaluation.py reads it: "id", "choice_a".."choice_d",
  "answer_gt", "task_name", "category", "sub-category", with the model's text under "response".
  The response, stripped and with its newlines removed, names the letter of its first character
  when that is A-D, else of its second-to-last ("The answer is B."); correct when that choice's
  text equals answer_gt exactly. An empty response or "None" counts as wrong; a response naming
  no letter is left out of every total, as mmsu_evaluation.py does (counted under "skipped").
  On earl's layout the letter indexes "choices" and is compared with "reference".
--bench exact: rows of "id", "output" (or "model_output"), "answer": correct when the two are
  equal after stripping surrounding whitespace (Python's str.strip()).

Labels, read in every layout: "task" or "task_name"; "categories" or "category" (a string or
a list); "sub_category" or "sub-category"; "difficulty" (a string or a number). Sub-categories
are tabled within their category, as MMSU's script does.

A row without the prediction field is an error naming the first few; --missing skip leaves
such rows out (MMAU's evaluation.py does), --missing wrong counts them wrong (MMSU's does).
--json prints one line per row, {"index", "id", "correct", "prediction", "skipped"}, then the
summary (the tables' numbers) as the last line.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bench", Required: true, Usage: "mmau, mmsu or exact: whose rule judges the predictions"},
			&cli.StringFlag{Name: "input", Required: true, Usage: "predictions: JSON array or JSONL"},
			&cli.StringFlag{Name: "key", Usage: "field holding the prediction (default: answer in earl's layout, model_output for mmau, response for mmsu, output or model_output for exact)"},
			&cli.StringFlag{Name: "missing", Value: "error", Usage: "rows without the prediction field: error, skip (leave out of every total) or wrong (count as wrong)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON verdict per row and the summary, instead of tables"},
		},
		Action: runScore,
	}
}

// layout is the shape of a prediction file's rows.
type layout int

const (
	layoutEarl  layout = iota // worker eval's predictions JSONL
	layoutBench               // the --bench's own format
)

// predRow is one row of a prediction file.
type predRow struct {
	index int    // 0-based position among the rows
	loc   string // "PRED.json[3]" or "PRED.jsonl:4"
	short string // "[3]" or "line 4", for lists of rows
	m     map[string]json.RawMessage
	id    string
}

// rowVerdict is one judged row, as --json prints it.
type rowVerdict struct {
	Index      int    `json:"index"`
	ID         string `json:"id"`
	Correct    bool   `json:"correct"`
	Prediction string `json:"prediction"`
	Skipped    string `json:"skipped,omitempty"`
}

func runScore(c *cli.Context) error {
	bench, path, missing := c.String("bench"), c.String("input"), c.String("missing")
	switch bench {
	case "mmau", "mmsu", "exact":
	default:
		return fmt.Errorf("--bench %q: use mmau, mmsu or exact", bench)
	}
	switch missing {
	case "error", "skip", "wrong":
	default:
		return fmt.Errorf("--missing %q: use error, skip or wrong", missing)
	}
	rows, err := loadPredRows(path)
	if err != nil {
		return err
	}
	lay := layoutBench
	if _, ok := rows[0].m["reference"]; ok {
		lay = layoutEarl
	}
	key := c.String("key")
	if key == "" {
		key = defaultKey(bench, lay, rows[0])
	}

	rep := score.NewReport(fmt.Sprintf("%s: %s", bench, path))
	var verdicts []rowVerdict
	var absent []*predRow
	var differ []*predRow
	for i := range rows {
		r := &rows[i]
		v := rowVerdict{Index: r.index, ID: r.id}
		labels, err := r.labels()
		if err != nil {
			return err
		}
		pred, ok, err := r.str(key)
		if err != nil {
			return err
		}
		switch {
		case !ok && missing == "error":
			absent = append(absent, r)
			continue
		case !ok && missing == "skip":
			v.Skipped = fmt.Sprintf("no %q", key)
			rep.Skip(v.Skipped)
		case !ok: // wrong
			if _, _, err := judge(bench, lay, r, ""); err != nil {
				return err // the row's other fields must still be sound
			}
			rep.Add(labels)
		default:
			v.Prediction = pred
			correct, skip, err := judge(bench, lay, r, pred)
			if err != nil {
				return err
			}
			if skip != "" {
				v.Skipped = skip
				rep.Skip(skip)
				break
			}
			v.Correct = correct
			labels.Correct = correct
			rep.Add(labels)
			if lay == layoutEarl {
				var stored bool
				if json.Unmarshal(r.m["correct"], &stored) == nil && stored != correct {
					differ = append(differ, r)
				}
			}
		}
		verdicts = append(verdicts, v)
	}
	if len(absent) > 0 {
		return fmt.Errorf("%s: %d of %d rows have no %q: %s: add it to every row, pass --key to name the field that holds the prediction, "+
			"or --missing skip to leave such rows out (as MMAU's evaluation.py does) or --missing wrong to count them wrong",
			path, len(absent), len(rows), key, rowList(absent))
	}
	if len(differ) > 0 {
		fmt.Fprintf(c.App.ErrWriter, "tools score: the stored \"correct\" differs from the %s rule on %d of %d rows (%s): the eval judged them with another rule\n",
			bench, len(differ), len(rows), rowList(differ))
	}
	out := c.App.Writer
	if !c.Bool("json") {
		return rep.Write(out)
	}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for _, v := range verdicts {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	js, err := rep.JSON()
	if err != nil {
		return err
	}
	var line bytes.Buffer
	if err := json.Compact(&line, js); err != nil {
		return fmt.Errorf("summary JSON: %w", err)
	}
	line.WriteByte('\n')
	_, err = out.Write(line.Bytes())
	return err
}

// defaultKey is where each layout keeps the model's text.
func defaultKey(bench string, lay layout, first predRow) string {
	switch {
	case lay == layoutEarl:
		return "answer"
	case bench == "mmau":
		return "model_output"
	case bench == "mmsu":
		return "response"
	}
	if _, ok := first.m["output"]; ok {
		return "output"
	}
	return "model_output"
}

// rowList names up to five rows: `[3] (id "x"), [9] (id "y") and 4 more`.
func rowList(rows []*predRow) string {
	var parts []string
	for _, r := range rows[:min(5, len(rows))] {
		s := r.short
		if r.id != "" {
			s += fmt.Sprintf(" (id %q)", r.id)
		}
		parts = append(parts, s)
	}
	s := strings.Join(parts, ", ")
	if len(rows) > 5 {
		s += fmt.Sprintf(" and %d more", len(rows)-5)
	}
	return s
}

// judge applies the bench's rule to one row's prediction. skip is the
// reason the bench's script leaves the row out of every total, or "".
func judge(bench string, lay layout, r *predRow, pred string) (correct bool, skip string, err error) {
	refKey := "answer"
	switch {
	case lay == layoutEarl:
		refKey = "reference"
	case bench == "mmsu":
		refKey = "answer_gt"
	}
	ref, err := r.needStr(refKey)
	if err != nil {
		return false, "", err
	}
	switch bench {
	case "mmau":
		choices, err := r.strList("choices", lay == layoutBench)
		if err != nil {
			return false, "", err
		}
		return score.MMAUMatch(ref, pred, choices), "", nil
	case "mmsu":
		opts, err := r.mmsuChoices(lay)
		if err != nil {
			return false, "", err
		}
		i, readable := mmsuPick(pred)
		if !readable {
			return false, "response naming no letter A-D", nil
		}
		return i >= 0 && i < len(opts) && opts[i].ok && opts[i].text == ref, "", nil
	}
	return score.Strip(pred) == score.Strip(ref), "", nil
}

// mmsuPick reads a response the way mmsu_evaluation.py does: stripped
// (str.strip) and with every "\n" removed, it names the letter of its first
// character when that is A-D, else of its second-to-last ("The answer is
// B."). idx is 0..3 for A..D, -1 for an empty response or "None" (counted
// wrong); readable is false when it names no letter (the script leaves the
// row out). Note what this is not: "Because" names B, "(C)" or "answer: c"
// name nothing, and only A-D exist — the script's rule, kept so the numbers
// match the MMSU leaderboard's.
func mmsuPick(response string) (idx int, readable bool) {
	p := strings.ReplaceAll(score.Strip(response), "\n", "")
	if p == "" || p == "None" {
		return -1, true
	}
	rs := []rune(p)
	if rs[0] >= 'A' && rs[0] <= 'D' {
		return int(rs[0] - 'A'), true
	}
	if len(rs) > 1 && rs[len(rs)-2] >= 'A' && rs[len(rs)-2] <= 'D' {
		return int(rs[len(rs)-2] - 'A'), true
	}
	return -1, false
}

// mmsuChoice is one of an MMSU row's options; ok is false for a null one,
// which (None in Python) equals no answer.
type mmsuChoice struct {
	text string
	ok   bool
}

// mmsuChoices are choice_a..choice_d in MMSU's format (an absent one is "",
// as record.get(key, ”) makes it), or earl's "choices" list.
func (r *predRow) mmsuChoices(lay layout) ([]mmsuChoice, error) {
	if lay == layoutEarl {
		list, err := r.strList("choices", false)
		if err != nil {
			return nil, err
		}
		out := make([]mmsuChoice, len(list))
		for i, c := range list {
			out[i] = mmsuChoice{c, true}
		}
		return out, nil
	}
	var out []mmsuChoice
	for _, k := range []string{"choice_a", "choice_b", "choice_c", "choice_d"} {
		v, present := r.m[k]
		if !present {
			out = append(out, mmsuChoice{"", true})
			continue
		}
		if isNull(v) {
			out = append(out, mmsuChoice{})
			continue
		}
		s, ok, err := r.str(k)
		if err != nil || !ok {
			return nil, err
		}
		out = append(out, mmsuChoice{s, true})
	}
	return out, nil
}

// labels reads a row's task, categories, sub-category and difficulty.
func (r *predRow) labels() (score.Verdict, error) {
	var v score.Verdict
	var err error
	if v.Task, err = r.label("task", "task_name"); err != nil {
		return v, err
	}
	for _, k := range []string{"categories", "category"} {
		raw, ok := r.m[k]
		if !ok || isNull(raw) {
			continue
		}
		if raw = bytes.TrimSpace(raw); raw[0] == '[' {
			v.Categories, err = r.strList(k, true)
		} else {
			var c string
			c, err = r.label(k)
			v.Categories = []string{c}
		}
		if err != nil {
			return v, err
		}
		break
	}
	if v.SubCategory, err = r.label("sub_category", "sub-category"); err != nil {
		return v, err
	}
	v.Difficulty, err = r.label("difficulty")
	return v, err
}

// label is the first present of keys as text: a string, or a number's
// literal ("3"); "" when none is present or it is null.
func (r *predRow) label(keys ...string) (string, error) {
	for _, k := range keys {
		v, ok := r.m[k]
		if !ok || isNull(v) {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s, nil
		}
		var n json.Number
		if json.Unmarshal(v, &n) == nil {
			return n.String(), nil
		}
		return "", r.errorf("%q must be a string or a number, not %s", k, sources.JSONKind(v))
	}
	return "", nil
}

// str reads a field that must be a JSON string; ok is false when it is
// absent. null is an error: the reference scripts would fail on it.
func (r *predRow) str(key string) (s string, ok bool, err error) {
	v, present := r.m[key]
	if !present {
		return "", false, nil
	}
	if json.Unmarshal(v, &s) != nil || isNull(v) {
		return "", true, r.errorf("%q must be a string, not %s", key, sources.JSONKind(v))
	}
	return s, true, nil
}

func (r *predRow) needStr(key string) (string, error) {
	s, ok, err := r.str(key)
	if err == nil && !ok {
		err = r.errorf("missing %q", key)
	}
	return s, err
}

// strList reads a list of strings; absent (or null) is an empty list unless
// required.
func (r *predRow) strList(key string, required bool) ([]string, error) {
	v, present := r.m[key]
	if !present || isNull(v) {
		if required {
			return nil, r.errorf("missing %q", key)
		}
		return nil, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(v, &items) != nil {
		return nil, r.errorf("%q must be a list of strings, not %s", key, sources.JSONKind(v))
	}
	out := make([]string, len(items))
	for i, it := range items {
		if json.Unmarshal(it, &out[i]) != nil || isNull(it) {
			return nil, r.errorf("%q: item %d must be a string, not %s", key, i, sources.JSONKind(it))
		}
	}
	return out, nil
}

func (r *predRow) errorf(format string, args ...any) error {
	where := r.loc
	if r.id != "" {
		where += fmt.Sprintf(" (id %q)", r.id)
	}
	return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// loadPredRows reads a prediction file: a JSON array of objects, or one
// JSON object per line (blank lines ignored); the first non-space byte
// decides which.
func loadPredRows(path string) ([]predRow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	body := bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%s: empty file: want a JSON array of prediction objects or one object per line", path)
	}
	var rows []predRow
	switch trimmed[0] {
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(trimmed, &elems); err != nil {
			return nil, fmt.Errorf("%s: not a valid JSON array: %w", path, err)
		}
		for i, e := range elems {
			rows = append(rows, predRow{index: i, loc: sources.AtIndex(path, i).String(), short: fmt.Sprintf("[%d]", i)})
			if err := rows[i].decode(e); err != nil {
				return nil, err
			}
		}
	case '{':
		for n, line := range bytes.Split(body, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			r := predRow{index: len(rows), loc: sources.AtLine(path, n+1).String(), short: fmt.Sprintf("line %d", n+1)}
			if err := r.decode(line); err != nil {
				if n == 0 && json.Valid(body) {
					return nil, fmt.Errorf("%s: one JSON object spread over several lines: want a JSON array of predictions or one object per line", path)
				}
				return nil, err
			}
			rows = append(rows, r)
		}
	default:
		return nil, fmt.Errorf("%s: starts with %q: want a JSON array ('[') or one JSON object per line ('{')", path, trimmed[:1])
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no predictions in the file", path)
	}
	return rows, nil
}

// decode parses one row, which must be a JSON object, and reads its id
// (a string or a number) for messages.
func (r *predRow) decode(data []byte) error {
	if err := json.Unmarshal(data, &r.m); err != nil || r.m == nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("%s: invalid JSON: %w", r.loc, err)
		}
		return fmt.Errorf("%s: want a JSON object, found %s", r.loc, sources.JSONKind(data))
	}
	if v, ok := r.m["id"]; ok {
		var s string
		var n json.Number
		switch {
		case json.Unmarshal(v, &s) == nil && !isNull(v):
			r.id = s
		case json.Unmarshal(v, &n) == nil && !isNull(v):
			r.id = n.String()
		}
	}
	return nil
}
