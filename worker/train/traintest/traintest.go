// Package traintest makes the fixtures of earl's training tests: a tiny
// random model in the Hugging Face layout and shard directories of
// synthetic audio questions.
package traintest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"earl/shards"
	"earl/shards/audio"
	"earl/tools/synth"
	"earl/worker/ckpt"
	"earl/worker/model"
	"earl/worker/tokenizer/tinybpe"
)

// TinyModel writes a randomly initialised tiny model of a family with the
// tiny BPE tokenizer under a temporary directory and returns its path.
// The weights are float32, so a reload is exact, and the audio convs are
// drawn with std 0.2 (as make demo's), so the audio reaches the decoder.
func TinyModel(t testing.TB, fam model.Family, seed uint64) string {
	t.Helper()
	files, special, size, err := tinybpe.Files(400)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := model.NewConfig(fam, "tiny", (size+63)/64*64, special["<|AUDIO|>"], special["<|audio_bos|>"], special["<|audio_eos|>"],
		[]int{special["<|im_end|>"], special["<|endoftext|>"]})
	if err != nil {
		t.Fatal(err)
	}
	tensors := cfg.RandomWeights(seed, ckpt.F32)
	for _, tn := range tensors {
		if strings.Contains(tn.Name, "audio_tower.conv") && strings.HasSuffix(tn.Name, ".weight") {
			for i := range tn.Values {
				tn.Values[i] *= 10
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := model.WriteHF(dir, cfg, tensors, files, 0); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Shards writes n synthetic questions of a task (tools synth: count,
// pitch, duration, loudness, sweep, mixed), 1 to 1.5 s of 16 kHz mono
// each, as a shard directory for a model family, and opens it.
func Shards(t testing.TB, task string, n int, seed uint64, fam audio.Family) *shards.Dir {
	t.Helper()
	tmp := t.TempDir()
	res, err := synth.Generate(synth.Options{Task: task, Format: "jsonl", N: n, Seed: seed, Out: filepath.Join(tmp, "src"),
		Rates: []int{16000}, Channels: []int{1}, MinSeconds: 1, MaxSeconds: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "shards")
	if _, err := shards.Build(context.Background(), shards.BuildOptions{Format: "jsonl", Src: res.Annotation, AudioRoot: res.AudioRoot,
		Out: out, Family: fam, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	d, err := shards.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
