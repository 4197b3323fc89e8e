package sources

import (
	"fmt"
	"strings"
)

// SplitChoices splits a question that ends with an embedded choice list,
//
//	What is the sound?
//	Choices:
//	A. guitar
//	B. piano
//
// into the stem ("What is the sound?") and the choices ("guitar", "piano").
// The header is "Choices" or "Options", in any case, with or without a colon,
// on a line of its own; the last such line starts the list. Every non-blank
// line after it must be a labelled choice — "A. x", "(A) x", "A) x" or
// "A: x" — with capital letters in order from A, and there must be at least
// two. Stem and choices are trimmed of surrounding whitespace. When q has no
// such list, SplitChoices returns q trimmed, nil and false.
func SplitChoices(q string) (stem string, choices []string, ok bool) {
	lines := strings.Split(strings.ReplaceAll(q, "\r\n", "\n"), "\n")
	h := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if isChoiceHeader(lines[i]) {
			h = i
			break
		}
	}
	if h < 0 {
		return strings.TrimSpace(q), nil, false
	}
	for _, l := range lines[h+1:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		i, text, labelled := splitLabel(strings.TrimSpace(l))
		if !labelled || i != len(choices) || text == "" {
			return strings.TrimSpace(q), nil, false
		}
		choices = append(choices, text)
	}
	if len(choices) < 2 {
		return strings.TrimSpace(q), nil, false
	}
	return strings.TrimSpace(strings.Join(lines[:h], "\n")), choices, true
}

func isChoiceHeader(line string) bool {
	l := strings.ToLower(strings.TrimSpace(line))
	l = strings.TrimSpace(strings.TrimSuffix(l, ":"))
	return l == "choices" || l == "options"
}

// splitLabel recognises a choice label at the start of s — "(B)", "B.", "B)"
// or "B:", followed by whitespace or nothing — or a bare capital letter "B".
// It returns the letter's 0-based index and the trimmed text after the label.
func splitLabel(s string) (idx int, text string, ok bool) {
	isLetter := func(c byte) bool { return c >= 'A' && c <= 'Z' }
	var rest string
	switch {
	case len(s) == 1 && isLetter(s[0]):
		return int(s[0] - 'A'), "", true
	case len(s) >= 3 && s[0] == '(' && isLetter(s[1]) && s[2] == ')':
		idx, rest = int(s[1]-'A'), s[3:]
	case len(s) >= 2 && isLetter(s[0]) && strings.IndexByte(".):", s[1]) >= 0:
		idx, rest = int(s[0]-'A'), s[2:]
	default:
		return 0, "", false
	}
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return 0, "", false
	}
	return idx, strings.TrimSpace(rest), true
}

// ChoiceLetter is the label of the i-th choice: 0 → "A".
func ChoiceLetter(i int) string {
	if i < 0 || i >= 26 {
		return fmt.Sprintf("#%d", i)
	}
	return string(rune('A' + i))
}

// ResolveAnswer finds the index of answer among choices. The answer may be
// the exact text of a choice (after trimming both; the first equal choice
// wins, and exact text is tried before anything else), or a letter: "B",
// "(B)", "B.", "B)", "B:", optionally followed by the choice's text
// ("B. piano"), which must then agree with choice B (case aside).
//
// A letter beyond the choices, a text that matches no choice, or a letter
// whose text contradicts the given text is answer-not-in-choices; an empty
// answer is malformed.
func ResolveAnswer(answer string, choices []string) (int, error) {
	a := strings.TrimSpace(answer)
	if a == "" {
		return -1, Malformed("empty answer")
	}
	if i, err := exactChoice(a, choices); err == nil {
		return i, nil
	}
	if i, text, ok := splitLabel(a); ok {
		if i >= len(choices) {
			return -1, &RecordError{Reason: ReasonAnswerNotInChoices,
				Detail: fmt.Sprintf("answer %q names choice %s but there are only %d choices", a, ChoiceLetter(i), len(choices))}
		}
		c := strings.TrimSpace(choices[i])
		if text == "" || strings.EqualFold(text, c) {
			return i, nil
		}
		return -1, &RecordError{Reason: ReasonAnswerNotInChoices,
			Detail: fmt.Sprintf("answer %q names choice %s, whose text is %q", a, ChoiceLetter(i), c)}
	}
	return -1, &RecordError{Reason: ReasonAnswerNotInChoices,
		Detail: fmt.Sprintf("answer %q is neither a choice letter nor one of the choices %q", a, choices)}
}
