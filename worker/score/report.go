package score

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/width"
)

// Verdict is one judged prediction with the benchmark's labels for it.
// Empty labels are allowed; a question may sit in several categories
// (MMAU writes category as a string or a list).
type Verdict struct {
	Correct     bool
	Task        string
	Categories  []string
	SubCategory string
	Difficulty  string
}

// NoLabel is the row for verdicts without a label in a group that others
// have labels in, so that every table's totals add up to the overall one.
const NoLabel = "(none)"

// subSep joins a category and one of its sub-categories into one row label.
const subSep = " / "

// group is one way of breaking the overall accuracy down.
type group int

const (
	byTask group = iota
	byCategory
	bySubCategory
	byDifficulty
	numGroups
)

// groupNames are the JSON keys and the table headings, in table order.
var groupNames = [numGroups]struct{ key, heading string }{
	{"task", "by task"},
	{"category", "by category"},
	{"sub_category", "by sub-category"},
	{"difficulty", "by difficulty"},
}

type tally struct{ correct, total int }

// Report accumulates verdicts and prints the accuracy tables the
// benchmarks' own evaluation scripts print: overall, by task and by
// difficulty (MMAU's evaluation.py), by category and sub-category
// (MMSU's mmsu_evaluation.py). A group's table appears when any verdict
// has a label in it.
//
// Sub-categories are counted within their category ("reasoning /
// semantics"): MMSU reuses its sub-category names (semantics, phonology,
// paralinguistics) under both perception and reasoning, and its script and
// leaderboard keep them apart. MMAU's sub-categories each belong to one
// category, so its numbers equal its script's flat ones. A verdict in
// several categories counts once in each, so the category table may sum to
// more than the overall total.
//
// A Report is not safe for concurrent use.
type Report struct {
	title   string
	overall tally
	rows    [numGroups]map[string]*tally
	// labelled says whether any verdict had a label in the group: only
	// those groups get a table.
	labelled [numGroups]bool
	skipped  map[string]int
}

// NewReport returns an empty report whose tables are headed by title
// (none when title is empty).
func NewReport(title string) *Report {
	r := &Report{title: title, skipped: map[string]int{}}
	for g := range r.rows {
		r.rows[g] = map[string]*tally{}
	}
	return r
}

// Add counts one verdict. Labels are compared after Strip, so "sound" and
// "sound " are one row.
func (r *Report) Add(v Verdict) {
	r.overall.count(v.Correct)
	var cats []string
	for _, c := range v.Categories {
		if c = Strip(c); c != "" && !slices.Contains(cats, c) {
			cats = append(cats, c)
		}
	}
	r.count(byTask, v.Correct, Strip(v.Task))
	r.count(byCategory, v.Correct, cats...)
	var subs []string
	if s := Strip(v.SubCategory); s != "" {
		subs = []string{s}
		if len(cats) > 0 {
			subs = subs[:0]
			for _, c := range cats {
				subs = append(subs, c+subSep+s)
			}
		}
	}
	r.count(bySubCategory, v.Correct, subs...)
	r.count(byDifficulty, v.Correct, Strip(v.Difficulty))
}

// count adds the verdict to the rows of labels in g: NoLabel when there is
// no non-empty label.
func (r *Report) count(g group, correct bool, labels ...string) {
	n := 0
	for _, l := range labels {
		if l == "" {
			continue
		}
		n++
		r.labelled[g] = true
		r.row(g, l).count(correct)
	}
	if n == 0 {
		r.row(g, NoLabel).count(correct)
	}
}

func (r *Report) row(g group, label string) *tally {
	t := r.rows[g][label]
	if t == nil {
		t = &tally{}
		r.rows[g][label] = t
	}
	return t
}

func (t *tally) count(correct bool) {
	t.total++
	if correct {
		t.correct++
	}
}

// Skip records a prediction left out of every total, and why (MMSU's
// script leaves out responses it cannot read; MMAU's, rows without a
// model_output). The tables end with the count per reason.
func (r *Report) Skip(reason string) { r.skipped[reason]++ }

// Accuracy returns the overall counts.
func (r *Report) Accuracy() (correct, total int) { return r.overall.correct, r.overall.total }

// percent is the accuracy in percent, computed as the reference scripts
// compute it — (correct / total) * 100, in that order — so that the
// printed digits agree with theirs; ok is false for an empty tally.
func (t tally) percent() (float64, bool) {
	if t.total == 0 {
		return 0, false
	}
	return float64(t.correct) / float64(t.total) * 100, true
}

// pctText is the accuracy with two decimals ("61.20%"), or "-" when there
// is nothing to divide.
func (t tally) pctText() string {
	p, ok := t.percent()
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", p)
}

// labels returns the group's row labels in byte order (code point order for
// UTF-8), NoLabel last.
func (r *Report) labels(g group) []string {
	var out []string
	none := false
	for l := range r.rows[g] {
		if l == NoLabel {
			none = true
			continue
		}
		out = append(out, l)
	}
	slices.Sort(out)
	if none {
		out = append(out, NoLabel)
	}
	return out
}

// Write prints the tables as plain text: the title, the overall row, then
// one section per labelled group — each row the label, correct/total and
// the accuracy in percent with two decimals, rows sorted by label — and,
// when predictions were skipped, how many and why.
//
//	MMAU test-mini
//	overall        505/1000  50.50%
//
//	by task
//	  music         167/334  50.00%
func (r *Report) Write(w io.Writer) error {
	type line struct{ label, count, pct string }
	var lines []line // a line with an empty count is a heading or a blank
	add := func(label string, t tally) {
		lines = append(lines, line{label, fmt.Sprintf("%d/%d", t.correct, t.total), t.pctText()})
	}
	add("overall", r.overall)
	for g := range numGroups {
		if !r.labelled[g] {
			continue
		}
		lines = append(lines, line{}, line{label: groupNames[g].heading})
		for _, l := range r.labels(g) {
			add("  "+l, *r.rows[g][l])
		}
	}
	labelW, countW := 0, 0
	for _, l := range lines {
		if l.count != "" {
			labelW = max(labelW, columns(l.label))
			countW = max(countW, len(l.count))
		}
	}
	var b strings.Builder
	if r.title != "" {
		b.WriteString(r.title + "\n")
	}
	for _, l := range lines {
		if l.count == "" {
			b.WriteString(l.label + "\n")
			continue
		}
		fmt.Fprintf(&b, "%s  %*s  %7s\n", padRight(l.label, labelW), countW, l.count, l.pct)
	}
	if s := r.skippedText(); s != "" {
		b.WriteString("\n" + s + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// skippedText is "skipped 3: 2 reason a, 1 reason b", reasons sorted, or
// "" when nothing was skipped.
func (r *Report) skippedText() string {
	if len(r.skipped) == 0 {
		return ""
	}
	var reasons []string
	n := 0
	for k, v := range r.skipped {
		reasons = append(reasons, k)
		n += v
	}
	slices.Sort(reasons)
	parts := make([]string, len(reasons))
	for i, k := range reasons {
		parts[i] = fmt.Sprintf("%d %s", r.skipped[k], k)
	}
	return fmt.Sprintf("skipped %d (left out of every total): %s", n, strings.Join(parts, "; "))
}

// padRight pads s with spaces to cols terminal columns.
func padRight(s string, cols int) string {
	return s + strings.Repeat(" ", max(0, cols-columns(s)))
}

// columns is how many terminal columns s takes: two for East Asian wide
// and fullwidth characters, none for combining marks, one for the rest.
// fmt's widths count runes, which misaligns tables with CJK labels.
func columns(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r):
		case width.LookupRune(r).Kind() == width.EastAsianWide || width.LookupRune(r).Kind() == width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// JSONRow is one row of the JSON form: Percent is the accuracy in percent
// (not rounded), null for an empty tally.
type JSONRow struct {
	Label   string   `json:"label,omitempty"`
	Correct int      `json:"correct"`
	Total   int      `json:"total"`
	Percent *float64 `json:"percent"`
}

// JSONReport is the JSON form of a Report: the same numbers as the tables.
// A group is present when it has a table; NoLabel rows keep their label.
type JSONReport struct {
	Title       string         `json:"title,omitempty"`
	Overall     JSONRow        `json:"overall"`
	Task        []JSONRow      `json:"task,omitempty"`
	Category    []JSONRow      `json:"category,omitempty"`
	SubCategory []JSONRow      `json:"sub_category,omitempty"`
	Difficulty  []JSONRow      `json:"difficulty,omitempty"`
	Skipped     map[string]int `json:"skipped,omitempty"`
}

func (j *JSONReport) group(g group) *[]JSONRow {
	return [numGroups]*[]JSONRow{&j.Task, &j.Category, &j.SubCategory, &j.Difficulty}[g]
}

func jsonRow(label string, t tally) JSONRow {
	row := JSONRow{Label: label, Correct: t.correct, Total: t.total}
	if p, ok := t.percent(); ok {
		row.Percent = &p
	}
	return row
}

// JSON returns the report as indented JSON (see JSONReport), ending in a
// newline.
func (r *Report) JSON() ([]byte, error) {
	j := JSONReport{Title: r.title, Overall: jsonRow("", r.overall)}
	for g := range numGroups {
		if !r.labelled[g] {
			continue
		}
		rows := j.group(g)
		for _, l := range r.labels(g) {
			*rows = append(*rows, jsonRow(l, *r.rows[g][l]))
		}
	}
	if len(r.skipped) > 0 {
		j.Skipped = r.skipped
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("score report %q: %w", r.title, err)
	}
	return append(b, '\n'), nil
}

// ParseJSON rebuilds a Report from what JSON wrote, so that reports written
// by separate runs (checkpoints, benchmarks) can be put side by side with
// Compare.
func ParseJSON(data []byte) (*Report, error) {
	var j JSONReport
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("score report JSON: %w", err)
	}
	r := NewReport(j.Title)
	check := func(where string, row JSONRow) (tally, error) {
		if row.Correct < 0 || row.Total < row.Correct {
			return tally{}, fmt.Errorf("score report JSON: %s: %d correct of %d: want 0 <= correct <= total", where, row.Correct, row.Total)
		}
		return tally{row.Correct, row.Total}, nil
	}
	var err error
	if r.overall, err = check("overall", j.Overall); err != nil {
		return nil, err
	}
	for g := range numGroups {
		rows := *j.group(g)
		if len(rows) > 0 {
			r.labelled[g] = true
		}
		for _, row := range rows {
			if row.Label == "" {
				return nil, fmt.Errorf("score report JSON: %s: a row without a label", groupNames[g].key)
			}
			if _, dup := r.rows[g][row.Label]; dup {
				return nil, fmt.Errorf("score report JSON: %s: label %q twice", groupNames[g].key, row.Label)
			}
			t, err := check(groupNames[g].key+" "+row.Label, row)
			if err != nil {
				return nil, err
			}
			r.rows[g][row.Label] = &t
		}
	}
	for k, v := range j.Skipped {
		r.skipped[k] = v
	}
	return r, nil
}

// Compare prints reports side by side, one column per report headed by its
// name, one row per label: the overall row first, then each group that any
// report has a table for, with the union of the reports' labels. A cell is
// the accuracy and the number of predictions ("61.20% (n=1000)"); "-" where
// a report has no such row.
func Compare(w io.Writer, names []string, reports []*Report) error {
	if len(names) != len(reports) {
		return fmt.Errorf("compare: %d names for %d reports", len(names), len(reports))
	}
	if len(reports) == 0 {
		return errors.New("compare: no reports")
	}
	for i, r := range reports {
		if r == nil {
			return fmt.Errorf("compare: report %d (%q) is nil", i, names[i])
		}
	}
	cell := func(t tally) string {
		p, ok := t.percent()
		if !ok {
			return fmt.Sprintf("- (n=%d)", t.total)
		}
		return fmt.Sprintf("%.2f%% (n=%d)", p, t.total)
	}
	// rows[0] is the header; a row with nil cells is a heading or a blank.
	type row struct {
		label string
		cells []string
	}
	rows := []row{{"", names}}
	overall := make([]string, len(reports))
	for i, r := range reports {
		overall[i] = cell(r.overall)
	}
	rows = append(rows, row{"overall", overall})
	for g := range numGroups {
		var labels []string
		for _, r := range reports {
			if r.labelled[g] {
				for _, l := range r.labels(g) {
					if !slices.Contains(labels, l) {
						labels = append(labels, l)
					}
				}
			}
		}
		if len(labels) == 0 {
			continue
		}
		slices.SortFunc(labels, func(a, b string) int {
			// NoLabel last, as in Write.
			if (a == NoLabel) != (b == NoLabel) {
				if a == NoLabel {
					return 1
				}
				return -1
			}
			return strings.Compare(a, b)
		})
		rows = append(rows, row{}, row{label: groupNames[g].heading})
		for _, l := range labels {
			cells := make([]string, len(reports))
			for i, r := range reports {
				cells[i] = "-"
				if t := r.rows[g][l]; t != nil && r.labelled[g] {
					cells[i] = cell(*t)
				}
			}
			rows = append(rows, row{"  " + l, cells})
		}
	}
	labelW := 0
	widths := make([]int, len(reports))
	for _, rw := range rows {
		if rw.cells == nil {
			continue
		}
		labelW = max(labelW, columns(rw.label))
		for i, c := range rw.cells {
			widths[i] = max(widths[i], columns(c))
		}
	}
	var b strings.Builder
	for _, rw := range rows {
		if rw.cells == nil {
			b.WriteString(rw.label + "\n")
			continue
		}
		b.WriteString(padRight(rw.label, labelW))
		for i, c := range rw.cells {
			b.WriteString("  " + strings.Repeat(" ", widths[i]-columns(c)) + c)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
