package train

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"

	"earl/collective"
	"earl/kernels/cpu"
	"earl/shards/audio"
	"earl/worker/ckpt"
)

// Two ranks with ZeRO-1 (each holding half of the AdamW state, gradients
// reduce-scattered, parameters all-gathered) take the same steps as one
// rank on the same global batch: every weight agrees within 1e-6 after 5
// GRPO steps. The sums differ in rounding only (the ranks add their
// halves of the batch separately); Adam turns a rounding difference in a
// near-zero gradient into one of up to about lr x 1e-2, so the test runs
// at lr 1e-4 (100 x TRL's default); at 1e-3 the largest difference is
// 1.4e-6.
func TestZeROMatchesOneRank(t *testing.T) {
	data := synthShards(t, "loudness", 16, 5, audio.Qwen25Omni)
	dir := warmModel(t, data.Path)
	var start []float32
	run := func(world int) []float32 {
		cfg := grpoConfig(t, dir, data.Path)
		cfg.Train.MaxSteps = 5
		cfg.Train.SaveSteps = 1 // step 1 (at lr 0, warming up) keeps the start
		cfg.Train.SaveTotalLimit = 10
		cfg.Train.PromptsPerRank = 4 / world
		cfg.Train.WeightDecay = 0.01
		cfg.Train.LearningRate = 1e-4
		comms := collective.NewInProcess(world)
		errs := make([]error, world)
		var wg sync.WaitGroup
		for r := 0; r < world; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var log strings.Builder
				errs[r] = Run(context.Background(), cpu.New(), cfg, comms[r], Options{Log: &log})
				if r == 0 {
					t.Logf("%d ranks:\n%s", world, log.String())
				}
			}()
		}
		wg.Wait()
		for r, err := range errs {
			if err != nil {
				t.Fatalf("%d ranks, rank %d: %v", world, r, err)
			}
		}
		b, err := ckpt.LoadWeights(ckpt.StepDir(cfg.RunDir, 5))
		if err != nil {
			t.Fatal(err)
		}
		s, err := ckpt.LoadWeights(ckpt.StepDir(cfg.RunDir, 1))
		if err != nil {
			t.Fatal(err)
		}
		start = s[0].Values
		if world > 1 {
			// Every rank wrote its own optimizer shard.
			for r := 0; r < world; r++ {
				if _, err := ckpt.LoadShards(ckpt.StepDir(cfg.RunDir, 5), r, world); err != nil {
					t.Fatal(err)
				}
			}
		}
		return b[0].Values
	}
	one, two := run(1), run(2)
	worst, moved := 0.0, 0.0
	for i := range one {
		worst = math.Max(worst, math.Abs(float64(one[i]-two[i])))
		moved = math.Max(moved, math.Abs(float64(one[i]-start[i])))
	}
	if moved < 1e-4 {
		t.Fatalf("the weights moved by at most %g in 5 steps: the comparison would not see a broken optimizer", moved)
	}
	if worst > 1e-6 {
		t.Fatalf("after 5 steps, one rank and two ZeRO-1 ranks differ by up to %g", worst)
	}
	t.Logf("largest difference %g (largest change from the start %g)", worst, moved)
}
