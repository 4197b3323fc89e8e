package train

import (
	"fmt"
	"math"
	"strings"
	"time"

	"earl/collective"
	"earl/kernels"
	"earl/kernels/cpu"
	"earl/worker/ckpt"
	"earl/worker/model"
)

// shard is one rank's ZeRO-1 slice of a trained buffer and its AdamW
// state, kept in host memory.
type shard struct {
	buf          model.TrainBuf
	off, n       int
	master, m, v []float32 // fp32 master weights and moments of [off, off+n)
	grad         []float32 // the reduced gradient of the shard
	decay        []bool    // weight decay applies (not to biases and norms)
}

// Optimizer is AdamW with ZeRO-1 sharding: gradients are reduce-scattered
// over each flat trained buffer (averaged over ranks), every rank clips
// with the global gradient norm and updates its contiguous shard, and the
// parameters are all-gathered. With one rank it is plain AdamW.
type Optimizer struct {
	comm   collective.Comm
	shards []*shard
	t      int // steps taken
	cfg    TrainConfig
	// Total is the number of updates the schedule spans (cosine reaches
	// zero there): max_steps x num_iterations for GRPO. Default max_steps.
	Total int

	// Time spent in collectives during the last Step.
	CommTime time.Duration
}

// NewOptimizer shards the model's trained buffers over comm's ranks and
// initialises the master weights from the current parameters.
func NewOptimizer(m *model.Model, comm collective.Comm, cfg TrainConfig) (*Optimizer, error) {
	o := &Optimizer{comm: comm, cfg: cfg, Total: cfg.MaxSteps}
	for _, tb := range m.Trainable() {
		host := kernels.Host(tb.Param)
		if host == nil {
			return nil, fmt.Errorf("optimizer: buffer %s is not in host memory (the CPU optimizer needs the CPU device)", tb.Name)
		}
		off, n := collective.Range(tb.Param.N, comm.Rank(), comm.Size())
		s := &shard{buf: tb, off: off, n: n, master: append([]float32(nil), host[off:off+n]...),
			m: make([]float32, n), v: make([]float32, n), grad: make([]float32, n), decay: make([]bool, n)}
		for i := range s.decay {
			s.decay[i] = true
		}
		if tb.Name == "weights" {
			// Hugging Face's Trainer exempts biases and norm weights from
			// weight decay; adapters all decay.
			for _, name := range m.P.Names() {
				if !m.P.Trains(name) {
					continue
				}
				w := m.P.Get(name)
				if !(strings.HasSuffix(name, ".bias") || strings.Contains(name, "norm") || strings.Contains(name, "ln_post")) {
					continue
				}
				lo, hi := max(w.Off, off), min(w.Off+w.N, off+n)
				for i := lo; i < hi; i++ {
					s.decay[i-off] = false
				}
			}
		}
		o.shards = append(o.shards, s)
	}
	if len(o.shards) == 0 {
		return nil, fmt.Errorf("optimizer: nothing in the model trains")
	}
	return o, nil
}

// LR is the learning rate at step (0-based): linear warmup, then constant
// or cosine decay to zero at Total, as transformers' schedulers do.
func (o *Optimizer) LR(step int) float64 {
	c := o.cfg
	lr := c.LearningRate
	if step < c.WarmupSteps {
		return lr * float64(step) / float64(max(1, c.WarmupSteps))
	}
	if c.Schedule == "cosine" && o.Total > c.WarmupSteps {
		p := float64(step-c.WarmupSteps) / float64(o.Total-c.WarmupSteps)
		return lr * 0.5 * (1 + math.Cos(math.Pi*math.Min(1, p)))
	}
	return lr
}

// Step applies one update with the gradients in the model's gradient
// buffers at learning rate lr and returns the global gradient norm
// (before clipping).
func (o *Optimizer) Step(lr float64) (float64, error) {
	o.CommTime = 0
	t0 := time.Now()
	for _, s := range o.shards {
		if err := o.comm.ReduceScatter(cpu.Wrap(s.grad), s.buf.Grad, collective.Avg); err != nil {
			return 0, fmt.Errorf("optimizer: reduce-scatter of %s: %w", s.buf.Name, err)
		}
	}
	o.CommTime += time.Since(t0)
	var ss [1]float64
	for _, s := range o.shards {
		for _, g := range s.grad {
			ss[0] += float64(g) * float64(g)
		}
	}
	t1 := time.Now()
	if err := o.comm.AllReduce64(ss[:], collective.Sum); err != nil {
		return 0, fmt.Errorf("optimizer: gradient norm: %w", err)
	}
	o.CommTime += time.Since(t1)
	norm := math.Sqrt(ss[0])
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, fmt.Errorf("optimizer: gradient norm is %v at step %d: the loss diverged; lower the learning rate or check the data", norm, o.t+1)
	}
	scale := 1.0
	if o.cfg.MaxGradNorm > 0 {
		// torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (norm + 1e-6), clamped to 1.
		scale = math.Min(1, o.cfg.MaxGradNorm/(norm+1e-6))
	}
	o.t++
	b1, b2, eps, wd := o.cfg.AdamBeta1, o.cfg.AdamBeta2, o.cfg.AdamEps, o.cfg.WeightDecay
	bc1 := 1 - math.Pow(b1, float64(o.t))
	bc2 := math.Sqrt(1 - math.Pow(b2, float64(o.t)))
	for _, s := range o.shards {
		for i := range s.master {
			// torch.optim.AdamW: decoupled decay, then the moment update,
			// then p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
			p := float64(s.master[i])
			if s.decay[i] {
				p *= 1 - lr*wd
			}
			g := float64(s.grad[i]) * scale
			m := b1*float64(s.m[i]) + (1-b1)*g
			v := b2*float64(s.v[i]) + (1-b2)*g*g
			p -= lr / bc1 * m / (math.Sqrt(v)/bc2 + eps)
			s.master[i], s.m[i], s.v[i] = float32(p), float32(m), float32(v)
		}
		host := kernels.Host(s.buf.Param)
		copy(host[s.off:s.off+s.n], s.master)
	}
	t2 := time.Now()
	for _, s := range o.shards {
		if err := o.comm.AllGather(s.buf.Param, s.buf.Param.View(s.off, s.n)); err != nil {
			return norm, fmt.Errorf("optimizer: all-gather of %s: %w", s.buf.Name, err)
		}
	}
	o.CommTime += time.Since(t2)
	return norm, nil
}

// Steps is the number of updates taken.
func (o *Optimizer) Steps() int { return o.t }

// Shards is this rank's optimizer state for a checkpoint. The master
// weights are not stored: on the CPU they are the weights buffer itself,
// bit for bit, after every step.
func (o *Optimizer) Shards() []ckpt.Shard {
	out := make([]ckpt.Shard, len(o.shards))
	for i, s := range o.shards {
		out[i] = ckpt.Shard{Buffer: s.buf.Name, Offset: s.off, Len: s.n, M: s.m, V: s.v}
	}
	return out
}

// Restore loads this rank's shards (already re-cut for this world size)
// after the weights have been restored, and the step count.
func (o *Optimizer) Restore(shards []ckpt.Shard, steps int) error {
	if len(shards) != len(o.shards) {
		return fmt.Errorf("optimizer state: the checkpoint has %d trained buffers, this model %d (was LoRA or freezing changed?)", len(shards), len(o.shards))
	}
	for i, s := range o.shards {
		c := shards[i]
		if c.Buffer != s.buf.Name || c.Offset != s.off || c.Len != s.n {
			return fmt.Errorf("optimizer state: checkpoint shard %s [%d, +%d) does not match this rank's %s [%d, +%d) (was LoRA or freezing changed?)",
				c.Buffer, c.Offset, c.Len, s.buf.Name, s.off, s.n)
		}
		copy(s.m, c.M)
		copy(s.v, c.V)
		host := kernels.Host(s.buf.Param)
		copy(s.master, host[s.off:s.off+s.n])
	}
	o.t = steps
	return nil
}
