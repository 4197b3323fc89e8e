package train

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"earl/kernels/cpu"
	"earl/shards/audio"
	"earl/worker/ckpt"
	"earl/worker/model"
)

// grpoConfig is a small, fast GRPO run on a tiny model.
func grpoConfig(t testing.TB, modelDir, data string) *Config {
	cfg := Default()
	cfg.Model.Path = modelDir
	cfg.Model.FreezeAudio = false
	cfg.Data.Train = data
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	cfg.GRPO.NumGenerations = 4
	cfg.GRPO.MaxCompletionLength = 24
	cfg.GRPO.Beta = 0.04
	cfg.Train.PromptsPerRank = 2
	cfg.Train.LearningRate = 1e-3
	cfg.Train.WarmupSteps = 2
	cfg.Train.Schedule = "cosine"
	cfg.Train.MaxSteps = 6
	cfg.Train.SaveSteps = 3
	cfg.Train.LogSteps = 0
	// A format reward that pays for any stop gives the random model a
	// gradient from the first step.
	return cfg
}

// warmModel is a tiny model taught the answer format by a short SFT run,
// exported as a model directory: GRPO on it gets rewards that differ
// within groups, so its steps move the weights.
func warmModel(t testing.TB, data string) string {
	t.Helper()
	cfg := Default()
	cfg.Mode = "sft"
	cfg.Model.Path = tinyModel(t, model.Qwen25Omni, 11)
	cfg.Model.FreezeAudio = false
	cfg.Data.Train = data
	cfg.RunDir = filepath.Join(t.TempDir(), "sft")
	cfg.Train.PromptsPerRank = 4
	cfg.Train.LearningRate = 3e-3
	cfg.Train.MaxSteps = 30
	cfg.Train.SaveSteps = 0
	cfg.Train.LogSteps = 10
	var log strings.Builder
	if err := Run(context.Background(), cpu.New(), cfg, solo{}, Options{Log: &log}); err != nil {
		t.Fatal(err)
	}
	t.Log(log.String())
	out := filepath.Join(t.TempDir(), "warm")
	if err := Export(ckpt.StepDir(cfg.RunDir, 30), cfg.Model.Path, out, ckpt.F32); err != nil {
		t.Fatal(err)
	}
	return out
}

// runSplit runs cfg to step mid, then starts it again to step end, which
// must resume from mid's checkpoint.
func runSplit(t *testing.T, cfg *Config, mid, end int) {
	t.Helper()
	cfg.Train.MaxSteps = mid
	if err := Run(context.Background(), cpu.New(), cfg, solo{}, Options{}); err != nil {
		t.Fatal(err)
	}
	cfg.Train.MaxSteps = end
	var log strings.Builder
	if err := Run(context.Background(), cpu.New(), cfg, solo{}, Options{Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "resuming from "+ckpt.StepDir(cfg.RunDir, mid)) {
		t.Fatalf("the second run did not resume from step %d:\n%s", mid, log.String())
	}
}

func TestResumeIsExact(t *testing.T) {
	data := synthShards(t, "loudness", 12, 3, audio.Qwen25Omni)
	dir := warmModel(t, data.Path)
	straight := grpoConfig(t, dir, data.Path)
	if err := Run(context.Background(), cpu.New(), straight, solo{}, Options{Log: os.Stderr}); err != nil {
		t.Fatal(err)
	}
	split := grpoConfig(t, dir, data.Path)
	runSplit(t, split, 3, 6)
	a, err := ckpt.LoadWeights(ckpt.StepDir(straight.RunDir, 6))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ckpt.LoadWeights(ckpt.StepDir(split.RunDir, 6))
	if err != nil {
		t.Fatal(err)
	}
	start, err := ckpt.LoadWeights(ckpt.StepDir(straight.RunDir, 3))
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for i := range a[0].Values {
		if a[0].Values[i] != b[0].Values[i] {
			t.Fatalf("weight %d: straight %v, resumed %v", i, a[0].Values[i], b[0].Values[i])
		}
		if a[0].Values[i] != start[0].Values[i] {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("steps 4-6 changed no weight: the test would not see a broken resume")
	}
	ma, _ := os.ReadFile(filepath.Join(straight.RunDir, "metrics.jsonl"))
	mb, _ := os.ReadFile(filepath.Join(split.RunDir, "metrics.jsonl"))
	if strings.Count(string(ma), "\n") != 6 || strings.Count(string(mb), "\n") != 6 {
		t.Fatalf("metrics lines: straight %d, split %d", strings.Count(string(ma), "\n"), strings.Count(string(mb), "\n"))
	}
}
