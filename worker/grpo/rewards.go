package grpo

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"earl/worker/score"
)

// Item is what a reward function sees of one completion.
type Item struct {
	Completion string   `json:"completion"`
	Solution   string   `json:"solution"` // the reference answer text (may be wrapped in <answer>)
	Choices    []string `json:"choices"`
	// ThinkTargetWords is the reference reasoning length in words (the
	// length reward's n_gold); 0 when unknown.
	ThinkTargetWords int `json:"think_target_words"`
}

// Reward scores one completion. Values are in [0, 1] for every built-in.
type Reward interface {
	Name() string
	Score(it Item) float64
}

// RewardSpec configures one reward function in a training config.
type RewardSpec struct {
	Name   string  `toml:"name" json:"name"`
	Weight float64 `toml:"weight" json:"weight"`
	// accuracy: rule (choice | exact | mmau) and fallback (none | whole).
	Rule     score.Rule     `toml:"rule" json:"rule,omitempty"`
	Fallback score.Fallback `toml:"fallback" json:"fallback,omitempty"`
	// format: answer | think | audsem.
	Format string `toml:"format" json:"format,omitempty"`
	// length: mode budget | target, alpha, delta.
	Mode  string  `toml:"mode" json:"mode,omitempty"`
	Alpha float64 `toml:"alpha" json:"alpha,omitempty"`
	Delta float64 `toml:"delta" json:"delta,omitempty"`
}

// RewardNames lists the built-in reward functions.
func RewardNames() []string { return []string{"accuracy", "entailment", "format", "length"} }

// NewReward builds a reward function from its spec, with defaults for
// options left empty.
func NewReward(s RewardSpec) (Reward, error) {
	switch s.Name {
	case "accuracy":
		r := accuracy{rule: s.Rule, fb: s.Fallback}
		if r.rule == "" {
			r.rule = score.RuleChoice
		}
		if r.fb == "" {
			r.fb = score.FallbackNone
		}
		switch r.rule {
		case score.RuleChoice, score.RuleExact, score.RuleMMAU:
		default:
			return nil, fmt.Errorf("accuracy reward: rule %q: use choice, exact or mmau", r.rule)
		}
		switch r.fb {
		case score.FallbackNone, score.FallbackWhole:
		default:
			return nil, fmt.Errorf("accuracy reward: fallback %q: use none or whole", r.fb)
		}
		return r, nil
	case "format":
		kind := s.Format
		if kind == "" {
			kind = "answer"
		}
		re, ok := formats[kind]
		if !ok {
			return nil, fmt.Errorf("format reward: format %q: use answer, think or audsem", kind)
		}
		return format{kind: kind, re: re}, nil
	case "length":
		l := length{mode: s.Mode, alpha: s.Alpha, delta: s.Delta}
		if l.mode == "" {
			l.mode = "budget"
		}
		if l.alpha == 0 {
			l.alpha = 0.01
		}
		if l.mode != "budget" && l.mode != "target" {
			return nil, fmt.Errorf("length reward: mode %q: use budget or target", l.mode)
		}
		return l, nil
	case "entailment":
		return entailment{}, nil
	}
	return nil, fmt.Errorf("unknown reward %q: use one of %s", s.Name, strings.Join(RewardNames(), ", "))
}

// accuracy is 1 when the extracted answer is the reference (r1-aqa's
// accuracy reward, with option letters and MMAU's rule as options).
type accuracy struct {
	rule score.Rule
	fb   score.Fallback
}

func (a accuracy) Name() string { return "accuracy" }

func (a accuracy) Score(it Item) float64 {
	pred, ok := score.Extract(it.Completion, a.fb)
	if !ok {
		return 0
	}
	ref, tagged := score.Extract(it.Solution, score.FallbackNone)
	if !tagged {
		ref = score.Strip(it.Solution)
	}
	if score.Correct(a.rule, pred, ref, it.Choices) {
		return 1
	}
	return 0
}

// The format patterns, matched against the whole stripped completion
// (Python's re.fullmatch with DOTALL).
var formats = map[string]*regexp.Regexp{
	"answer": regexp.MustCompile(`(?s)^<answer>.*?</answer>$`),
	"think":  regexp.MustCompile(`(?s)^<think>.*?</think>\s*<answer>.*?</answer>$`),
	"audsem": regexp.MustCompile(`(?s)^<think>.*?</think>\s*<semantic_elements>.*?</semantic_elements>\s*<answer>.*?</answer>$`),
}

// format is 1 when the completion has exactly the expected structure:
// answer-only, think then answer, or AudSem's strict think →
// semantic_elements → answer; every tag exactly once.
type format struct {
	kind string
	re   *regexp.Regexp
}

func (f format) Name() string { return "format" }

func (f format) Score(it Item) float64 {
	c := score.Strip(it.Completion)
	if !f.re.MatchString(c) {
		return 0
	}
	for _, tag := range []string{"think", "semantic_elements", "answer"} {
		if strings.Count(c, "<"+tag+">") > 1 || strings.Count(c, "</"+tag+">") > 1 {
			return 0
		}
	}
	return 1
}

// length is AudSemThinker's thinking-budget reward over the words of the
// <think> section: mode budget is clip(alpha (n_gold - n_y) + delta, 0, 1),
// which pays for staying under the reference length; mode target (the
// encourage-target variant) is clip(1 - alpha |n_gold - n_y| + delta, 0,
// 1), which peaks at the reference length. Without a <think> section, or
// without a reference length, the reward is 0.
type length struct {
	mode         string
	alpha, delta float64
}

func (l length) Name() string { return "length" }

var thinkTag = regexp.MustCompile(`(?s)<think>(.*?)</think>`)

func (l length) Score(it Item) float64 {
	m := thinkTag.FindStringSubmatch(it.Completion)
	if m == nil || it.ThinkTargetWords <= 0 {
		return 0
	}
	ny, ng := float64(len(score.Fields(m[1]))), float64(it.ThinkTargetWords)
	var v float64
	if l.mode == "target" {
		v = 1 - l.alpha*math.Abs(ng-ny) + l.delta
	} else {
		v = l.alpha*(ng-ny) + l.delta
	}
	return math.Max(0, math.Min(1, v))
}

// entailment is SoundMind's label reward: 1 when the completion's verdict
// ("entailed" / "not-entailed") is the solution's.
type entailment struct{}

func (entailment) Name() string { return "entailment" }

func (entailment) Score(it Item) float64 {
	want := score.Entailment(it.Solution)
	if want == "" {
		want = score.Entailment("<answer>" + it.Solution + "</answer>")
	}
	if got := score.Entailment(it.Completion); got != "" && got == want {
		return 1
	}
	return 0
}

// Rewards is a weighted set of reward functions.
type Rewards struct {
	Funcs   []Reward
	Weights []float64
}

// NewRewards builds the configured reward functions.
func NewRewards(specs []RewardSpec) (*Rewards, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("no reward functions configured")
	}
	r := &Rewards{}
	seen := map[string]bool{}
	for _, s := range specs {
		f, err := NewReward(s)
		if err != nil {
			return nil, err
		}
		key := f.Name() + "/" + s.Format + s.Mode + string(s.Rule)
		if seen[key] {
			return nil, fmt.Errorf("reward %s configured twice", f.Name())
		}
		seen[key] = true
		w := s.Weight
		if w == 0 {
			w = 1
		}
		r.Funcs, r.Weights = append(r.Funcs, f), append(r.Weights, w)
	}
	return r, nil
}

// Score returns each function's value for each item: out[i][f].
func (r *Rewards) Score(items []Item) [][]float64 {
	out := make([][]float64, len(items))
	for i, it := range items {
		out[i] = make([]float64, len(r.Funcs))
		for f, fn := range r.Funcs {
			out[i][f] = fn.Score(it)
		}
	}
	return out
}

// Names returns the functions' names in order.
func (r *Rewards) Names() []string {
	var out []string
	for _, f := range r.Funcs {
		out = append(out, f.Name())
	}
	return out
}

// AllRewards scores items with every built-in function at its defaults
// and every format / accuracy variant, keyed by a descriptive name (for
// `tools rewards`).
func AllRewards(items []Item) (names []string, values [][]float64) {
	specs := []RewardSpec{
		{Name: "accuracy"}, {Name: "accuracy", Rule: score.RuleMMAU}, {Name: "accuracy", Rule: score.RuleExact},
		{Name: "accuracy", Fallback: score.FallbackWhole},
		{Name: "format", Format: "answer"}, {Name: "format", Format: "think"}, {Name: "format", Format: "audsem"},
		{Name: "length"}, {Name: "length", Mode: "target"}, {Name: "entailment"},
	}
	labels := []string{"accuracy", "accuracy_mmau", "accuracy_exact", "accuracy_whole", "format_answer", "format_think",
		"format_audsem", "length_budget", "length_target", "entailment"}
	values = make([][]float64, len(items))
	for i := range values {
		values[i] = make([]float64, len(specs))
	}
	for f, s := range specs {
		fn, _ := NewReward(s)
		for i, it := range items {
			values[i][f] = fn.Score(it)
		}
	}
	return labels, values
}
