package train

import (
	"math"
	"testing"

	"earl/shards/audio"
	"earl/worker/model"
)

// The G completions of a prompt share its clip, which the model encodes
// once: the packer counts it once against max_audio_rows and max_audio.
func TestPackCountsSharedClipsOnce(t *testing.T) {
	cfg, err := model.NewConfig(model.Qwen25Omni, "tiny", 320, 300, 301, 302, []int{303})
	if err != nil {
		t.Fatal(err)
	}
	ac, _ := audio.ConfigFor(audio.Qwen25Omni)
	ex, _ := audio.NewExtractor(ac)
	clip := func(f float64) model.Clip {
		x := make([]float32, 8000)
		for i := range x {
			x[i] = float32(0.3 * math.Sin(2*math.Pi*f*float64(i)/16000))
		}
		return model.Clip{Mel: ex.Compute(x)}
	}
	a, b := clip(300), clip(500)
	rows := audioRows(cfg, a)
	copyOf := func(c model.Clip) model.Clip { m := *c.Mel; return model.Clip{Mel: &m} }
	var shared, copies []Seq
	for i := range 8 {
		c := a
		if i >= 4 {
			c = b
		}
		s := Seq{Prompt: make([]int32, 20), Clip: c, Comp: make([]int32, 10)}
		shared = append(shared, s)
		s.Clip = copyOf(c)
		copies = append(copies, s)
	}
	for _, lim := range []model.Limits{
		{MaxTokens: 1000, MaxSeqs: 16, MaxAudio: 8, MaxAudioRows: rows},     // rows bind
		{MaxTokens: 1000, MaxSeqs: 16, MaxAudio: 1, MaxAudioRows: 8 * rows}, // clips bind
	} {
		m := &model.Model{Cfg: cfg, Limits: lim}
		mbs, err := packSeqs(m, shared)
		if err != nil || len(mbs) != 2 || mbs[0] != (micro{0, 4}) || mbs[1] != (micro{4, 8}) {
			t.Errorf("%+v: shared clips packed as %v (%v), want [0,4) [4,8)", lim, mbs, err)
		}
		if mbs, err := packSeqs(m, copies); err != nil || len(mbs) != 8 {
			t.Errorf("%+v: distinct clips packed as %v (%v), want one per micro-batch", lim, mbs, err)
		}
	}
	// Tokens still bind: 30 tokens each, 90 per micro-batch.
	m := &model.Model{Cfg: cfg, Limits: model.Limits{MaxTokens: 90, MaxSeqs: 16, MaxAudio: 8, MaxAudioRows: rows}}
	if mbs, err := packSeqs(m, shared); err != nil || len(mbs) != 4 || mbs[1] != (micro{3, 4}) || mbs[2] != (micro{4, 7}) {
		t.Errorf("token-bound packing: %v (%v)", mbs, err)
	}
}
