package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"earl/collective"
	"earl/kernels"
	"earl/shards"
	"earl/worker/ckpt"
)

// ErrStopped is returned by Run when a signal asked the job to stop: the
// checkpoint is written and the job can be resumed (or requeued).
var ErrStopped = errors.New("stopped by signal after checkpointing")

// Options are a run's process-level settings, outside the config.
type Options struct {
	// Stop is raised (set to 1) by a signal handler: the ranks agree on it
	// at the next step boundary, checkpoint, and return ErrStopped.
	Stop *atomic.Int32
	// Log receives progress lines and warnings (rank 0 prints, the others
	// only warn); nil is os.Stderr.
	Log io.Writer
	// ForceResume resumes even when the checkpoint was written by a
	// different configuration.
	ForceResume bool
	// Save tunes checkpoint compression.
	Save ckpt.SaveOptions
}

// Run trains to cfg.TotalSteps() on one rank: it resumes from the newest
// complete checkpoint of the run directory (or starts from the model
// path), logs metrics every step, checkpoints every save_steps and on a
// stop request, and keeps the newest save_total_limit checkpoints.
func Run(ctx context.Context, dev kernels.Device, cfg *Config, comm collective.Comm, opt Options) error {
	log := opt.Log
	if log == nil {
		log = os.Stderr
	}
	rank := comm.Rank()
	say := func(format string, args ...any) {
		if rank == 0 {
			fmt.Fprintf(log, format+"\n", args...)
		}
	}
	if cfg.Data.Train == "" {
		return fmt.Errorf("data.train is required for mode %s", cfg.Mode)
	}
	data, err := shards.Open(cfg.Data.Train)
	if err != nil {
		return fmt.Errorf("data.train: %w", err)
	}
	defer data.Close()
	if rank == 0 {
		if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
			return fmt.Errorf("run_dir: %w", err)
		}
		if err := cfg.WriteFile(filepath.Join(cfg.RunDir, "config.toml")); err != nil {
			return fmt.Errorf("run_dir: %w", err)
		}
	}

	// Rank 0 picks the checkpoint (Latest verifies every file) and the
	// others follow its choice, so all ranks resume from the same step.
	var resume *ckpt.State
	var resumeDir string
	pick := []float64{-1}
	if rank == 0 {
		dir, st, err := ckpt.Latest(cfg.RunDir, func(w string) { fmt.Fprintf(log, "warning: %s\n", w) })
		switch {
		case err == nil:
			if st.ConfigHash != cfg.Hash() && !opt.ForceResume {
				err = fmt.Errorf("%s was written by a different configuration (hash %s, now %s): use another run_dir, restore the settings, or pass --force-resume",
					dir, st.ConfigHash, cfg.Hash())
			}
			pick[0] = float64(st.Step)
			if err == nil {
				err = setAside(cfg.RunDir, st.Step, log)
			}
		case errors.Is(err, ckpt.ErrNoCheckpoint):
			err = nil
		}
		if err != nil {
			pick[0] = -2
			_ = comm.AllReduce64(pick, collective.Max)
			return err
		}
	}
	if err := comm.AllReduce64(pick, collective.Max); err != nil {
		return err
	}
	if pick[0] == -2 {
		return fmt.Errorf("rank 0 could not resume (see its error)")
	}
	if pick[0] >= 0 {
		resumeDir = ckpt.StepDir(cfg.RunDir, int(pick[0]))
		if resume, err = ckpt.ReadState(resumeDir); err != nil {
			return err
		}
		say("resuming from %s (step %d, epoch %d, position %d, written by %d ranks)", resumeDir, resume.Step, resume.Epoch, resume.Cursor, resume.WorldSize)
	}

	tr, err := Setup(dev, cfg, comm, cfg.Model.Path, data)
	if err != nil {
		return err
	}
	if rank == 0 {
		tr.Log = log
	}
	if resume != nil {
		if err := tr.restore(resumeDir, resume); err != nil {
			return err
		}
	}
	var metrics *os.File
	if rank == 0 {
		if metrics, err = os.OpenFile(filepath.Join(cfg.RunDir, "metrics.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
		defer metrics.Close()
	}
	say("%s: %d ranks x %d prompts per step, %d samples in %s, %d trained values, steps %d..%d",
		cfg.Mode, comm.Size(), cfg.Train.PromptsPerRank, data.Len(), cfg.Data.Train, tr.trainedValues(), tr.Step+1, cfg.TotalSteps())

	saved := tr.Step
	t0, step0 := time.Now(), tr.Step
	for tr.Step < cfg.TotalSteps() {
		stop := []float64{0}
		if opt.Stop != nil && opt.Stop.Load() != 0 {
			stop[0] = 1
		}
		if ctx.Err() != nil {
			stop[0] = 1
		}
		if err := comm.AllReduce64(stop, collective.Max); err != nil {
			return err
		}
		if stop[0] != 0 {
			if tr.Step > saved {
				say("stop requested: checkpointing step %d", tr.Step)
				if err := tr.checkpoint(opt.Save); err != nil {
					return err
				}
			}
			return ErrStopped
		}
		var st *StepStats
		switch cfg.Mode {
		case "grpo":
			st, err = tr.GRPOStep()
		case "sft":
			st, err = tr.SFTStep()
		case "rest":
			st, err = tr.ReSTStep()
		default:
			err = fmt.Errorf("mode %q cannot train", cfg.Mode)
		}
		if err != nil {
			return fmt.Errorf("step %d: %w", tr.Step+1, err)
		}
		m, err := reduce(comm, st, cfg.Mode, tr.Feed.Cursor().Epoch)
		if err != nil {
			return err
		}
		if rank == 0 {
			if _, err := metrics.Write(m.JSON()); err != nil {
				return fmt.Errorf("metrics.jsonl: %w", err)
			}
			if cfg.Train.LogSteps > 0 && (tr.Step%cfg.Train.LogSteps == 0 || tr.Step == cfg.TotalSteps()) {
				// Elapsed and remaining time from this session's mean step.
				el := time.Since(t0)
				eta := time.Duration(float64(el) / float64(tr.Step-step0) * float64(cfg.TotalSteps()-tr.Step))
				fmt.Fprintf(log, "%s  elapsed %s  eta %s\n", m.Line(cfg.TotalSteps()), el.Round(time.Second), eta.Round(time.Second))
			}
		}
		if (cfg.Train.SaveSteps > 0 && tr.Step%cfg.Train.SaveSteps == 0) || tr.Step == cfg.TotalSteps() {
			if err := tr.checkpoint(opt.Save); err != nil {
				return err
			}
			saved = tr.Step
		}
	}
	say("done: %d steps; checkpoint %s", tr.Step, ckpt.StepDir(cfg.RunDir, tr.Step))
	return nil
}

func (t *Trainer) trainedValues() int {
	n := 0
	for _, b := range t.M.Trainable() {
		n += b.Param.N
	}
	return n
}

// buffers are what a checkpoint stores of the model.
func (t *Trainer) buffers() []ckpt.Buffer {
	bufs := []ckpt.Buffer{{Name: "weights", Values: kernels.Host(t.M.P.Buf), Tensors: t.M.P.Refs()}}
	if t.LoRA != nil {
		bufs = append(bufs, ckpt.Buffer{Name: "lora", Values: kernels.Host(t.LoRA.Buf), Tensors: t.LoRA.Refs()})
	}
	return bufs
}

// checkpoint saves the run's state after t.Step steps: rank 0 the
// weights, every rank its optimizer shard, then after a barrier rank 0
// finalizes (DONE) and prunes; a second barrier keeps every rank until the
// checkpoint is complete.
func (t *Trainer) checkpoint(opt ckpt.SaveOptions) error {
	t0 := time.Now()
	cfg, rank := t.Cfg, t.Comm.Rank()
	dir := ckpt.StepDir(cfg.RunDir, t.Step)
	var err error
	if rank == 0 {
		err = ckpt.SaveWeights(dir, t.buffers(), opt)
	}
	if err == nil {
		err = ckpt.SaveShards(dir, rank, t.Opt.Shards(), opt)
	}
	// Every rank learns whether every save worked before anyone
	// finalizes: a failed rank must not leave the others in a barrier.
	ok := []float64{0}
	if err != nil {
		ok[0] = 1
	}
	if aerr := t.Comm.AllReduce64(ok, collective.Max); aerr != nil {
		return aerr
	}
	if err != nil {
		return err
	}
	if ok[0] != 0 {
		return fmt.Errorf("checkpoint %s: another rank failed to save (see its error)", dir)
	}
	if rank == 0 {
		cur := t.Feed.Cursor()
		meta := map[string]any{"optimizer_steps": t.Opt.Steps(), "mode": cfg.Mode,
			"sampling": "seeds derive from (seed, epoch, position in the epoch order)"}
		if t.LoRA != nil {
			meta["lora_rank"], meta["lora_alpha"] = t.LoRA.Cfg.Rank, t.LoRA.Cfg.Alpha
		}
		extra, _ := json.Marshal(meta)
		st := ckpt.State{Step: t.Step, Epoch: cur.Epoch, Cursor: cur.Pos, Seed: cfg.Seed, WorldSize: t.Comm.Size(),
			ConfigHash: cfg.Hash(), Extra: map[string]json.RawMessage{"trainer": extra}}
		err = ckpt.Finalize(dir, st)
		if err == nil && cfg.Train.SaveTotalLimit > 0 {
			err = ckpt.Prune(cfg.RunDir, cfg.Train.SaveTotalLimit)
		}
	}
	ok[0] = 0
	if err != nil {
		ok[0] = 1
	}
	if aerr := t.Comm.AllReduce64(ok, collective.Max); aerr != nil {
		return aerr
	}
	if err != nil {
		return err
	}
	if ok[0] != 0 {
		return fmt.Errorf("checkpoint %s: rank 0 failed to finalize (see its error)", dir)
	}
	if rank == 0 && t.Log != nil {
		fmt.Fprintf(t.Log, "checkpoint %s (%.1fs)\n", dir, time.Since(t0).Seconds())
	}
	return nil
}

// restore loads a checkpoint's weights, this rank's optimizer shards and
// the data cursor.
func (t *Trainer) restore(dir string, st *ckpt.State) error {
	bufs, err := ckpt.LoadWeights(dir)
	if err != nil {
		return err
	}
	var got []string
	for i := range bufs {
		b := &bufs[i]
		got = append(got, b.Name)
		switch {
		case b.Name == "weights":
			err = copyWeights(t.M, b, dir)
		case b.Name == "lora" && t.LoRA != nil && len(b.Values) == t.LoRA.Buf.N && slices.EqualFunc(b.Tensors, t.LoRA.Refs(), refEqual):
			copy(kernels.Host(t.LoRA.Buf), b.Values)
		default:
			err = fmt.Errorf("%s: buffer %s does not fit this model (were the LoRA settings changed?)", dir, b.Name)
		}
		if err != nil {
			return err
		}
	}
	if t.LoRA != nil && !slices.Contains(got, "lora") {
		return fmt.Errorf("%s holds no LoRA adapters, but this run trains them (model.lora_rank %d)", dir, t.Cfg.Model.LoRARank)
	}
	shards, err := ckpt.LoadShards(dir, t.Comm.Rank(), t.Comm.Size())
	if err != nil {
		return err
	}
	var extra struct {
		OptimizerSteps int `json:"optimizer_steps"`
	}
	if raw, ok := st.Extra["trainer"]; ok {
		if err := json.Unmarshal(raw, &extra); err != nil {
			return fmt.Errorf("%s: trainer state: %w", dir, err)
		}
	}
	if err := t.Opt.Restore(shards, extra.OptimizerSteps); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	t.Step = st.Step
	t.Feed.cur = Cursor{Epoch: st.Epoch, Pos: st.Cursor}
	return nil
}

func refEqual(a, b ckpt.TensorRef) bool {
	return a.Name == b.Name && a.Offset == b.Offset && slices.Equal(a.Shape, b.Shape)
}

// setAside renames the complete-looking checkpoints newer than step (ones
// Latest rejected as damaged) to step-N.damaged-TIME, so that the resumed
// run can save those steps again while nothing is deleted.
func setAside(runDir string, step int, log io.Writer) error {
	dir := filepath.Join(runDir, "checkpoints")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "step-%d", &n); err != nil || !e.IsDir() || n <= step || e.Name() != filepath.Base(ckpt.StepDir(runDir, n)) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), ckpt.DoneFileName)); err != nil {
			continue // an interrupted save: the resumed run overwrites it
		}
		to := filepath.Join(dir, fmt.Sprintf("%s.damaged-%s", e.Name(), time.Now().UTC().Format("20060102T150405")))
		if err := os.Rename(filepath.Join(dir, e.Name()), to); err != nil {
			return fmt.Errorf("setting the damaged checkpoint %s aside: %w", e.Name(), err)
		}
		fmt.Fprintf(log, "warning: moved the damaged checkpoint %s to %s; resuming from step %d\n", e.Name(), to, step)
	}
	return nil
}
