package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"earl/kernels"
	"earl/kernels/cpu"
	"earl/tools/npy"
	"earl/worker/model"
)

// tools logits writes the logits and target log-probs earl's library
// computes for the same request, and rejects bad requests by name.
func TestLogitsCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tools")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	mdir := filepath.Join(dir, "m")
	if out, err := run("init-model", "--family", "qwen2.5-omni", "--out", mdir); err != nil {
		t.Fatal(out)
	}
	if out, err := run("synth", "--format", "jsonl", "--n", "1", "--rates", "16000", "--duration", "3", "--out", filepath.Join(dir, "s")); err != nil {
		t.Fatal(out)
	}
	wavs, _ := filepath.Glob(filepath.Join(dir, "s", "audio", "*.wav"))
	if out, err := run("mel", wavs[0], "--family", "qwen2.5-omni", "--valid", "--npy", filepath.Join(dir, "x.npy")); err != nil {
		t.Fatal(out)
	}
	shape, feats, err := npy.ReadFloat32(filepath.Join(dir, "x.npy"))
	if err != nil {
		t.Fatal(err)
	}
	T := shape[1]
	ck, err := model.Open(mdir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ck.Config
	ck.Close()
	ids := []int32{5, 6, int32(cfg.AudioStartID)}
	for i := 0; i < cfg.AudioTokens(T); i++ {
		ids = append(ids, int32(cfg.AudioTokenID))
	}
	ids = append(ids, int32(cfg.AudioEndID), 40, 41)
	targets := make([]int32, len(ids))
	for i := range targets {
		targets[i] = -1
	}
	targets[len(ids)-2], targets[len(ids)-1] = 41, 42
	req := map[string]any{"input_ids": ids, "audio": []map[string]any{{"features": "x.npy", "frames": T}}, "targets": targets}
	b, _ := json.Marshal(req)
	os.WriteFile(filepath.Join(dir, "req.json"), b, 0o644)
	if out, err := run("logits", "--model", mdir, "--input", filepath.Join(dir, "req.json"), "--out", filepath.Join(dir, "l.npy")); err != nil {
		t.Fatal(out)
	}
	if out, err := run("logits", "--model", mdir, "--input", filepath.Join(dir, "req.json"), "--out", filepath.Join(dir, "lp.npy"), "--logprobs"); err != nil {
		t.Fatal(out)
	}
	lshape, logits, _ := npy.ReadFloat32(filepath.Join(dir, "l.npy"))
	_, lps, _ := npy.ReadFloat32(filepath.Join(dir, "lp.npy"))
	v := cfg.Text.VocabSize
	if lshape[0] != len(ids) || lshape[1] != v {
		t.Fatalf("logits shape %v", lshape)
	}
	// The library, on the same inputs.
	m, err := model.Load(cpu.New(), mdir, model.Freeze{Audio: true, Projector: true, Text: true},
		model.Limits{MaxTokens: len(ids), MaxSeqs: 1, MaxAudio: 1, MaxAudioRows: T})
	if err != nil {
		t.Fatal(err)
	}
	clip := melClip(T, shape[0], feats)
	want, err := m.Logits(&model.Batch{Tokens: ids, Seqs: kernels.Seqs{Offsets: []int32{0, int32(len(ids))}}, Audio: []model.Clip{clip}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if logits[i] != want[i] {
			t.Fatalf("logit %d: tools %v, library %v", i, logits[i], want[i])
		}
	}
	for i, tg := range targets {
		if tg < 0 {
			if !math.IsNaN(float64(lps[i])) {
				t.Errorf("position %d without a target: %v, want NaN", i, lps[i])
			}
			continue
		}
		row := logits[i*v : (i+1)*v]
		mx := math.Inf(-1)
		for _, x := range row {
			mx = math.Max(mx, float64(x))
		}
		var s float64
		for _, x := range row {
			s += math.Exp(float64(x) - mx)
		}
		if d := math.Abs(float64(lps[i]) - (float64(row[tg]) - mx - math.Log(s))); d > 1e-5 {
			t.Errorf("position %d: log-prob %v differs from the logits' log-softmax by %g", i, lps[i], d)
		}
	}
	// Bad requests name the problem.
	for _, c := range []struct{ req, want string }{
		{`{"input_ids": []}`, "no input_ids"},
		{`{"input_ids": [1, 2], "targets": [1]}`, "2 input_ids"},
		{`{"input_ids": [1], "extra": 1}`, "unknown field"},
		{`{"input_ids": [1], "audio": [{"features": "missing.npy", "frames": 5}]}`, "missing.npy"},
	} {
		p := filepath.Join(dir, "bad.json")
		os.WriteFile(p, []byte(c.req), 0o644)
		out, err := run("logits", "--model", mdir, "--input", p, "--out", filepath.Join(dir, "o.npy"))
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: %v %q, want it to mention %q", c.req, err, out, c.want)
		}
	}
}
