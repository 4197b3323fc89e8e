package train

import (
	"slices"
	"testing"
)

func TestReSTKeep(t *testing.T) {
	usable := []bool{true, false, true, true, false, true}
	total := []float64{1.0, 3.0, 1.5, 1.0, 2.0, 1.5}
	for _, c := range []struct {
		keep string
		k    int
		want []int
	}{
		// Sorted by total reward (1.5, 1.5, 1.0, 1.0), ties in sampling order;
		// unusable samples (1, 4) never appear however high their reward.
		{"all", 0, []int{2, 5, 0, 3}},
		{"best", 0, []int{2}},
		{"topk", 3, []int{2, 5, 0}},
		{"topk", 9, []int{2, 5, 0, 3}},
	} {
		if got := restKeep(usable, total, c.keep, c.k); !slices.Equal(got, c.want) {
			t.Errorf("keep %s k %d: %v, want %v", c.keep, c.k, got, c.want)
		}
	}
	if got := restKeep(make([]bool, 4), total[:4], "best", 1); len(got) != 0 {
		t.Errorf("nothing usable: kept %v", got)
	}
}
