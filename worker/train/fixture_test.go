package train

import (
	"context"
	"path/filepath"
	"testing"

	"earl/collective"
	"earl/kernels"
	"earl/shards"
	"earl/shards/audio"
	"earl/tools/synth"
	"earl/worker/ckpt"
	"earl/worker/model"
	"earl/worker/tokenizer/tinybpe"
)

// tinyModel writes a randomly initialised tiny model with the tiny BPE
// tokenizer (float32 weights, so a reload is exact).
func tinyModel(t testing.TB, fam model.Family, seed uint64) string {
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
	dir := filepath.Join(t.TempDir(), "model")
	if err := model.WriteHF(dir, cfg, cfg.RandomWeights(seed, ckpt.F32), files, 0); err != nil {
		t.Fatal(err)
	}
	return dir
}

// synthShards writes n synthetic questions of a task as a shard directory.
func synthShards(t testing.TB, task string, n int, seed uint64, fam audio.Family) *shards.Dir {
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

// solo is a one-rank Comm.
type solo struct{}

func (solo) Rank() int                                  { return 0 }
func (solo) Size() int                                  { return 1 }
func (solo) AllReduce(kernels.T, collective.Op) error   { return nil }
func (solo) AllReduce64([]float64, collective.Op) error { return nil }
func (solo) ReduceScatter(shard, x kernels.T, _ collective.Op) error {
	copy(kernels.Host(shard), kernels.Host(x))
	return nil
}
func (solo) AllGather(x, shard kernels.T) error { return nil }
func (solo) Broadcast(kernels.T, int) error     { return nil }
func (solo) Barrier() error                     { return nil }
func (solo) Close() error                       { return nil }
