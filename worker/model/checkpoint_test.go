package model

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"earl/worker/ckpt"
)

// A random model written in the Hugging Face layout loads back with every
// tensor accounted for, for each family and layout.
func TestRandomModelRoundTrip(t *testing.T) {
	for _, c := range []struct {
		family Family
		prefix string
	}{{Qwen2Audio, ""}, {Qwen25Omni, ""}, {Qwen25Omni, "thinker."}} {
		cfg, err := NewConfig(c.family, "tiny", 320, 300, 301, 302, []int{303})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Prefix = c.prefix
		dir := t.TempDir()
		tensors := cfg.RandomWeights(7, ckpt.BF16)
		if err := WriteHF(dir, cfg, tensors, nil, 0); err != nil {
			t.Fatal(err)
		}
		ck, err := Open(dir)
		if err != nil {
			t.Fatalf("%s %q: %v", c.family, c.prefix, err)
		}
		if ck.Config.Family != c.family || ck.Config.Prefix != c.prefix || ck.Config.AudioTokenID != 300 {
			t.Errorf("loaded config %+v", ck.Config)
		}
		n := 0
		for _, w := range ck.Config.Weights() {
			info, _, ok := ck.Weights.Lookup(w.Name)
			if !ok {
				if !w.Optional {
					t.Errorf("%s missing", w.Name)
				}
				continue
			}
			n++
			if info.DType != ckpt.BF16 {
				t.Errorf("%s stored as %s", w.Name, info.DType)
			}
		}
		if n != len(tensors) || len(ck.Weights.Tensors()) != len(tensors) {
			t.Errorf("%d expected tensors found, %d in the file, %d written", n, len(ck.Weights.Tensors()), len(tensors))
		}
		// Norm weights are ones and biases zeros; a weight matrix has the
		// initializer's spread (bf16-rounded).
		v, err := ck.Weights.Float32(tensors[0].Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		var s2 float64
		for _, x := range v {
			s2 += float64(x) * float64(x)
		}
		if std := s2 / float64(len(v)); std < 0.015*0.015 || std > 0.025*0.025 {
			t.Errorf("%s: variance %g, want about 0.02^2", tensors[0].Name, std)
		}
		for _, f := range []string{"config.json", "generation_config.json", "preprocessor_config.json", "chat_template.json", "model.safetensors"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s not written: %v", f, err)
			}
		}
		ck.Close()
	}
}

// A checkpoint with one tensor missing and one misshapen is rejected with
// both named.
func TestBrokenCheckpointNamesBothTensors(t *testing.T) {
	cfg, err := NewConfig(Qwen2Audio, "tiny", 320, 300, 301, 302, []int{303})
	if err != nil {
		t.Fatal(err)
	}
	tensors := cfg.RandomWeights(1, ckpt.F32)
	var kept []ckpt.Tensor
	missing, misshapen := "language_model.model.layers.1.mlp.gate_proj.weight", "audio_tower.layers.0.fc2.weight"
	for _, tt := range tensors {
		switch tt.Name {
		case missing:
			continue
		case misshapen:
			tt.Shape = []int{tt.Shape[0], tt.Shape[1] - 1}
			tt.Values = tt.Values[:tt.Shape[0]*tt.Shape[1]]
		}
		kept = append(kept, tt)
	}
	dir := t.TempDir()
	if err := WriteHF(dir, cfg, kept, nil, 0); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir)
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("Open: %v", err)
	}
	for _, want := range []string{missing, misshapen + ": have [64 127], want [64 128]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
}

// Sharded checkpoints (model.safetensors.index.json) load the same way.
func TestShardedCheckpoint(t *testing.T) {
	cfg, _ := NewConfig(Qwen25Omni, "tiny", 320, 300, 301, 302, []int{303})
	dir := t.TempDir()
	if err := WriteHF(dir, cfg, cfg.RandomWeights(2, ckpt.BF16), nil, 200_000); err != nil {
		t.Fatal(err)
	}
	shards, _ := filepath.Glob(filepath.Join(dir, "model-*-of-*.safetensors"))
	if len(shards) < 2 {
		t.Fatalf("%d shard files", len(shards))
	}
	ck, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ck.Close()
}
