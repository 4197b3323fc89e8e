package grpo

import (
	"math"
	"testing"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.12g, want %.12g", what, got, want)
	}
}

// The worked example: one group of two completions with rewards 1 and 0.
//
// mean 0.5, unbiased std sqrt(0.5) = 0.7071068, so A = +-0.5 / (0.7071068 + 1e-4)
// = +-0.7070068. Completion 0 has two tokens, completion 1 three with the
// last masked. eps_low 0.2, eps_high 0.28, beta 0.04.
//
// Token (0,0): coef1 = e^(-1 - -1.1) = e^0.1 = 1.1051709 inside [0.8, 1.28], so
// loss = -1.1051709 * 0.7070068 = -0.7813634; k3 with d = ref - logp = -0.2:
// e^-0.2 + 0.2 - 1 = 0.0187308, plus 0.04 * 0.0187308 -> -0.7806141.
// Token (1,1): coef1 = e^-0.5 = 0.6065307 < 0.8, A < 0: min(0.6065*A, 0.8*A) =
// 0.8*A (clipped) -> loss 0.5656054 + 0.04 * 0.0048374 = 0.5657989.
var example = struct {
	rewards        []float64
	lp, old, ref   [][]float64
	mask           [][]float64
	tok            [][]float64 // per-token losses
	kl             [][]float64
	adv            float64
	eLo, eHi, beta float64
}{
	rewards: []float64{1, 0},
	lp:      [][]float64{{-1, -2}, {-0.5, -3, -1}},
	old:     [][]float64{{-1.1, -2}, {-0.5, -2.5, -1}},
	ref:     [][]float64{{-1.2, -1.8}, {-0.4, -3.1, -0.9}},
	mask:    [][]float64{{1, 1}, {1, 1, 0}},
	tok:     [][]float64{{-0.7806141189537931, -0.7061506850002767}, {0.7072136320497093, 0.5657989329827852, 0.7072136320497093}},
	kl:      [][]float64{{0.018730753077981888, 0.0214027581601699}, {0.005170918075647624, 0.004837418035959606, 0.005170918075647624}},
	adv:     0.7070067953266834,
	eLo:     0.2, eHi: 0.28, beta: 0.04,
}

func exampleConfig(lt LossType) *Config {
	return &Config{NumGenerations: 2, RewardWeights: []float64{1}, MaxCompletionLength: 8, EpsilonLow: example.eLo,
		EpsilonHigh: example.eHi, Beta: example.beta, ScaleRewards: ScaleGroup, LossType: lt, NumProcesses: 2, GlobalActiveTokens: 10}
}

func exampleBatch(t *testing.T) *Batch {
	adv, err := Advantages(example.rewards, 2, ScaleGroup)
	if err != nil {
		t.Fatal(err)
	}
	return &Batch{Advantages: adv, LogP: example.lp, OldLogP: example.old, RefLogP: example.ref, Mask: example.mask}
}

func TestAdvantages(t *testing.T) {
	adv, _ := Advantages(example.rewards, 2, ScaleGroup)
	near(t, "A[0]", adv[0], example.adv, 1e-12)
	near(t, "A[1]", adv[1], -example.adv, 1e-12)
	// Two groups, rewards {3,1,2} {5,5,5}: group 1 mean 2, std 1 -> A = 1/(1+1e-4)...;
	// group 2 all equal -> A = 0.
	r := []float64{3, 1, 2, 5, 5, 5}
	adv, _ = Advantages(r, 3, ScaleGroup)
	for i, w := range []float64{1 / 1.0001, -1 / 1.0001, 0, 0, 0, 0} {
		near(t, "group-scaled A", adv[i], w, 1e-12)
	}
	// Batch scaling: deviations from group means, divided by the std of all
	// six rewards: mean 3.5, squares 0.25+6.25+2.25+3*2.25 = 15.5, unbiased
	// variance 3.1, std 1.7606817.
	adv, _ = Advantages(r, 3, ScaleBatch)
	for i, w := range []float64{1, -1, 0, 0, 0, 0} {
		near(t, "batch-scaled A", adv[i], w/(math.Sqrt(3.1)+1e-4), 1e-12)
	}
	adv, _ = Advantages(r, 3, ScaleNone)
	for i, w := range []float64{1, -1, 0, 0, 0, 0} {
		near(t, "unscaled A (Dr. GRPO)", adv[i], w, 1e-12)
	}
	if std := GroupStd(r, 3); std[0] != 1 || std[1] != 0 {
		t.Errorf("group std %v, want [1 0]", std)
	}
	if _, err := Advantages([]float64{1, 2, 3}, 2, ScaleGroup); err == nil {
		t.Error("3 rewards accepted in groups of 2")
	}
	combined, _ := CombineRewards([][]float64{{1, 0.5}, {0, math.NaN()}}, []float64{1, 0.2})
	near(t, "combined[0]", combined[0], 1.1, 1e-12)
	near(t, "combined[1] (NaN counts as 0)", combined[1], 0, 1e-12)
}

func TestLossAggregations(t *testing.T) {
	e := example
	sum := func(i int) (s float64) {
		for j, l := range e.tok[i] {
			s += l * e.mask[i][j]
		}
		return s
	}
	all := sum(0) + sum(1)
	for lt, want := range map[LossType]float64{
		LossGRPO:   (sum(0)/2 + sum(1)/2) / 2, // per-sequence token means, averaged
		LossBNPO:   all / 4,                   // 4 active tokens
		LossDrGRPO: all / (2 * 8),             // 2 sequences x max_completion_length 8
		LossDAPO:   all / (10.0 / 2),          // 10 active tokens over 2 processes
	} {
		res, err := Loss(exampleConfig(lt), exampleBatch(t))
		if err != nil {
			t.Fatal(err)
		}
		near(t, string(lt)+" loss", res.Loss, want, 1e-12)
	}
	// The values the worked example derives in its comment.
	near(t, "token (0,0) loss", e.tok[0][0], -0.7806141, 1e-7)
	near(t, "token (1,1) loss", e.tok[1][1], 0.5657989, 1e-7)
	res, _ := Loss(exampleConfig(LossGRPO), exampleBatch(t))
	near(t, "KL", res.KL, (e.kl[0][0]+e.kl[0][1]+e.kl[1][0]+e.kl[1][1])/4, 1e-12)
	// Only token (1,1) is clipped (low side, negative advantage).
	near(t, "clip low", res.ClipLow, 0.25, 0)
	near(t, "clip high", res.ClipHigh, 0, 0)
	near(t, "clip region", res.ClipRegion, 0.25, 0)
	if res.ActiveTokens != 4 {
		t.Errorf("active tokens %d", res.ActiveTokens)
	}
}

// d loss / d logp by hand for the grpo aggregation (weight 1/(2 tokens x 2
// sequences) = 0.25 for every active token):
//
//	(0,0) unclipped: -coef1*A + beta(1 - e^d) = -0.7813634 + 0.04*(1 - e^-0.2) = -0.7741126 -> -0.1935281
//	(1,1) clipped: policy part 0; 0.04 * (1 - e^-0.1) = 0.0038065 -> 0.0009516
//	(1,2) masked: 0
func TestLossGradientByHand(t *testing.T) {
	res, _ := Loss(exampleConfig(LossGRPO), exampleBatch(t))
	near(t, "grad (0,0)", res.GradLogP[0][0], 0.25*(-math.Exp(0.1)*example.adv+0.04*(1-math.Exp(-0.2))), 1e-12)
	near(t, "grad (0,0) value", res.GradLogP[0][0], -0.1935281, 1e-7)
	near(t, "grad (1,1)", res.GradLogP[1][1], 0.25*0.04*(1-math.Exp(-0.1)), 1e-12)
	near(t, "grad (1,2)", res.GradLogP[1][2], 0, 0)
}

// Every option's gradient against central finite differences of Loss.
func TestLossGradientFiniteDifferences(t *testing.T) {
	delta := 1.05
	for _, lt := range []LossType{LossGRPO, LossBNPO, LossDrGRPO, LossDAPO} {
		for _, variant := range []string{"plain", "no-old", "no-kl", "delta"} {
			c := exampleConfig(lt)
			b := exampleBatch(t)
			switch variant {
			case "no-old":
				b.OldLogP = nil
			case "no-kl":
				c.Beta, b.RefLogP = 0, nil
			case "delta":
				c.Delta = &delta
			}
			res, err := Loss(c, b)
			if err != nil {
				t.Fatal(err)
			}
			for i := range b.LogP {
				for j := range b.LogP[i] {
					lp := append([][]float64(nil), b.LogP...)
					row := append([]float64(nil), lp[i]...)
					lp[i] = row
					h := 1e-6
					// With no old log-probs the ratio is detached: only the
					// explicit dependence on logp is differentiated, so the
					// finite difference must move old together with logp.
					shift := func(s float64) float64 {
						row[j] = b.LogP[i][j] + s
						bb := *b
						bb.LogP = lp
						if b.OldLogP == nil {
							bb.OldLogP = cloneRows(b.LogP)
						}
						r, _ := Loss(c, &bb)
						return r.Loss
					}
					fd := (shift(h) - shift(-h)) / (2 * h)
					if math.Abs(fd-res.GradLogP[i][j]) > 1e-7 {
						t.Errorf("%s/%s: grad[%d][%d] = %.10g, finite difference %.10g", lt, variant, i, j, res.GradLogP[i][j], fd)
					}
				}
			}
		}
	}
}

func cloneRows(x [][]float64) [][]float64 {
	out := make([][]float64, len(x))
	for i := range x {
		out[i] = append([]float64(nil), x[i]...)
	}
	return out
}

// Two-sided clipping caps the ratio of the unclipped term: a token with a
// large ratio and a negative advantage has its loss capped at -delta*A.
func TestDeltaCapsRatio(t *testing.T) {
	d := 1.5
	c := &Config{NumGenerations: 1, RewardWeights: []float64{1}, EpsilonLow: 0.2, EpsilonHigh: 0.2, ScaleRewards: ScaleNone,
		LossType: LossBNPO, Delta: &d}
	b := &Batch{Advantages: []float64{-1}, LogP: [][]float64{{0}}, OldLogP: [][]float64{{-1}}, Mask: [][]float64{{1}}}
	res, _ := Loss(c, b)
	// coef1 = e = 2.718 capped to 1.5; coef2 = 1.2; -min(-1.5, -1.2) = 1.5.
	near(t, "loss with delta", res.Loss, 1.5, 1e-12)
	near(t, "grad with delta (capped: no gradient)", res.GradLogP[0][0], 0, 0)
	c.Delta = nil
	res, _ = Loss(c, b)
	near(t, "loss without delta", res.Loss, math.E, 1e-12)
	near(t, "grad without delta", res.GradLogP[0][0], math.E, 1e-12)
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{NumGenerations: 0, ScaleRewards: ScaleGroup, LossType: LossGRPO},
		{NumGenerations: 2, ScaleRewards: "std", LossType: LossGRPO},
		{NumGenerations: 2, ScaleRewards: ScaleGroup, LossType: "ppo"},
		{NumGenerations: 2, ScaleRewards: ScaleGroup, LossType: LossDrGRPO},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c := exampleConfig(LossGRPO)
	b := exampleBatch(t)
	b.RefLogP = nil
	if _, err := Loss(c, b); err == nil {
		t.Error("beta without reference log-probs accepted")
	}
}
