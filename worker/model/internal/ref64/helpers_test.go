package ref64

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"earl/worker/ckpt"
	"earl/worker/model"
)

// Test vocabulary: 320 ids (the presets pad `small` to 4096), <|AUDIO|> =
// 300.
const (
	testVocab   = 320
	testAudioID = 300
)

// writeModel builds a random model of a preset with model.NewConfig and
// RandomWeights (test setup only), perturbs it so that no bias is zero and
// no norm weight is one (a forgotten bias or norm weight then changes the
// numbers), lets edit change the config first, and writes it as a Hugging
// Face directory.
func writeModel(t testing.TB, fam model.Family, preset string, seed uint64, edit func(*model.Config)) (string, *model.Config) {
	t.Helper()
	cfg, err := model.NewConfig(fam, preset, testVocab, testAudioID, testAudioID+1, testAudioID+2, []int{testAudioID + 3})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	ts := cfg.RandomWeights(seed, ckpt.F32)
	perturb(ts, seed)
	dir := t.TempDir()
	if err := model.WriteHF(dir, cfg, ts, nil, 0); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// perturb makes biases N(0, 0.05²), norm weights 1 + N(0, 0.2²), norm
// biases N(0, 0.1²) and scales the N(0, 0.02²) matrices by 3, so that
// attention is far from uniform and every parameter matters.
func perturb(ts []ckpt.Tensor, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 99))
	for _, tn := range ts {
		isNorm := strings.Contains(tn.Name, "norm") || strings.Contains(tn.Name, "ln_post")
		for i := range tn.Values {
			switch {
			case isNorm && strings.HasSuffix(tn.Name, ".weight"):
				tn.Values[i] = float32(1 + 0.2*r.NormFloat64())
			case isNorm:
				tn.Values[i] = float32(0.1 * r.NormFloat64())
			case strings.HasSuffix(tn.Name, ".bias"):
				tn.Values[i] = float32(0.05 * r.NormFloat64())
			case strings.HasSuffix(tn.Name, "embed_positions.weight"):
				// keep Whisper's sinusoids
			default:
				tn.Values[i] *= 3
			}
		}
	}
}

func load(t testing.TB, dir string) *Model {
	t.Helper()
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomMel is [nMels][frames] of N(0, 1) values.
func randomMel(nMels, frames int, seed uint64) [][]float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	mel := make([][]float64, nMels)
	for c := range mel {
		mel[c] = make([]float64, frames)
		for t := range mel[c] {
			mel[c][t] = r.NormFloat64()
		}
	}
	return mel
}

func cloneMel(mel [][]float64) [][]float64 {
	out := make([][]float64, len(mel))
	for c := range mel {
		out[c] = append([]float64(nil), mel[c]...)
	}
	return out
}

// qwen2AudioClip is a full padded 3000-frame mel with T valid frames.
func qwen2AudioClip(cfg *model.Config, T int, seed uint64) Audio {
	return Audio{Mel: randomMel(cfg.Audio.NumMelBins, 2*cfg.Audio.MaxSourcePositions, seed), ValidFrames: T}
}

// omniClip is a mel of T valid frames.
func omniClip(cfg *model.Config, T int, seed uint64) Audio {
	return Audio{Mel: randomMel(cfg.Audio.NumMelBins, T, seed), ValidFrames: T}
}

// promptIDs is text ids around nAudio <|AUDIO|> placeholders per audio:
// [pre text] [AUDIO × n0] [mid text] [AUDIO × n1] ... [post text].
func promptIDs(seed uint64, text int, nAudio ...int) []int {
	r := rand.New(rand.NewPCG(seed, 3))
	word := func() int { return r.IntN(testAudioID) }
	var ids []int
	for range text {
		ids = append(ids, word())
	}
	for _, n := range nAudio {
		for range n {
			ids = append(ids, testAudioID)
		}
		for range 3 {
			ids = append(ids, word())
		}
	}
	return ids
}

// pyTokens is the Qwen2-Audio / Omni audio token count for T valid frames,
// with Python's floor division: L = (T−1)//2+1, tokens = (L−2)//2+1.
func pyTokens(T int) int {
	L := floorDiv(T-1, 2) + 1
	return max(floorDiv(L-2, 2)+1, 0)
}

func forward(t testing.TB, m *Model, ids []int, audios ...Audio) ([][]float64, map[string][][]float64) {
	t.Helper()
	logits, acts, err := m.Forward(ids, audios)
	if err != nil {
		t.Fatal(err)
	}
	return logits, acts
}

// sameRows reports whether rows [lo, hi) of a and b are bitwise equal.
func sameRows(a, b [][]float64, lo, hi int) bool {
	for i := lo; i < hi; i++ {
		for j := range a[i] {
			if math.Float64bits(a[i][j]) != math.Float64bits(b[i][j]) {
				return false
			}
		}
	}
	return true
}

// maxAbsDiff is max |a − b| over rows [lo, hi).
func maxAbsDiff(a, b [][]float64, lo, hi int) float64 {
	d := 0.0
	for i := lo; i < hi; i++ {
		for j := range a[i] {
			d = math.Max(d, math.Abs(a[i][j]-b[i][j]))
		}
	}
	return d
}
