package grpo

import (
	"strings"
	"testing"

	"earl/worker/score"
)

var mmauChoices = []string{"Man", "Woman", "Child", "Robot"}

// Outputs in the shapes real policies produce, with hand-judged rewards.
func TestAccuracyReward(t *testing.T) {
	def, _ := NewReward(RewardSpec{Name: "accuracy"})
	mmau, _ := NewReward(RewardSpec{Name: "accuracy", Rule: score.RuleMMAU})
	whole, _ := NewReward(RewardSpec{Name: "accuracy", Fallback: score.FallbackWhole})
	for _, c := range []struct {
		completion             string
		choice, tokens, wholeW float64
	}{
		{"<answer>Man</answer>", 1, 1, 1},
		{"<think>The voice is deep and resonant, typical of an adult male.</think>\n<answer>Man</answer>", 1, 1, 1},
		{"<answer>A</answer>", 1, 0, 1},
		{"<answer>(A)</answer>", 1, 0, 1},
		{"<answer>A. Man</answer>", 1, 1, 1},
		{"<answer> man </answer>", 0, 1, 0},
		{"<answer>The speaker is a man.</answer>", 0, 1, 0},
		{"<answer>Man or Woman</answer>", 0, 0, 0},
		{"<answer>Woman</answer>", 0, 0, 0},
		{"Man", 0, 0, 1},
		{"<answer></answer>", 0, 0, 0},
		{"<answer>Man</answer><answer>Woman</answer>", 1, 1, 1},
	} {
		it := Item{Completion: c.completion, Solution: "<answer>Man</answer>", Choices: mmauChoices}
		if got := def.Score(it); got != c.choice {
			t.Errorf("accuracy(choice) %q = %v, want %v", c.completion, got, c.choice)
		}
		if got := mmau.Score(it); got != c.tokens {
			t.Errorf("accuracy(mmau) %q = %v, want %v", c.completion, got, c.tokens)
		}
		if got := whole.Score(it); got != c.wholeW {
			t.Errorf("accuracy(whole) %q = %v, want %v", c.completion, got, c.wholeW)
		}
	}
	// The solution may be plain text, as shards store it.
	if def.Score(Item{Completion: "<answer>Robot</answer>", Solution: "Robot", Choices: mmauChoices}) != 1 {
		t.Error("plain-text solution")
	}
}

func TestFormatReward(t *testing.T) {
	for _, c := range []struct {
		completion            string
		answer, think, audsem float64
	}{
		{"<answer>Man</answer>", 1, 0, 0},
		{"  <answer>Man</answer>\n", 1, 0, 0},
		{"<think>deep voice</think>\n<answer>Man</answer>", 0, 1, 0},
		{"<think>deep voice</think><semantic_elements>adult male speech, low pitch</semantic_elements>\n<answer>Man</answer>", 0, 0, 1},
		{"<semantic_elements>x</semantic_elements><think>y</think><answer>Man</answer>", 0, 0, 0},
		{"<think>a</think><answer>b</answer> trailing text", 0, 0, 0},
		{"<think>a</think><think>b</think><answer>c</answer>", 0, 0, 0},
		{"Man", 0, 0, 0},
		{"<think>multi\nline\nreasoning</think>\n\n<answer>multi\nline</answer>", 0, 1, 0},
	} {
		for kind, want := range map[string]float64{"answer": c.answer, "think": c.think, "audsem": c.audsem} {
			r, _ := NewReward(RewardSpec{Name: "format", Format: kind})
			if got := r.Score(Item{Completion: c.completion}); got != want {
				t.Errorf("format(%s) %q = %v, want %v", kind, c.completion, got, want)
			}
		}
	}
}

// The length reward by hand: n_gold 20 words, alpha 0.05, delta 0.2.
// budget: 10 words -> 0.05*(20-10)+0.2 = 0.7; 30 words -> -0.3 -> 0;
// 0 words -> 1.2 -> 1. target: 10 -> 1-0.5+0.2 = 0.7; 20 -> 1.2 -> 1;
// 40 -> 1-1+0.2 = 0.2.
func TestLengthReward(t *testing.T) {
	budget, _ := NewReward(RewardSpec{Name: "length", Alpha: 0.05, Delta: 0.2})
	target, _ := NewReward(RewardSpec{Name: "length", Mode: "target", Alpha: 0.05, Delta: 0.2})
	think := func(n int) string {
		return "<think>" + strings.TrimSpace(strings.Repeat("word ", n)) + "</think><answer>x</answer>"
	}
	for _, c := range []struct {
		words        int
		budget, targ float64
	}{{10, 0.7, 0.7}, {30, 0, 0.7}, {0, 1, 0.2}, {20, 0.2, 1}, {40, 0, 0.2}} {
		it := Item{Completion: think(c.words), ThinkTargetWords: 20}
		if got := budget.Score(it); !approx(got, c.budget) {
			t.Errorf("length(budget) %d words = %v, want %v", c.words, got, c.budget)
		}
		if got := target.Score(it); !approx(got, c.targ) {
			t.Errorf("length(target) %d words = %v, want %v", c.words, got, c.targ)
		}
	}
	// Words are Python str.split() words: any whitespace run separates.
	it := Item{Completion: "<think>a\tb\u00a0c\n\nd</think>", ThinkTargetWords: 20}
	if got := budget.Score(it); !approx(got, 0.05*16+0.2) {
		t.Errorf("4 words with mixed whitespace: %v", got)
	}
	if budget.Score(Item{Completion: "<answer>x</answer>", ThinkTargetWords: 20}) != 0 {
		t.Error("no <think> should score 0")
	}
}

func approx(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

func TestEntailmentReward(t *testing.T) {
	r, _ := NewReward(RewardSpec{Name: "entailment"})
	for _, c := range []struct {
		completion, solution string
		want                 float64
	}{
		{"<think>The premises support it.</think><answer>entailed</answer>", "entailed", 1},
		{"<answer>not-entailed</answer>", "not-entailed", 1},
		{"<answer>not entailed</answer>", "not-entailed", 1},
		{"<answer>entailed</answer>", "not-entailed", 0},
		{"Reasoning... Answer: not entailed.", "not-entailed", 1},
		{"I am unsure.", "entailed", 0},
	} {
		if got := r.Score(Item{Completion: c.completion, Solution: c.solution}); got != c.want {
			t.Errorf("entailment %q vs %q = %v, want %v", c.completion, c.solution, got, c.want)
		}
	}
}

func TestRewardsConfig(t *testing.T) {
	rs, err := NewRewards([]RewardSpec{{Name: "accuracy", Weight: 1}, {Name: "format", Format: "think", Weight: 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	v := rs.Score([]Item{{Completion: "<think>t</think><answer>Man</answer>", Solution: "Man", Choices: mmauChoices}})
	total, _ := CombineRewards(v, rs.Weights)
	if total[0] != 1.5 {
		t.Errorf("combined reward %v, want 1.5", total[0])
	}
	for _, bad := range [][]RewardSpec{{}, {{Name: "bleu"}}, {{Name: "format", Format: "xml"}}, {{Name: "accuracy"}, {Name: "accuracy"}}} {
		if _, err := NewRewards(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
