package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"earl/worker/ckpt"
	"earl/worker/model"
)

// tokenizerFiles are the files of a model directory that describe its
// tokenizer, copied as they are into an export.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json", "added_tokens.json"}

// loraMeta is what an export needs of the run's LoRA settings, stored in
// the checkpoint's trainer state.
type loraMeta struct {
	Rank  int     `json:"lora_rank"`
	Alpha float64 `json:"lora_alpha"`
}

// Export writes a training checkpoint as a plain Hugging Face model
// directory: config.json and the tokenizer files of the base model, the
// weights (LoRA adapters merged into their base weights, W + (alpha/r) B A)
// as safetensors of dtype. The directory is written under a temporary name
// and renamed, so out is either complete or absent.
func Export(stepDir, basePath, out string, dtype ckpt.DType) error {
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("export: %s exists: remove it or choose another --out", out)
	}
	if _, err := ckpt.Verify(stepDir); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	st, err := ckpt.ReadState(stepDir)
	if err != nil {
		return err
	}
	cfg, err := model.LoadConfig(basePath)
	if err != nil {
		return fmt.Errorf("export: base model: %w", err)
	}
	bufs, err := ckpt.LoadWeights(stepDir)
	if err != nil {
		return err
	}
	var weights, lora *ckpt.Buffer
	for i := range bufs {
		switch bufs[i].Name {
		case "weights":
			weights = &bufs[i]
		case "lora":
			lora = &bufs[i]
		}
	}
	if weights == nil {
		return fmt.Errorf("export: %s holds no weights buffer", stepDir)
	}
	byName := map[string]ckpt.TensorRef{}
	for _, r := range weights.Tensors {
		byName[r.Name] = r
	}
	for _, w := range cfg.Weights() {
		if _, ok := byName[w.Name]; !ok && !w.Optional {
			return fmt.Errorf("export: %s has no tensor %s: it was not trained from %s", stepDir, w.Name, basePath)
		}
	}
	if lora != nil {
		var meta loraMeta
		if raw, ok := st.Extra["trainer"]; ok {
			_ = json.Unmarshal(raw, &meta)
		}
		if meta.Rank == 0 {
			return fmt.Errorf("export: %s has LoRA adapters but no lora_rank / lora_alpha in its trainer state", stepDir)
		}
		if err := mergeLoRA(weights, lora, float32(meta.Alpha/float64(meta.Rank))); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	tensors := make([]ckpt.Tensor, 0, len(weights.Tensors))
	for _, r := range weights.Tensors {
		n := 1
		for _, d := range r.Shape {
			n *= d
		}
		tensors = append(tensors, ckpt.Tensor{Name: r.Name, DType: dtype, Shape: r.Shape, Values: weights.Values[r.Offset : r.Offset+n]})
	}
	files := map[string][]byte{}
	for _, name := range tokenizerFiles {
		b, err := os.ReadFile(filepath.Join(basePath, name))
		if err == nil {
			files[name] = b
		} else if !os.IsNotExist(err) {
			return err
		}
	}
	if len(files) == 0 {
		return fmt.Errorf("export: %s has no tokenizer files (%s)", basePath, strings.Join(tokenizerFiles, ", "))
	}
	cfg.TorchDType = map[ckpt.DType]string{ckpt.BF16: "bfloat16", ckpt.F16: "float16", ckpt.F32: "float32"}[dtype]
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(out)), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := model.WriteHF(tmp, cfg, tensors, files, 0); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("export: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// mergeLoRA adds scale * B A to every adapted weight, in float64 sums.
func mergeLoRA(weights, lora *ckpt.Buffer, scale float32) error {
	base := map[string]ckpt.TensorRef{}
	for _, r := range weights.Tensors {
		base[r.Name] = r
	}
	refs := map[string]ckpt.TensorRef{}
	for _, r := range lora.Tensors {
		refs[r.Name] = r
	}
	for name, a := range refs {
		mod, ok := strings.CutSuffix(name, ".lora_A.weight")
		if !ok {
			continue
		}
		b, ok := refs[mod+".lora_B.weight"]
		if !ok {
			return fmt.Errorf("adapter %s has no lora_B", mod)
		}
		wname := strings.TrimPrefix(mod, "base_model.model.") + ".weight"
		w, ok := base[wname]
		if !ok {
			return fmt.Errorf("adapter %s adapts %s, which the weights do not hold", mod, wname)
		}
		r, in, out := a.Shape[0], a.Shape[1], b.Shape[0]
		if len(w.Shape) != 2 || w.Shape[0] != out || w.Shape[1] != in || b.Shape[1] != r {
			return fmt.Errorf("adapter %s: A %v and B %v do not fit %s %v", mod, a.Shape, b.Shape, wname, w.Shape)
		}
		av, bv := lora.Values[a.Offset:a.Offset+r*in], lora.Values[b.Offset:b.Offset+out*r]
		wv := weights.Values[w.Offset : w.Offset+out*in]
		for o := 0; o < out; o++ {
			for i := 0; i < in; i++ {
				var s float64
				for k := 0; k < r; k++ {
					s += float64(bv[o*r+k]) * float64(av[k*in+i])
				}
				wv[o*in+i] += scale * float32(s)
			}
		}
	}
	return nil
}
