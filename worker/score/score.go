// Package score judges model answers the way the benchmarks and the
// reward functions of the seeds do: it extracts the answer from a
// completion (<answer>…</answer>), matches it against the choices (exact
// text, option letters, MMAU's token-set rule, MMSU's letters) and reads
// SoundMind's entailment labels. Text rules follow Python's semantics —
// str.strip / str.split whitespace, re's Unicode \w and \b — because the
// reference scripts are Python and Go's regexp classes are ASCII-only.
package score

import (
	"regexp"
	"strings"
	"unicode"

	"earl/shards/sources"
)

// IsSpace is Python's str.isspace for one character: Unicode White_Space
// plus the information separators U+001C..U+001F that Python also counts.
func IsSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// Strip is Python's str.strip() with no argument.
func Strip(s string) string { return strings.TrimFunc(s, IsSpace) }

// Fields is Python's str.split() with no argument.
func Fields(s string) []string { return strings.FieldsFunc(s, IsSpace) }

// isWord is Python re's \w on str patterns: str.isalnum() or underscore.
// isalnum is isalpha (categories Lu, Ll, Lt, Lm, Lo) or numeric (Nd, Nl,
// No); combining marks are not word characters in Python.
func isWord(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r)
}

// Lower is Python's str.lower(): Go's per-rune mapping plus the two
// SpecialCasing rules Python applies — U+0130 becomes "i" + U+0307, and a
// capital sigma at the end of a word becomes final sigma.
func Lower(text string) string {
	rs := []rune(text)
	var b strings.Builder
	b.Grow(len(text))
	for i, r := range rs {
		switch {
		case r == 0x130:
			b.WriteString("i\u0307")
		case r == 0x3a3 && finalSigma(rs, i):
			b.WriteRune(0x3c2)
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma is Unicode's Final_Sigma condition: a cased letter before
// (skipping case-ignorable characters) and none after.
func finalSigma(rs []rune, i int) bool {
	ignorable := func(r rune) bool {
		return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) || r == '\'' || r == '.' || r == ':'
	}
	cased := func(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }
	j := i - 1
	for j >= 0 && ignorable(rs[j]) {
		j--
	}
	if j < 0 || !cased(rs[j]) {
		return false
	}
	k := i + 1
	for k < len(rs) && ignorable(rs[k]) {
		k++
	}
	return k == len(rs) || !cased(rs[k])
}

// WordTokens is Python's set(re.findall(r'\b\w+\b', text.lower())): the
// distinct maximal runs of word characters of the lower-cased text.
func WordTokens(text string) map[string]bool {
	out := map[string]bool{}
	lower := Lower(text)
	start := -1
	for i, r := range lower {
		switch {
		case isWord(r) && start < 0:
			start = i
		case !isWord(r) && start >= 0:
			out[lower[start:i]] = true
			start = -1
		}
	}
	if start >= 0 {
		out[lower[start:]] = true
	}
	return out
}

var answerTag = regexp.MustCompile(`(?s)<answer>(.*?)</answer>`)

// Fallback says what Extract returns when a completion has no
// <answer>…</answer>.
type Fallback string

// The fallbacks.
const (
	FallbackNone  Fallback = "none"  // no answer: the completion scores 0
	FallbackWhole Fallback = "whole" // the whole completion, stripped (r1-aqa's behaviour)
)

// Extract returns the content of the first <answer>…</answer> (across
// lines), stripped; without one, the fallback decides. ok is false when no
// answer was found and the fallback is none.
func Extract(completion string, fb Fallback) (answer string, ok bool) {
	if m := answerTag.FindStringSubmatch(completion); m != nil {
		return Strip(m[1]), true
	}
	if fb == FallbackWhole {
		return Strip(completion), true
	}
	return "", false
}

// Rule is how an extracted answer is compared with the reference.
type Rule string

// The rules.
const (
	// RuleChoice: the answer is the reference choice's text, or a letter
	// form naming it ("B", "(B)", "B.", "B) …", "B. Piano"); with no
	// choices, exact text.
	RuleChoice Rule = "choice"
	// RuleExact: the stripped texts are equal.
	RuleExact Rule = "exact"
	// RuleMMAU: MMAU's official string_match — every token of the answer
	// and no token of another choice (tokens shared with the answer
	// excepted) in the prediction.
	RuleMMAU Rule = "mmau"
	// RuleMMSU: the prediction names the reference's letter (or its text).
	RuleMMSU Rule = "mmsu"
)

// Valid reports whether r is one of the rules Correct knows.
func (r Rule) Valid() bool {
	switch r {
	case RuleChoice, RuleExact, RuleMMAU, RuleMMSU:
		return true
	}
	return false
}

// Correct judges prediction against the reference answer among choices.
func Correct(rule Rule, prediction, reference string, choices []string) bool {
	p, ref := Strip(prediction), Strip(reference)
	switch rule {
	case RuleExact:
		return p == ref
	case RuleMMAU:
		return MMAUMatch(ref, p, choices)
	case RuleMMSU:
		return MMSULetter(p, choices) == indexOf(ref, choices) && indexOf(ref, choices) >= 0
	default: // choice
		if len(choices) == 0 {
			return p == ref
		}
		i, err := sources.ResolveAnswer(p, choices)
		return err == nil && Strip(choices[i]) == ref
	}
}

func indexOf(s string, choices []string) int {
	for i, c := range choices {
		if Strip(c) == s {
			return i
		}
	}
	return -1
}

// MMAUMatch is MMAU's evaluation rule: with tokens as in WordTokens, the
// prediction must contain every answer token and none of the tokens that
// other choices have beyond the answer's; an empty prediction is wrong.
func MMAUMatch(answer, prediction string, choices []string) bool {
	pt, at := WordTokens(prediction), WordTokens(answer)
	if len(pt) == 0 {
		return false
	}
	wrong := map[string]bool{}
	for _, c := range choices {
		ct := WordTokens(c)
		if sameSet(ct, at) {
			continue
		}
		for t := range ct {
			if !at[t] {
				wrong[t] = true
			}
		}
	}
	for t := range at {
		if !pt[t] {
			return false
		}
	}
	for t := range pt {
		if wrong[t] {
			return false
		}
	}
	return true
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// MMSULetter returns the choice a prediction names: a letter form at its
// start ("B", "(B)", "B.", "B:", "B) text") or, failing that, a choice's
// exact text; -1 when it names none.
func MMSULetter(prediction string, choices []string) int {
	p := Strip(prediction)
	if i, err := sources.ResolveAnswer(p, choices); err == nil {
		return i
	}
	// "B. something else" still names B for MMSU's letter rule.
	if len(p) >= 1 && p[0] >= 'A' && p[0] < 'A'+byte(len(choices)) &&
		(len(p) == 1 || strings.ContainsRune(".):, ", rune(p[1]))) {
		return int(p[0] - 'A')
	}
	if len(p) >= 3 && p[0] == '(' && p[1] >= 'A' && p[1] < 'A'+byte(len(choices)) && p[2] == ')' {
		return int(p[1] - 'A')
	}
	return -1
}

// Entailment reads SoundMind's verdict from a completion: the extracted
// answer (or, without tags, the text after the last "Answer:") normalised
// to "entailed" or "not-entailed"; "" when neither is found.
func Entailment(completion string) string {
	a, ok := Extract(completion, FallbackNone)
	if !ok {
		if i := strings.LastIndex(strings.ToLower(completion), "answer:"); i >= 0 {
			a = completion[i+len("answer:"):]
		} else {
			a = completion
		}
	}
	norm := strings.Join(WordList(a), " ")
	switch {
	case strings.HasPrefix(norm, "not entailed"), strings.HasPrefix(norm, "not entail"):
		return "not-entailed"
	case strings.HasPrefix(norm, "entailed"), strings.HasPrefix(norm, "entail"):
		return "entailed"
	}
	return ""
}

// WordList is the lower-cased runs of word characters in order (with
// repeats), for phrase matching.
func WordList(text string) []string {
	var out []string
	lower := Lower(text)
	start := -1
	for i, r := range lower {
		switch {
		case isWord(r) && start < 0:
			start = i
		case !isWord(r) && start >= 0:
			out = append(out, lower[start:i])
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, lower[start:])
	}
	return out
}
