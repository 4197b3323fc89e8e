package train

import (
	"testing"

	"earl/kernels/cpu"
	"earl/shards/audio"
	"earl/worker/model"
)

func TestGRPOStepRuns(t *testing.T) {
	dir := tinyModel(t, model.Qwen25Omni, 3)
	data := synthShards(t, "sweep", 8, 1, audio.Qwen25Omni)
	cfg := Default()
	cfg.Model.Path = dir
	cfg.Model.FreezeAudio = false
	cfg.GRPO.NumGenerations = 4
	cfg.GRPO.MaxCompletionLength = 12
	cfg.Train.PromptsPerRank = 2
	cfg.Train.LearningRate = 1e-3
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tr, err := Setup(cpu.New(), cfg, solo{}, dir, data)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		st, err := tr.GRPOStep()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", st)
	}
}
