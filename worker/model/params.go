package model

import (
	"fmt"
	"sort"

	"earl/kernels"
	"earl/worker/ckpt"
)

// Params holds every weight of a model in one flat device buffer, carved
// into views named by their Hugging Face names (DESIGN.md rule 1). The
// trainable weights come first, so they form one contiguous range
// [0, Trainable) whose gradients live in Grad with the same layout: a
// ZeRO-1 shard is a sub-range of both, and frozen weights (the audio tower,
// or everything under LoRA) get no gradient memory and no backward.
type Params struct {
	Dev       kernels.Device
	Buf       kernels.T // all weights
	Grad      kernels.T // gradients of Buf[0:Trainable]; N == 0 when nothing trains
	Trainable int
	views     map[string]Weight
	offsets   map[string]int
	order     []string
}

// Freeze says which parts of the model are not trained.
type Freeze struct {
	Audio     bool // the audio tower
	Projector bool // Qwen2-Audio's multi_modal_projector
	Text      bool // the decoder and lm_head (LoRA trains adapters instead)
}

func (f Freeze) frozen(p Part) bool {
	switch p {
	case PartAudio:
		return f.Audio
	case PartProjector:
		return f.Projector
	}
	return f.Text
}

// NewParams lays out the configuration's weights on dev, trainable first,
// each group in the order of Config.Weights. The weights start at zero.
func NewParams(dev kernels.Device, c *Config, fr Freeze) *Params {
	p := &Params{Dev: dev, views: map[string]Weight{}, offsets: map[string]int{}}
	var train, frozen []Weight
	for _, w := range c.Weights() {
		if w.Optional {
			continue // not used by the forward pass (tied lm_head, Omni's audio_bos_eos_token)
		}
		if fr.frozen(w.Part) {
			frozen = append(frozen, w)
		} else {
			train = append(train, w)
		}
	}
	n := 0
	for _, w := range append(train, frozen...) {
		p.views[w.Name] = w
		p.offsets[w.Name] = n
		p.order = append(p.order, w.Name)
		n += w.Numel()
		if len(p.order) == len(train) {
			p.Trainable = n
		}
	}
	if len(train) == 0 {
		p.Trainable = 0
	}
	p.Buf = dev.Alloc(n)
	if p.Trainable > 0 {
		p.Grad = dev.Alloc(p.Trainable)
	}
	return p
}

// Names lists the weights in layout order.
func (p *Params) Names() []string { return append([]string(nil), p.order...) }

// Get returns the named weight's view. It panics on an unknown name: the
// names come from Config.Weights, so a miss is a programming error.
func (p *Params) Get(name string) kernels.T {
	w, ok := p.views[name]
	if !ok {
		panic("model: no weight " + name)
	}
	return p.Buf.View(p.offsets[name], w.Numel())
}

// GradOf returns the named weight's gradient view, or an empty view when
// the weight is frozen.
func (p *Params) GradOf(name string) kernels.T {
	w, ok := p.views[name]
	if !ok {
		panic("model: no weight " + name)
	}
	off := p.offsets[name]
	if off >= p.Trainable {
		return kernels.T{}
	}
	return p.Grad.View(off, w.Numel())
}

// Trains reports whether the named weight is trained.
func (p *Params) Trains(name string) bool { return p.offsets[name] < p.Trainable }

// Load copies a checkpoint's tensors into the buffer, converting from its
// dtype to float32.
func (p *Params) Load(ck *Checkpoint) error {
	host := make([]float32, 0)
	for _, name := range p.order {
		w := p.views[name]
		if cap(host) < w.Numel() {
			host = make([]float32, w.Numel())
		}
		host = host[:w.Numel()]
		if _, err := ck.Weights.Float32(name, host); err != nil {
			return fmt.Errorf("%s: weight %s: %w", ck.Dir, name, err)
		}
		p.Dev.Upload(p.Get(name), host)
	}
	return nil
}

// Tensors downloads every weight as float32 values for writing a
// checkpoint (converted to dtype by the writer).
func (p *Params) Tensors(dtype ckpt.DType) []ckpt.Tensor {
	names := append([]string(nil), p.order...)
	sort.Strings(names)
	out := make([]ckpt.Tensor, 0, len(names))
	for _, name := range names {
		w := p.views[name]
		v := make([]float32, w.Numel())
		p.Dev.Download(v, p.Get(name))
		out = append(out, ckpt.Tensor{Name: name, DType: dtype, Shape: w.Shape, Values: v})
	}
	return out
}

// Refs is the tensor table of Buf for a checkpoint: every weight's name,
// offset and shape.
func (p *Params) Refs() []ckpt.TensorRef {
	refs := make([]ckpt.TensorRef, 0, len(p.order))
	for _, name := range p.order {
		refs = append(refs, ckpt.TensorRef{Name: name, Offset: p.offsets[name], Shape: append([]int(nil), p.views[name].Shape...)})
	}
	return refs
}
