package model_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"earl/kernels"
	"earl/kernels/cpu"
	"earl/shards/audio"
	"earl/worker/ckpt"
	"earl/worker/model"
	"earl/worker/model/internal/ref64"
)

// tinyModel builds a random tiny model of the family on the CPU device,
// with norm weights and biases moved off their starting values so their
// gradients are tested away from the symmetric point.
func tinyModel(t *testing.T, f model.Family, fr model.Freeze, seed uint64) *model.Model {
	t.Helper()
	cfg, err := model.NewConfig(f, "tiny", 320, 300, 301, 302, []int{303})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.New(cpu.New(), cfg, fr, model.Limits{MaxTokens: 256, MaxSeqs: 4, MaxAudio: 2, MaxAudioRows: 400})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, n := range m.P.Names() {
		have[n] = true
	}
	r := rand.New(rand.NewPCG(seed, 99))
	for _, tt := range cfg.RandomWeights(seed, ckpt.F32) {
		if !have[tt.Name] {
			continue
		}
		if len(tt.Shape) == 1 {
			for i := range tt.Values {
				tt.Values[i] += float32(0.1 * r.NormFloat64())
			}
		}
		m.Dev.Upload(m.P.Get(tt.Name), tt.Values)
	}
	return m
}

// testClip computes the log-mel of a deterministic tone-plus-noise clip
// with the family's padding.
func testClip(f model.Family, samples int, seed uint64) model.Clip {
	fam := audio.Qwen2Audio
	if f == model.Qwen25Omni {
		fam = audio.Qwen25Omni
	}
	cfg, _ := audio.ConfigFor(fam)
	e, _ := audio.NewExtractor(cfg)
	r := rand.New(rand.NewPCG(seed, 5))
	x := make([]float32, samples)
	for i := range x {
		tt := float64(i) / 16000
		x[i] = float32(0.3*math.Sin(2*math.Pi*(300+50*float64(seed))*tt) + 0.05*r.NormFloat64())
	}
	return model.Clip{Mel: e.Compute(x)}
}

// testBatch packs two sequences, each with an audio clip (lengths chosen
// to give an odd last Omni chunk), and asks for log-probs of the second
// half of each.
func testBatch(m *model.Model, seed uint64) (*model.Batch, [][2]int) {
	r := rand.New(rand.NewPCG(seed, 7))
	var b model.Batch
	b.Seqs.Offsets = []int32{0}
	var spans [][2]int
	for s := 0; s < 2; s++ {
		clip := testClip(m.Cfg.Family, 4000+2990*s, seed+uint64(s))
		na := m.Cfg.AudioTokens(clip.Mel.ValidFrames)
		toks := []int32{5, 6, int32(m.Cfg.AudioStartID)}
		for i := 0; i < na; i++ {
			toks = append(toks, int32(m.Cfg.AudioTokenID))
		}
		toks = append(toks, int32(m.Cfg.AudioEndID))
		for i := 0; i < 9+3*s; i++ {
			toks = append(toks, int32(r.IntN(290)))
		}
		start := len(b.Tokens)
		b.Tokens = append(b.Tokens, toks...)
		for i := range toks {
			tg := int32(-1)
			if i+1 < len(toks) && i >= len(toks)/2 {
				tg = toks[i+1]
			}
			b.Targets = append(b.Targets, tg)
		}
		b.Seqs.Offsets = append(b.Seqs.Offsets, int32(len(b.Tokens)))
		b.Audio = append(b.Audio, clip)
		spans = append(spans, [2]int{start, len(b.Tokens)})
	}
	b.Temperature = 0.9
	return &b, spans
}

// refLoss evaluates sum(wl*logp + we*entropy) over the batch's targets
// with the float64 reference forward on the given float64 weights.
func refLoss(t *testing.T, dir string, cfg *model.Config, weights map[string][]float64, shapes map[string][]int,
	b *model.Batch, spans [][2]int, wl, we []float64) float64 {
	t.Helper()
	var tensors []ckpt.Tensor
	for name, v := range weights {
		raw := make([]byte, 8*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(x))
		}
		tensors = append(tensors, ckpt.Tensor{Name: name, DType: ckpt.F64, Shape: shapes[name], Data: raw})
	}
	if err := model.WriteHF(dir, cfg, tensors, nil, 0); err != nil {
		t.Fatal(err)
	}
	ref, err := ref64.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	temp := float64(b.Temperature)
	var total float64
	k := 0
	for s, sp := range spans {
		ids := make([]int, sp[1]-sp[0])
		for i := range ids {
			ids[i] = int(b.Tokens[sp[0]+i])
		}
		mel := b.Audio[s].Mel
		data, frames := mel.Padded(), mel.TotalFrames
		if cfg.Family == model.Qwen25Omni {
			data, frames = mel.Valid(), mel.ValidFrames
		}
		a := ref64.Audio{ValidFrames: mel.ValidFrames, Mel: make([][]float64, mel.Mels)}
		for c := range a.Mel {
			a.Mel[c] = make([]float64, frames)
			for f := 0; f < frames; f++ {
				a.Mel[c][f] = float64(data[c*frames+f])
			}
		}
		logits, _, err := ref.Forward(ids, []ref64.Audio{a})
		if err != nil {
			t.Fatal(err)
		}
		for i := range ids {
			tg := b.Targets[sp[0]+i]
			if tg < 0 {
				continue
			}
			z := logits[i]
			mx := math.Inf(-1)
			for _, v := range z {
				mx = math.Max(mx, v/temp)
			}
			var sum float64
			for _, v := range z {
				sum += math.Exp(v/temp - mx)
			}
			lse := mx + math.Log(sum)
			var ent float64
			for _, v := range z {
				lp := v/temp - lse
				ent -= math.Exp(lp) * lp
			}
			total += wl[k]*(z[tg]/temp-lse) + we[k]*ent
			k++
		}
	}
	return total
}

// checkGradients compares earl's float32 backward with finite differences
// of the independent float64 reference forward: for every trained tensor,
// the derivative along a random sign direction u, (L(w+eps u) - L(w-eps u))
// / 2 eps in float64, against earl's g . u. LoRA adapters are folded into
// the base weights (W + scale B A) for the reference.
func checkGradients(t *testing.T, m *model.Model, l *model.LoRA, name string) {
	t.Helper()
	b, spans := testBatch(m, 5)
	out, err := m.Forward(b)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	n := len(out.LogProbs)
	wl32, we32, wl, we := make([]float32, n), make([]float32, n), make([]float64, n), make([]float64, n)
	for i := range wl {
		wl32[i], we32[i] = float32(r.NormFloat64()), float32(0.3*r.NormFloat64())
		wl[i], we[i] = float64(wl32[i]), float64(we32[i])
	}
	m.ZeroGrad()
	if err := m.Backward(wl32, we32); err != nil {
		t.Fatal(err)
	}
	// The model's weights in float64, and the tensors to check.
	base, shapes := map[string][]float64{}, map[string][]int{}
	for _, w := range m.Cfg.Weights() {
		if w.Optional {
			continue
		}
		v := cpu.Floats(m.P.Get(w.Name))
		f := make([]float64, len(v))
		for i, x := range v {
			f[i] = float64(x)
		}
		base[w.Name], shapes[w.Name] = f, w.Shape
	}
	type target struct {
		name string
		grad []float32
		// apply returns the reference weights with this tensor moved by d.
		apply func(d []float64) map[string][]float64
	}
	fold := func(ws map[string][]float64, adapted string, a, bm []float64) {
		sh := shapes[adapted]
		out, in, rank := sh[0], sh[1], l.Cfg.Rank
		w := append([]float64(nil), ws[adapted]...)
		for o := 0; o < out; o++ {
			for i := 0; i < in; i++ {
				var s float64
				for k := 0; k < rank; k++ {
					s += bm[o*rank+k] * a[k*in+i]
				}
				w[o*in+i] += float64(l.Scale()) * s
			}
		}
		ws[adapted] = w
	}
	f64 := func(v []float32) []float64 {
		f := make([]float64, len(v))
		for i, x := range v {
			f[i] = float64(x)
		}
		return f
	}
	folded := func(moveName string, moveA bool, d []float64) map[string][]float64 {
		ws := map[string][]float64{}
		for k, v := range base {
			ws[k] = v
		}
		if l == nil || !l.Enabled {
			return ws
		}
		for _, an := range l.AdapterNames() {
			a, bm := f64(cpu.Floats(l.A(an))), f64(cpu.Floats(l.B(an)))
			if an == moveName {
				tgt := bm
				if moveA {
					tgt = a
				}
				for i := range d {
					tgt[i] += d[i]
				}
			}
			fold(ws, an, a, bm)
		}
		return ws
	}
	var targets []target
	for _, wn := range m.P.Names() {
		if !m.P.Trains(wn) {
			continue
		}
		wn := wn
		targets = append(targets, target{wn, cpu.Floats(m.P.GradOf(wn)), func(d []float64) map[string][]float64 {
			ws := folded("", false, nil)
			v := append([]float64(nil), ws[wn]...)
			for i := range d {
				v[i] += d[i]
			}
			ws[wn] = v
			return ws
		}})
	}
	if l != nil {
		for _, an := range l.AdapterNames() {
			an := an
			targets = append(targets,
				target{an + ".lora_A", cpu.Floats(l.GradA(an)), func(d []float64) map[string][]float64 { return folded(an, true, d) }},
				target{an + ".lora_B", cpu.Floats(l.GradB(an)), func(d []float64) map[string][]float64 { return folded(an, false, d) }})
		}
	}
	dir := t.TempDir()
	worst := 0.0
	for _, tg := range targets {
		u := make([]float64, len(tg.grad))
		var an, scale float64
		for i := range u {
			u[i] = float64(2*r.IntN(2) - 1)
			an += float64(tg.grad[i]) * u[i]
			scale += math.Abs(float64(tg.grad[i]))
		}
		eps := 1e-4 / math.Sqrt(float64(len(u)))
		plus, minus := make([]float64, len(u)), make([]float64, len(u))
		for i := range u {
			plus[i], minus[i] = eps*u[i], -eps*u[i]
		}
		fd := (refLoss(t, dir, m.Cfg, tg.apply(plus), shapes, b, spans, wl, we) -
			refLoss(t, dir, m.Cfg, tg.apply(minus), shapes, b, spans, wl, we)) / (2 * eps)
		diff := math.Abs(fd - an)
		// Relative to sum |g|, the size g.u would have with its signs
		// aligned: a wrong gradient errs by the order of its terms; earl's
		// float32 arithmetic lands within ~1e-6 of them.
		if diff > 2e-5*scale+1e-9 {
			t.Errorf("%s: %s: earl g.u = %.8g, float64 finite difference %.8g (sum |g| %.3g)", name, tg.name, an, fd, scale)
		}
		worst = math.Max(worst, diff/(scale+1e-30))
	}
	t.Logf("%s: %d tensors, worst |fd - g.u| / sum|g| = %.2e", name, len(targets), worst)
}

// Finite-difference checks of the whole tiny model: both families, full
// fine-tuning and LoRA, audio tower frozen and trained.
func TestWholeModelGradients(t *testing.T) {
	for _, f := range []model.Family{model.Qwen2Audio, model.Qwen25Omni} {
		for _, c := range []struct {
			name string
			fr   model.Freeze
			lora bool
		}{
			{"full", model.Freeze{}, false},
			{"audio-frozen", model.Freeze{Audio: true}, false},
			{"lora", model.Freeze{Audio: true, Projector: true, Text: true}, true},
			{"lora+audio", model.Freeze{Text: true}, true},
		} {
			name := string(f) + "/" + c.name
			m := tinyModel(t, f, c.fr, 11)
			var l *model.LoRA
			if c.lora {
				var err error
				if l, err = m.AddLoRA(model.LoRAConfig{Rank: 4, Alpha: 8, Seed: 2}); err != nil {
					t.Fatal(err)
				}
				// Non-zero B so A's gradient is non-zero too.
				r := rand.New(rand.NewPCG(8, 8))
				for _, n := range l.AdapterNames() {
					for i := range cpu.Floats(l.B(n)) {
						cpu.Floats(l.B(n))[i] = float32(0.05 * r.NormFloat64())
					}
				}
			}
			checkGradients(t, m, l, name)
		}
	}
}

// With adapters disabled the model is the base model.
func TestLoRADisabledIsBaseModel(t *testing.T) {
	m := tinyModel(t, model.Qwen2Audio, model.Freeze{Audio: true, Projector: true, Text: true}, 4)
	b, _ := testBatch(m, 2)
	base, err := m.Forward(b)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), base.LogProbs...)
	l, _ := m.AddLoRA(model.LoRAConfig{Rank: 2, Seed: 1})
	for _, n := range l.AdapterNames() {
		for i := range cpu.Floats(l.B(n)) {
			cpu.Floats(l.B(n))[i] = 0.1
		}
	}
	on, _ := m.Forward(b)
	same := true
	for i := range want {
		same = same && on.LogProbs[i] == want[i]
	}
	if same {
		t.Fatal("adapters with non-zero B do not change the output")
	}
	l.Enabled = false
	off, _ := m.Forward(b)
	for i := range want {
		if off.LogProbs[i] != want[i] {
			t.Fatalf("disabled adapters: logp[%d] = %v, base %v", i, off.LogProbs[i], want[i])
		}
	}
}

// kernelsSeqs is one sequence of n tokens.
func kernelsSeqs(n int) kernels.Seqs { return kernels.Seqs{Offsets: []int32{0, int32(n)}} }
