package train

import (
	"testing"

	"earl/worker/model"
)

// The seeds of every sample of every prompt of two epochs are distinct: a
// batch's samples draw independent numbers (a linear seed scheme gave
// sample j+1 of one prompt the numbers of sample j of the next, which
// correlated the answers across a batch and wrecked GRPO's groups).
func TestSampleSeedsDistinct(t *testing.T) {
	seen := map[uint64]string{}
	for epoch := 0; epoch < 2; epoch++ {
		for pos := 0; pos < 500; pos++ {
			for j := 0; j < 16; j++ {
				s := model.SampleSeed(SampleSeed(1, epoch, pos), j)
				if prev, dup := seen[s]; dup {
					t.Fatalf("epoch %d position %d sample %d has the seed of %s", epoch, pos, j, prev)
				}
				seen[s] = "another sample"
			}
		}
	}
}
