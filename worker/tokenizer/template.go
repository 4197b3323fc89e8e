package tokenizer

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"text/template"
	"unicode"
)

// Question is what a task template sees of a sample. The reference answer
// is deliberately absent: a prompt must not leak it.
type Question struct {
	Question string
	Choices  []string
	// Source is the dataset format ("avqa", "mmau", ...), so a template
	// can adapt to it.
	Source string
	// ThinkWords bounds the thinking length in the `new` preset (default 50).
	ThinkWords int
}

// ChoicesPy renders the choices as a Python list literal, as the seeds'
// f-strings do ("{obj['choices']}" of a list): ['a', 'b'].
func (q Question) ChoicesPy() string { return PyList(q.Choices) }

// ChoicesLettered renders "A. x\nB. y", one per line.
func (q Question) ChoicesLettered() string {
	var b strings.Builder
	for i, c := range q.Choices {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%c. %s", 'A'+i, c)
	}
	return b.String()
}

// AudioQuestion is the question with AVQA's "video" reworded to "audio",
// as R1-AQA prepares AVQA (its questions were written about videos).
func (q Question) AudioQuestion() string {
	if q.Source != "avqa" {
		return q.Question
	}
	return strings.ReplaceAll(q.Question, "video", "audio")
}

// Think is the thinking bound for `new`.
func (q Question) Think() int {
	if q.ThinkWords > 0 {
		return q.ThinkWords
	}
	return 50
}

// The task templates, as Go text/template over a Question. Their sources:
//
//	default   R1-AQA's prompt (src/test.py, and the DEFAULT_TEMPLATE that
//	          later GRPO stacks copied): choices as a Python list literal.
//	r1-aqa    R1-AQA's training prompt: default, with AVQA's "video"
//	          reworded to "audio" (src/dataset/dataset.py).
//	think     R1-AQA's reasoning variant: think, then answer.
//	new       the length-bounded reasoning prompt of the R1-AQA follow-ups
//	          (Ke-Omni-R and others): think in under N words, then answer.
//	audsem    AudSemThinker's structured output: <think>, then
//	          <semantic_elements>, then <answer>.
//	soundmind SoundMind's entailment task: the question carries the
//	          premises; the answer is 'entailed' or 'not-entailed'.
var presets = map[string]string{
	"default": `{{.Question}} Please choose the answer from the following options: {{.ChoicesPy}}. Output the final answer in <answer> </answer>.`,
	"r1-aqa":  `{{.AudioQuestion}} Please choose the answer from the following options: {{.ChoicesPy}}. Output the final answer in <answer> </answer>.`,
	"think":   `{{.Question}} Please choose the answer from the following options: {{.ChoicesPy}}. Output the thinking process in <think> </think> and final answer in <answer> </answer>.`,
	"new":     `{{.Question}} Please choose the answer from the following options: {{.ChoicesPy}}. Output the thinking process (less than {{.Think}} words) in <think> </think> and final answer in <answer> </answer>.`,
	"audsem": `{{.Question}} Please choose the answer from the following options: {{.ChoicesPy}}. ` +
		`First think about the audio in <think> </think>, then list the semantic elements you hear (sound-generating agents, ` +
		`physical sound sources, auditory attributes, contextual setting) in <semantic_elements> </semantic_elements>, ` +
		`and give the final answer in <answer> </answer>.`,
	"soundmind": `{{.Question}}` + "\n\n" + `Output the thinking process in <think> </think> and the final answer, either 'entailed' or 'not-entailed', in <answer> </answer>.`,
}

// Presets lists the preset names.
func Presets() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Template renders a task prompt from a Question.
type Template struct {
	name string
	t    *template.Template
}

// NewTemplate returns a preset by name, or, when text contains "{{", a
// user-defined Go text/template over Question (fields .Question, .Choices,
// .Source; methods .ChoicesPy, .ChoicesLettered, .AudioQuestion, .Think).
func NewTemplate(nameOrText string) (*Template, error) {
	text, ok := presets[nameOrText]
	name := nameOrText
	if !ok {
		if !strings.Contains(nameOrText, "{{") {
			return nil, fmt.Errorf("unknown task template %q: use a preset (%s) or a Go text/template with {{.Question}}",
				nameOrText, strings.Join(Presets(), ", "))
		}
		text, name = nameOrText, "custom"
	}
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("task template: %w", err)
	}
	// Render once against a sample so typos in field names fail at load
	// time, not in the middle of a run.
	if _, err := (&Template{name, t}).Render(Question{Question: "q", Choices: []string{"a", "b"}}); err != nil {
		return nil, err
	}
	return &Template{name: name, t: t}, nil
}

// Name is the preset name, or "custom".
func (t *Template) Name() string { return t.name }

// Render applies the template.
func (t *Template) Render(q Question) (string, error) {
	var b bytes.Buffer
	if err := t.t.Execute(&b, q); err != nil {
		return "", fmt.Errorf("task template %s: %w", t.name, err)
	}
	return b.String(), nil
}

// PyList renders strings as Python's repr of a list of str.
func PyList(items []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(PyRepr(s))
	}
	b.WriteByte(']')
	return b.String()
}

// PyRepr renders a string as Python 3's repr: single quotes unless the
// string holds a single quote and no double quote; backslash, the quote,
// \t \n \r escaped; characters Python does not print (categories C* and
// Z* other than the ASCII space, and unassigned code points) as \xNN,
// \uNNNN or \UNNNNNNNN. Go's Unicode tables (15.0) decide what is
// assigned, so characters newer than them are escaped.
func PyRepr(s string) string {
	quote := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteRune(quote)
	for _, r := range s {
		switch {
		case r == '\\' || r == quote:
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == ' ' || unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteRune(quote)
	return b.String()
}
