package train

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"earl/collective"
)

// Metrics is one line of RUN/metrics.jsonl: a step's numbers over the
// whole job (means over every rank's completions), with rank 0's time
// split.
type Metrics struct {
	Step        int                `json:"step"`
	Epoch       int                `json:"epoch"`
	Mode        string             `json:"mode"`
	LR          float64            `json:"lr"`
	Loss        float64            `json:"loss"`
	GradNorm    float64            `json:"grad_norm"`
	Reward      float64            `json:"reward"`
	RewardStd   float64            `json:"reward_std"`
	Rewards     map[string]float64 `json:"rewards,omitempty"`
	RewardsStd  map[string]float64 `json:"rewards_std,omitempty"`
	Accuracy    float64            `json:"accuracy"`
	KL          float64            `json:"kl"`
	ClipFrac    float64            `json:"clip_ratio"`
	Entropy     float64            `json:"entropy"`
	CompLenMean float64            `json:"completion_length"`
	CompLenMax  int                `json:"completion_length_max"`
	Truncated   float64            `json:"truncated_fraction"`
	Dropped     int                `json:"dropped_groups,omitempty"`
	Completions int                `json:"completions"`
	Tokens      int                `json:"tokens"`
	TokensPerS  float64            `json:"tokens_per_s"`
	Seconds     float64            `json:"step_s"`
	Split       map[string]float64 `json:"time_s"`
	Time        string             `json:"time"`
}

// reduce combines every rank's StepStats into the job's Metrics (a
// collective: every rank calls it).
func reduce(comm collective.Comm, st *StepStats, mode string, epoch int) (*Metrics, error) {
	nf := len(st.RewardSum)
	v := []float64{float64(st.Completions), st.TotalSum, st.TotalSqSum, float64(st.Correct), st.KLTok, st.ClipTok, st.EntropyTok,
		float64(st.ActiveTokens), float64(st.CompTokens), float64(st.Truncated), float64(st.Dropped), st.Loss}
	v = append(v, st.RewardSum...)
	v = append(v, st.RewardSqSum...)
	if err := comm.AllReduce64(v, collective.Sum); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mx := []float64{float64(st.MaxCompLen)}
	if err := comm.AllReduce64(mx, collective.Max); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	n, act := v[0], v[7]
	m := &Metrics{Step: st.Step, Epoch: epoch, Mode: mode, LR: st.LR, GradNorm: st.GradNorm, Loss: v[11] / float64(comm.Size()),
		Completions: int(n), CompLenMax: int(mx[0]), Dropped: int(v[10]), Tokens: int(v[8]),
		Seconds: st.Times.Total.Seconds(), Time: time.Now().UTC().Format(time.RFC3339)}
	if n > 0 {
		m.Reward, m.RewardStd = meanStd(v[1], v[2], n)
		m.Accuracy = v[3] / n
		m.CompLenMean = v[8] / n
		m.Truncated = v[9] / n
		m.Rewards, m.RewardsStd = map[string]float64{}, map[string]float64{}
		for f, name := range uniqueNames(st.RewardNames) {
			m.Rewards[name], m.RewardsStd[name] = meanStd(v[12+f], v[12+nf+f], n)
		}
	}
	if act > 0 {
		m.KL, m.ClipFrac, m.Entropy = v[4]/act, v[5]/act, v[6]/act
	}
	if s := st.Times.Total.Seconds(); s > 0 {
		m.TokensPerS = v[8] / s
		if m.Tokens == 0 {
			m.TokensPerS = act / s
		}
	}
	t := st.Times
	m.Split = map[string]float64{"data": t.Data.Seconds(), "rollout": t.Rollout.Seconds(), "reward": t.Reward.Seconds(),
		"reference": t.Reference.Seconds(), "forward_backward": t.ForwardBackward.Seconds(), "optimizer": t.Optimizer.Seconds(),
		"comm": t.Comm.Seconds()}
	return m, nil
}

// meanStd turns a sum and a sum of squares of n values into their mean
// and population std.
func meanStd(sum, sq, n float64) (float64, float64) {
	mean := sum / n
	return mean, math.Sqrt(math.Max(0, sq/n-mean*mean))
}

// uniqueNames suffixes repeated reward names (two format rewards become
// format and format_2).
func uniqueNames(names []string) []string {
	seen := map[string]int{}
	out := make([]string, len(names))
	for i, n := range names {
		seen[n]++
		out[i] = n
		if seen[n] > 1 {
			out[i] = fmt.Sprintf("%s_%d", n, seen[n])
		}
	}
	return out
}

// JSON is the metrics line.
func (m *Metrics) JSON() []byte {
	b, _ := json.Marshal(m)
	return append(b, '\n')
}

// Line is the one-line progress display.
func (m *Metrics) Line(maxSteps int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %d/%d", m.Step, maxSteps)
	if m.Completions > 0 {
		fmt.Fprintf(&b, "  reward %.3f±%.3f  acc %.3f", m.Reward, m.RewardStd, m.Accuracy)
		for _, name := range sortedKeys(m.Rewards) {
			fmt.Fprintf(&b, "  %s %.2f", name, m.Rewards[name])
		}
	}
	fmt.Fprintf(&b, "  loss %.4f", m.Loss)
	if m.Mode == "grpo" {
		fmt.Fprintf(&b, "  kl %.4f  clip %.3f", m.KL, m.ClipFrac)
	}
	if m.Completions > 0 {
		fmt.Fprintf(&b, "  ent %.2f  len %.1f/%d", m.Entropy, m.CompLenMean, m.CompLenMax)
	}
	fmt.Fprintf(&b, "  |g| %.3g  lr %.2g  %.0f tok/s  %.2fs", m.GradNorm, m.LR, m.TokensPerS, m.Seconds)
	s := m.Split
	fmt.Fprintf(&b, " (gen %.2f ref %.2f fb %.2f opt %.2f comm %.2f)", s["rollout"], s["reference"], s["forward_backward"], s["optimizer"], s["comm"])
	return b.String()
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
