package train

import (
	"fmt"

	"earl/shards"
	"earl/worker/model"
)

// Cursor is where a run stands in its data: the epoch and how many
// samples of the epoch's shuffled order the job has consumed. It is all
// the data state a checkpoint needs: the order is a function of (seed,
// epoch), and every sampling seed a function of (seed, epoch, position).
type Cursor struct {
	Epoch int `json:"epoch"`
	Pos   int `json:"pos"`
}

// Feed hands out the job's global batches: each step takes the next
// world x perRank samples of the epoch's order, rank r the r-th slice of
// perRank. An epoch's tail shorter than a global batch is skipped, so
// every rank always gets a full batch and ranks never wait on each other.
type Feed struct {
	dir     *shards.Dir
	seed    uint64
	rank    int
	world   int
	perRank int
	cur     Cursor
	order   []int
	orderOf int // the epoch order holds
}

// Slot is one rank's sample in a step: its record and its position in
// the global batch (the seed of its samples derives from it).
type Slot struct {
	Rec   *shards.Record
	Index int // the sample's index in the shard directory
	Epoch int
	Pos   int // index in the epoch order
}

// NewFeed starts at cur.
func NewFeed(dir *shards.Dir, seed uint64, rank, world, perRank int, cur Cursor) (*Feed, error) {
	if dir.Len() < world*perRank {
		return nil, fmt.Errorf("%s holds %d samples, fewer than one global batch of %d ranks x %d prompts", dir.Path, dir.Len(), world, perRank)
	}
	return &Feed{dir: dir, seed: seed, rank: rank, world: world, perRank: perRank, cur: cur, orderOf: -1}, nil
}

// Cursor is the position after the batches handed out so far.
func (f *Feed) Cursor() Cursor { return f.cur }

func (f *Feed) epochOrder(e int) []int {
	if f.orderOf != e {
		f.order, f.orderOf = shards.Order(f.dir.Len(), f.seed, e), e
	}
	return f.order
}

// plan returns this rank's indices for the batch at cur and the cursor
// after it.
func (f *Feed) plan(cur Cursor) (Cursor, []Slot) {
	g := f.world * f.perRank
	if cur.Pos+g > f.dir.Len() {
		cur = Cursor{Epoch: cur.Epoch + 1}
	}
	order := f.epochOrder(cur.Epoch)
	slots := make([]Slot, f.perRank)
	for i := range slots {
		p := cur.Pos + f.rank*f.perRank + i
		slots[i] = Slot{Epoch: cur.Epoch, Pos: p, Index: order[p]}
	}
	return Cursor{Epoch: cur.Epoch, Pos: cur.Pos + g}, slots
}

// Next returns this rank's samples of the next global batch.
func (f *Feed) Next() ([]Slot, error) {
	next, slots := f.plan(f.cur)
	for i := range slots {
		r, err := f.dir.Record(slots[i].Index)
		if err != nil {
			return nil, fmt.Errorf("step data (epoch %d, position %d): %w", slots[i].Epoch, slots[i].Pos, err)
		}
		slots[i].Rec = r
	}
	f.cur = next
	return slots, nil
}

// SampleSeed is the sampling seed of the prompt at (epoch, pos): the same
// on every rank count, so a resumed or re-sharded run samples the same
// completions for the same prompt. (epoch + 2 and pos + 1 keep away from
// model.SampleSeed's identity at 0.)
func SampleSeed(seed uint64, epoch, pos int) uint64 {
	return model.SampleSeed(model.SampleSeed(seed, epoch+2), pos+1)
}
