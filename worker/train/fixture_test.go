package train

import (
	"testing"

	"earl/collective"
	"earl/kernels"
	"earl/shards"
	"earl/shards/audio"
	"earl/worker/model"
	"earl/worker/train/traintest"
)

func tinyModel(t testing.TB, fam model.Family, seed uint64) string {
	return traintest.TinyModel(t, fam, seed)
}

func synthShards(t testing.TB, task string, n int, seed uint64, fam audio.Family) *shards.Dir {
	return traintest.Shards(t, task, n, seed, fam)
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
