package ref64

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"earl/worker/ckpt"
	"earl/worker/model"
)

// The torch cross-check (an independent PyTorch float64 forward, agreement
// to 1e-9) lives in torch_test.go behind the build tag torchref, because
// python3-torch is not among `make test`'s dependencies:
//
//	make bench-deps   # installs python3-torch
//	go test -tags torchref ./worker/model/internal/ref64/

func TestActivationKnownValues(t *testing.T) {
	// Exact GELU, 0.5·x·(1 + erf(x/√2)) (PyTorch's default), not the tanh
	// approximation (which gives 0.8411919906082768 at 1).
	for _, c := range []struct{ x, want float64 }{
		{1, 0.8413447460685429},
		{-1, -0.15865525393145707},
		{0, 0},
	} {
		if got := gelu(c.x); math.Abs(got-c.want) > 1e-16 {
			t.Errorf("gelu(%v) = %.17g, want %.17g", c.x, got, c.want)
		}
	}
	if math.Abs(gelu(1)-0.8411919906082768) < 1e-4 {
		t.Error("gelu is the tanh approximation")
	}
	// SiLU(1) = 1/(1+e^−1).
	if got := silu(1); math.Abs(got-0.7310585786300049) > 1e-16 {
		t.Errorf("silu(1) = %.17g, want 0.7310585786300049", got)
	}
}

func TestFloorDivIsPythons(t *testing.T) {
	for _, c := range [][3]int{{-1, 2, -1}, {-2, 2, -1}, {-3, 2, -2}, {0, 2, 0}, {1, 2, 0}, {3, 2, 1}, {-5, 3, -2}, {5, -3, -2}} {
		if got := floorDiv(c[0], c[1]); got != c[2] {
			t.Errorf("%d // %d = %d, want %d", c[0], c[1], got, c[2])
		}
	}
	// One conv output pools to zero tokens; Go's truncating division
	// would say one.
	for T, want := range map[int]int{1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 1, 7: 2, 100: 25, 3000: 750} {
		if got := pyTokens(T); got != want {
			t.Errorf("tokens(%d) = %d, want %d", T, got, want)
		}
	}
}

func TestLayerNormAndRMSNorm(t *testing.T) {
	// LayerNorm of [1, 2, 3, 4] (mean 2.5, biased variance 1.25).
	x := [][]float64{{1, 2, 3, 4}}
	y := layerNorm(x, []float64{1, 1, 1, 2}, []float64{0, 0, 0, 1}, 1e-5)
	s := math.Sqrt(1.25 + 1e-5)
	for j, want := range []float64{-1.5 / s, -0.5 / s, 0.5 / s, 2*1.5/s + 1} {
		if math.Abs(y[0][j]-want) > 1e-15 {
			t.Errorf("layerNorm[%d] = %v, want %v", j, y[0][j], want)
		}
	}
	// RMSNorm: mean(x²) = 7.5, no mean subtraction, no bias.
	y = rmsNorm(x, []float64{1, 1, 1, 2}, 1e-6)
	r := math.Sqrt(7.5 + 1e-6)
	for j, want := range []float64{1 / r, 2 / r, 3 / r, 8 / r} {
		if math.Abs(y[0][j]-want) > 1e-15 {
			t.Errorf("rmsNorm[%d] = %v, want %v", j, y[0][j], want)
		}
	}
}

func TestConv1dAndPool(t *testing.T) {
	// One input channel, one output channel, kernel [1, 10, 100], bias 0.5,
	// over x = [1, 2, 3, 4, 5] (time-major rows of one channel).
	w := linear{W: []float64{1, 10, 100}, B: []float64{0.5}, Out: 1, In: 3}
	x := [][]float64{{1}, {2}, {3}, {4}, {5}}
	// out[t] = x[t−1] + 10 x[t] + 100 x[t+1] + 0.5, zero padding.
	for stride, want := range map[int][]float64{1: {210.5, 321.5, 432.5, 543.5, 54.5}, 2: {210.5, 432.5, 54.5}} {
		y := conv1d(x, 1, w, stride)
		if len(y) != len(want) {
			t.Fatalf("stride %d: %d outputs, want %d", stride, len(y), len(want))
		}
		for i := range want {
			if y[i][0] != want[i] {
				t.Errorf("stride %d: out[%d] = %v, want %v", stride, i, y[i][0], want[i])
			}
		}
	}
	p := avgPool2([][]float64{{1}, {3}, {5}, {9}, {100}})
	if len(p) != 2 || p[0][0] != 2 || p[1][0] != 7 {
		t.Errorf("avgPool2 = %v, want [[2] [7]] (odd row dropped)", p)
	}
}

func TestRoPE(t *testing.T) {
	// Rotate-half layout: dims i and i+half form a pair. At position 1 with
	// head_dim 4, theta 10000: inv_freq = [1, 0.01].
	cos, sin := ropeTables(2, 4, 10000)
	v := []float64{1, 0, 0, 0}
	ropeHead(v, cos[1], sin[1])
	for j, want := range []float64{math.Cos(1), 0, math.Sin(1), 0} {
		if math.Abs(v[j]-want) > 1e-16 {
			t.Errorf("rope e0 at pos 1: [%d] = %v, want %v (rotate-half, not interleaved)", j, v[j], want)
		}
	}
	v = []float64{0, 1, 0, 0}
	ropeHead(v, cos[1], sin[1])
	for j, want := range []float64{0, math.Cos(0.01), 0, math.Sin(0.01)} {
		if math.Abs(v[j]-want) > 1e-16 {
			t.Errorf("rope e1 at pos 1: [%d] = %v, want %v", j, v[j], want)
		}
	}

	// Norm preservation, and rotating by pos then −pos is the identity.
	r := rand.New(rand.NewPCG(1, 2))
	for _, theta := range []float64{1e4, 1e6} {
		const hd, n = 64, 1000
		cos, sin := ropeTables(n, hd, theta)
		for _, p := range []int{0, 1, 17, 999} {
			v := make([]float64, hd)
			for i := range v {
				v[i] = r.NormFloat64()
			}
			orig := append([]float64(nil), v...)
			norm := func(x []float64) float64 { return math.Sqrt(dot(x, x)) }
			ropeHead(v, cos[p], sin[p])
			if math.Abs(norm(v)-norm(orig)) > 1e-12*norm(orig) {
				t.Errorf("theta %g pos %d: norm %v → %v", theta, p, norm(orig), norm(v))
			}
			negSin := make([]float64, len(sin[p]))
			for i := range negSin {
				negSin[i] = -sin[p][i] // sin(−a) = −sin(a), cos(−a) = cos(a)
			}
			ropeHead(v, cos[p], negSin)
			for i := range v {
				if math.Abs(v[i]-orig[i]) > 1e-12 {
					t.Fatalf("theta %g pos %d: rotate(pos) then rotate(−pos) moved [%d] %v → %v", theta, p, i, orig[i], v[i])
				}
			}
		}
	}
}

func TestDecoderIsCausal(t *testing.T) {
	for _, fam := range []model.Family{model.Qwen2Audio, model.Qwen25Omni} {
		t.Run(string(fam), func(t *testing.T) {
			dir, _ := writeModel(t, fam, "tiny", 11, nil)
			m := load(t, dir)
			ids := promptIDs(5, 24)
			logits, acts := forward(t, m, ids)
			for _, j := range []int{0, 9, 23} {
				changed := append([]int(nil), ids...)
				changed[j] = (changed[j] + 1) % testAudioID
				l2, a2 := forward(t, m, changed)
				if !sameRows(logits, l2, 0, j) {
					t.Errorf("changing token %d changed logits of earlier positions", j)
				}
				for name, a := range acts {
					if !sameRows(a, a2[name], 0, j) {
						t.Errorf("changing token %d changed %s rows < %d", j, name, j)
					}
				}
				if sameRows(logits, l2, j, len(ids)) {
					t.Errorf("changing token %d changed no logits at all", j)
				}
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	dir, cfg := writeModel(t, model.Qwen25Omni, "tiny", 3, nil)
	m := load(t, dir)
	a := omniClip(cfg, 333, 4)
	ids := promptIDs(1, 5, pyTokens(333))
	l1, _ := forward(t, m, ids, a)
	l2, _ := forward(t, m, ids, a)
	if !sameRows(l1, l2, 0, len(l1)) {
		t.Error("two runs differ")
	}
}

// TestQwen2AudioFrameDependence pins which mel frames reach the audio
// embeddings. With L = (T−1)//2+1 conv outputs valid, the encoder reads
// conv2 rows 0..L−1 (rows ≥ L are masked keys, and the kept tokens pool
// rows ≤ L−1); conv2 row j reads conv1 rows 2j−1..2j+1, which read frames
// 2j−2..2j+2. So frames 0..2L matter, frames ≥ 2L+1 do not. Frame 2L is a
// padding frame (T even: 2L = T; T odd: 2L = T+1 and frame T is padding
// too), so the padding just past the clip does change the embeddings.
func TestQwen2AudioFrameDependence(t *testing.T) {
	dir, cfg := writeModel(t, model.Qwen2Audio, "tiny", 21, nil)
	m := load(t, dir)
	for _, T := range []int{100, 101, 2999} {
		L := floorDiv(T-1, 2) + 1
		n := pyTokens(T)
		ids := promptIDs(9, 4, n)
		base := qwen2AudioClip(cfg, T, uint64(T))
		_, acts := forward(t, m, ids, base)
		out := acts["audio.0.out"]
		if len(out) != n {
			t.Fatalf("T=%d: %d audio tokens, want %d", T, len(out), n)
		}
		F := len(base.Mel[0])
		run := func(from, to int) [][]float64 {
			a := Audio{Mel: cloneMel(base.Mel), ValidFrames: T}
			for c := range a.Mel {
				for f := from; f < to && f < F; f++ {
					a.Mel[c][f] += 1 + float64(c%3)
				}
			}
			_, acts2 := forward(t, m, ids, a)
			return acts2["audio.0.out"]
		}
		if 2*L+1 < F {
			if got := run(2*L+1, F); !sameRows(got, out, 0, n) {
				t.Errorf("T=%d (L=%d): frames %d.. changed the embeddings", T, L, 2*L+1)
			}
		}
		seen := map[int]bool{}
		for _, f := range []int{0, T - 1, T, 2*L - 1, 2 * L} {
			if f >= F || seen[f] {
				continue
			}
			seen[f] = true
			if got := run(f, f+1); sameRows(got, out, 0, n) {
				t.Errorf("T=%d (L=%d): frame %d did not change the embeddings", T, L, f)
			}
		}
	}
}

// TestOmniBlockDiagonal: chunks of 2·n_window = 200 frames are convolved
// separately (each zero-padded; a chunk never sees its neighbour's frames)
// and attend only within themselves, so chunk 0's rows (100 of them) are
// bitwise unchanged by any change in chunk 1, and the other way round.
func TestOmniBlockDiagonal(t *testing.T) {
	dir, cfg := writeModel(t, model.Qwen25Omni, "tiny", 31, nil)
	m := load(t, dir)
	const T = 350 // chunks of 200 and 150 frames → 100 + 75 rows
	n := pyTokens(T)
	ids := promptIDs(2, 3, n)
	base := omniClip(cfg, T, 8)
	_, acts := forward(t, m, ids, base)
	if got := len(acts["audio.0.conv2"]); got != 175 {
		t.Fatalf("%d encoder rows, want 175", got)
	}
	change := func(from, to int) map[string][][]float64 {
		a := Audio{Mel: cloneMel(base.Mel), ValidFrames: T}
		for c := range a.Mel {
			for f := from; f < to; f++ {
				a.Mel[c][f] -= 2
			}
		}
		_, acts2 := forward(t, m, ids, a)
		return acts2
	}
	names := []string{"audio.0.conv2"}
	for j := range cfg.Audio.Layers {
		names = append(names, fmt.Sprintf("audio.0.layer.%d", j))
	}
	// Chunk 1 changed: chunk 0's rows identical, chunk 1's differ.
	a2 := change(200, 350)
	for _, name := range names {
		if !sameRows(acts[name], a2[name], 0, 100) {
			t.Errorf("%s: changing chunk 1 changed chunk 0's rows", name)
		}
		if sameRows(acts[name], a2[name], 100, 175) {
			t.Errorf("%s: changing chunk 1 did not change its rows", name)
		}
	}
	if !sameRows(acts["audio.0.out"], a2["audio.0.out"], 0, 50) || sameRows(acts["audio.0.out"], a2["audio.0.out"], 50, n) {
		t.Error("audio.0.out: tokens 0..49 must depend on chunk 0 only, the rest on chunk 1")
	}
	// The last frame of chunk 0 is not seen by chunk 1's conv (a plain conv
	// over the whole clip would see it from row 100).
	a3 := change(199, 200)
	for _, name := range names {
		if !sameRows(acts[name], a3[name], 100, 175) || sameRows(acts[name], a3[name], 99, 100) {
			t.Errorf("%s: frame 199 must change chunk 0 only", name)
		}
	}
}

// TestAudioTokenCounts checks the encoders' output lengths against
// model.Config.AudioTokens (earl's own formula) and Python's arithmetic,
// around chunk and pooling boundaries.
func TestAudioTokenCounts(t *testing.T) {
	for _, fam := range []model.Family{model.Qwen2Audio, model.Qwen25Omni} {
		dir, cfg := writeModel(t, fam, "tiny", 41, nil)
		m := load(t, dir)
		frames := []int{1, 2, 3, 4, 5, 6, 7, 199, 200, 201, 202, 203, 399, 400, 401, 2999, 3000}
		if fam == model.Qwen2Audio {
			// Every Qwen2-Audio call encodes all 1500 rows; fewer cases.
			frames = []int{1, 2, 3, 4, 5, 6, 7, 201, 2999, 3000}
		}
		for _, T := range frames {
			var out [][]float64
			var err error
			acts := map[string][][]float64{}
			if fam == model.Qwen2Audio {
				out, err = m.encodeQwen2Audio(qwen2AudioClip(cfg, T, 1), 0, acts)
			} else {
				out, err = m.encodeOmni(omniClip(cfg, T, 1), 0, acts)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != pyTokens(T) || len(out) != cfg.AudioTokens(T) {
				t.Errorf("%s T=%d: %d tokens, want %d (config says %d)", fam, T, len(out), pyTokens(T), cfg.AudioTokens(T))
			}
			if fam == model.Qwen25Omni {
				if rows, want := len(acts["audio.0.conv2"]), floorDiv(T-1, 2)+1; rows != want {
					t.Errorf("omni T=%d: %d rows after the convs, want %d", T, rows, want)
				}
			} else if rows := len(acts["audio.0.conv2"]); rows != 1500 {
				t.Errorf("qwen2-audio: %d rows after the convs, want 1500", rows)
			}
		}
	}
}

// TestGQAMatchesDuplicatedKV: with kv_heads = heads/2, query head h reads
// KV head h/2. Duplicating each KV head's weights into heads 2g and 2g+1
// with kv_heads = heads must give bitwise the same logits; the other
// grouping (h mod kv_heads) must not.
func TestGQAMatchesDuplicatedKV(t *testing.T) {
	dir, _ := writeModel(t, model.Qwen25Omni, "tiny", 51, nil)
	m := load(t, dir)
	if m.heads != 2*m.kvHeads {
		t.Fatalf("tiny preset has %d heads, %d kv heads; the test wants a ratio of 2", m.heads, m.kvHeads)
	}
	ids := promptIDs(3, 30)
	want, _ := forward(t, m, ids)

	expand := func(src func(h int) int) *Model {
		e := *m
		e.kvHeads = m.heads
		e.dec = append([]decLayer(nil), m.dec...)
		hd := m.headDim
		dup := func(l linear) linear {
			out := linear{Out: m.heads * hd, In: l.In, W: make([]float64, m.heads*hd*l.In), B: make([]float64, m.heads*hd)}
			for h := 0; h < m.heads; h++ {
				g := src(h)
				copy(out.W[h*hd*l.In:(h+1)*hd*l.In], l.W[g*hd*l.In:(g+1)*hd*l.In])
				copy(out.B[h*hd:(h+1)*hd], l.B[g*hd:(g+1)*hd])
			}
			return out
		}
		for i := range e.dec {
			e.dec[i].K, e.dec[i].V = dup(m.dec[i].K), dup(m.dec[i].V)
		}
		return &e
	}
	rep := m.heads / m.kvHeads
	got, _ := forward(t, expand(func(h int) int { return h / rep }), ids)
	if !sameRows(got, want, 0, len(ids)) {
		t.Errorf("GQA differs from MHA with duplicated KV weights by %g", maxAbsDiff(got, want, 0, len(ids)))
	}
	wrong, _ := forward(t, expand(func(h int) int { return h % m.kvHeads }), ids)
	if d := maxAbsDiff(wrong, want, 0, len(ids)); d < 1e-6 {
		t.Errorf("interleaved KV grouping gives the same logits (diff %g): the test cannot tell the groupings apart", d)
	}
}

func TestTiedEmbeddings(t *testing.T) {
	for _, tied := range []bool{true, false} {
		dir, _ := writeModel(t, model.Qwen2Audio, "tiny", 61, func(c *model.Config) { c.Text.TieWordEmbeddings = tied })
		m := load(t, dir)
		ids := promptIDs(4, 12)
		logits, acts := forward(t, m, ids)
		norm := acts["norm"]
		// logits = norm · E^T with E = embed_tokens.weight, by hand.
		d := 0.0
		for i := range norm {
			for v := 0; v < m.cfg.Text.VocabSize; v++ {
				s := 0.0
				for c := range norm[i] {
					s += norm[i][c] * m.embed.W[v*m.embed.In+c]
				}
				d = math.Max(d, math.Abs(s-logits[i][v]))
			}
		}
		if tied && d > 1e-12 {
			t.Errorf("tied: logits differ from norm·embed_tokens^T by %g", d)
		}
		if !tied && d < 1e-3 {
			t.Errorf("untied: logits equal norm·embed_tokens^T (diff %g): lm_head.weight is not used", d)
		}
	}
}

// TestScatterOrder: two audios, each encoded alone, fill the <|AUDIO|>
// rows in order.
func TestScatterOrder(t *testing.T) {
	for _, fam := range []model.Family{model.Qwen2Audio, model.Qwen25Omni} {
		dir, cfg := writeModel(t, fam, "tiny", 71, nil)
		m := load(t, dir)
		clip := omniClip
		if fam == model.Qwen2Audio {
			clip = qwen2AudioClip
		}
		a0, a1 := clip(cfg, 130, 1), clip(cfg, 261, 2)
		n0, n1 := pyTokens(130), pyTokens(261)
		ids := promptIDs(6, 4, n0, n1)
		_, acts := forward(t, m, ids, a0, a1)
		var rows []int
		for i, id := range ids {
			if id == testAudioID {
				rows = append(rows, i)
			}
		}
		emb := acts["embeds"]
		for k, out := range [][][]float64{acts["audio.0.out"], acts["audio.1.out"]} {
			for r := range out {
				i := rows[r+k*n0]
				if !sameRows([][]float64{emb[i]}, out[r:r+1], 0, 1) {
					t.Fatalf("%s: embeds row %d is not audio %d's embedding %d", fam, i, k, r)
				}
			}
		}
		// Each audio is encoded independently.
		_, alone := forward(t, m, promptIDs(6, 4, n1), a1)
		if !sameRows(alone["audio.0.out"], acts["audio.1.out"], 0, n1) {
			t.Errorf("%s: audio 1's embeddings depend on audio 0", fam)
		}
		// Text rows are embed_tokens rows.
		if !sameRows([][]float64{emb[0]}, [][]float64{m.embed.row(ids[0])}, 0, 1) {
			t.Errorf("%s: embeds row 0 is not embed_tokens[%d]", fam, ids[0])
		}

		// Errors.
		if _, _, err := m.Forward(ids[:len(ids)-4], []Audio{a0, a1}); err == nil || !strings.Contains(err.Error(), "<|AUDIO|>") {
			t.Errorf("%s: placeholder count mismatch: err = %v", fam, err)
		}
		if _, _, err := m.Forward([]int{1, cfg.Text.VocabSize}, nil); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
			t.Errorf("%s: id out of range: err = %v", fam, err)
		}
		bad := a0
		bad.Mel = bad.Mel[:10]
		if _, _, err := m.Forward(ids, []Audio{bad, a1}); err == nil || !strings.Contains(err.Error(), "bins") {
			t.Errorf("%s: wrong mel bins: err = %v", fam, err)
		}
	}
}

func TestQwen2AudioNeedsFullPaddedMel(t *testing.T) {
	dir, cfg := writeModel(t, model.Qwen2Audio, "tiny", 81, nil)
	m := load(t, dir)
	a := Audio{Mel: randomMel(cfg.Audio.NumMelBins, 500, 1), ValidFrames: 500}
	if _, _, err := m.Forward(promptIDs(1, 2, pyTokens(500)), []Audio{a}); err == nil || !strings.Contains(err.Error(), "3000") {
		t.Errorf("err = %v, want a complaint about the 3000-frame padded mel", err)
	}
}

func TestOmniPrefixLayouts(t *testing.T) {
	plain, cfg := writeModel(t, model.Qwen25Omni, "tiny", 91, nil)
	full, _ := writeModel(t, model.Qwen25Omni, "tiny", 91, func(c *model.Config) { c.Prefix = "thinker." })
	a := omniClip(cfg, 250, 3)
	ids := promptIDs(7, 5, pyTokens(250))
	l1, _ := forward(t, load(t, plain), ids, a)
	m2 := load(t, full)
	if m2.cfg.Prefix != "thinker." {
		t.Fatalf("prefix %q, want thinker.", m2.cfg.Prefix)
	}
	l2, _ := forward(t, m2, ids, a)
	if !sameRows(l1, l2, 0, len(ids)) {
		t.Error("the thinker.-prefixed layout gives other logits")
	}
}

func TestLoadReportsMissingWeights(t *testing.T) {
	dir, cfg := writeModel(t, model.Qwen25Omni, "tiny", 5, nil)
	// Rewrite the directory without one tensor.
	ts := cfg.RandomWeights(5, ckpt.F32)
	var kept = ts[:0]
	for _, tn := range ts {
		if tn.Name != "model.layers.1.mlp.up_proj.weight" {
			kept = append(kept, tn)
		}
	}
	if err := model.WriteHF(dir, cfg, kept, nil, 0); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "model.layers.1.mlp.up_proj.weight") {
		t.Errorf("err = %v, want it to name the missing tensor", err)
	}
}

// TestSmallPreset runs the Omni `small` preset (hidden 512, 6 layers, 8
// heads over 2 KV heads, vocab 4096) on 200 tokens with 3 s of audio and
// logs the time. Qwen2-Audio's `small` encoder always runs 1500 rows and
// takes a few CPU-seconds, so it is left to the benchmarks:
//
//	go test -run '^$' -bench Forward ./worker/model/internal/ref64/
func TestSmallPreset(t *testing.T) {
	dir, cfg := writeModel(t, model.Qwen25Omni, "small", 1, nil)
	m := load(t, dir)
	const T = 300 // 3 s
	ids := promptIDs(2, 200-pyTokens(T)-3, pyTokens(T))
	start := time.Now()
	logits, acts := forward(t, m, ids, omniClip(cfg, T, 1))
	t.Logf("qwen2.5-omni small: %d tokens (%d audio), %d frames: Forward %v", len(ids), pyTokens(T), T, time.Since(start).Round(time.Millisecond))
	if len(logits) != len(ids) || len(logits[0]) != 4096 || len(acts["audio.0.out"]) != pyTokens(T) {
		t.Fatalf("logits %dx%d, %d audio tokens", len(logits), len(logits[0]), len(acts["audio.0.out"]))
	}
}

func benchmarkForward(b *testing.B, fam model.Family, preset string) {
	dir, cfg := writeModel(b, fam, preset, 1, nil)
	m := load(b, dir)
	const T = 300
	clip := omniClip(cfg, T, 1)
	if fam == model.Qwen2Audio {
		clip = qwen2AudioClip(cfg, T, 1)
	}
	ids := promptIDs(2, 200-pyTokens(T)-3, pyTokens(T))
	b.ResetTimer()
	for range b.N {
		forward(b, m, ids, clip)
	}
}

func BenchmarkForwardTinyQwen2Audio(b *testing.B)  { benchmarkForward(b, model.Qwen2Audio, "tiny") }
func BenchmarkForwardTinyOmni(b *testing.B)        { benchmarkForward(b, model.Qwen25Omni, "tiny") }
func BenchmarkForwardSmallQwen2Audio(b *testing.B) { benchmarkForward(b, model.Qwen2Audio, "small") }
func BenchmarkForwardSmallOmni(b *testing.B)       { benchmarkForward(b, model.Qwen25Omni, "small") }

// TestOmniConvHandComputed pins Omni's per-chunk convolution on a model
// small enough to work out by hand: 1 mel bin, d_model 4, n_window 2
// (chunks of 4 frames), no layers. conv1 has zero weights and bias 1, so
// every valid conv1 row is g = gelu(1) and masked rows are 0; conv2 adds
// its three inputs channel by channel (weight 1, bias 0). T = 7 gives a
// chunk of 4 frames and a tail of 3:
//
//	chunk 0: rows gelu(0+g+g), gelu(g+g+g)       (conv2's left padding)
//	chunk 1: rows gelu(0+g+g), gelu(g+g+0)       (conv1 row 3 masked: without
//	                                              the mask it would be gelu(3g))
//
// and each chunk adds positions 0 and 1 again: pos[t] = [sin t, sin(t·1e−4),
// cos t, cos(t·1e−4)] (inv_timescale = exp(−ln(10000)/(half−1)·i), half 2).
func TestOmniConvHandComputed(t *testing.T) {
	const d = 4
	m := &Model{cfg: model.Config{Family: model.Qwen25Omni,
		Audio: model.AudioConfig{NumMelBins: 1, DModel: d, Heads: 1, NWindow: 2}}}
	m.conv1 = linear{W: make([]float64, d*3), B: []float64{1, 1, 1, 1}, Out: d, In: 3}
	m.conv2 = linear{W: make([]float64, d*d*3), B: make([]float64, d), Out: d, In: d * 3}
	for o := 0; o < d; o++ {
		for k := 0; k < 3; k++ {
			m.conv2.W[o*d*3+o*3+k] = 1
		}
	}
	m.audioNormW, m.audioNormB = []float64{1, 1, 1, 1}, make([]float64, d)
	m.audioProj = linear{W: []float64{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, B: make([]float64, d), Out: d, In: d}

	acts := map[string][][]float64{}
	mel := [][]float64{{5, -3, 2, 7, 1, -1, 4}} // conv1's weights are zero: values do not matter
	out, err := m.encodeOmni(Audio{Mel: mel, ValidFrames: 7}, 0, acts)
	if err != nil {
		t.Fatal(err)
	}
	g := gelu(1)
	conv := []float64{gelu(2 * g), gelu(3 * g), gelu(2 * g), gelu(2 * g)}
	pos := func(p float64) []float64 {
		return []float64{math.Sin(p), math.Sin(p * 1e-4), math.Cos(p), math.Cos(p * 1e-4)}
	}
	rows := acts["audio.0.conv2"]
	if len(rows) != 4 {
		t.Fatalf("%d rows after the convs, want 4 (2 per chunk)", len(rows))
	}
	for r, row := range rows {
		p := pos(float64(r % 2)) // positions restart in every chunk
		for c := range row {
			if want := conv[r] + p[c]; math.Abs(row[c]-want) > 1e-15 {
				t.Errorf("row %d channel %d = %.17g, want %.17g", r, c, row[c], want)
			}
		}
	}
	if len(out) != 2 {
		t.Errorf("%d audio tokens, want 2", len(out))
	}
}
