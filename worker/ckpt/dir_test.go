package ckpt

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// shardTensors are five F32 tensors of 40, 40, 100, 24 and 16 bytes, in the
// order a model lists them.
func shardTensors() []Tensor {
	mk := func(name string, n int) Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(len(name)*100 + i)
		}
		return Tensor{Name: name, DType: F32, Shape: []int{n}, Values: v}
	}
	return []Tensor{mk("t0.weight", 10), mk("t1.weight", 10), mk("big", 25), mk("t3", 6), mk("t4", 4)}
}

// With a 64-byte limit, huggingface_hub's split_state_dict_into_shards_factory
// (worked by hand): t0 (40) opens shard A; t1 (40) would make 80 > 64, so A
// closes and t1 opens B; big (100 > 64) gets its own shard, listed before
// B; t3 (24) joins B (64, not over); t4 (16) would make 80, so B closes and
// t4 opens the last. Shards: [t0], [big], [t1, t3], [t4]; total 220 bytes.
const wantIndex = `{
  "metadata": {
    "total_size": 220
  },
  "weight_map": {
    "big": "model-00002-of-00004.safetensors",
    "t0.weight": "model-00001-of-00004.safetensors",
    "t1.weight": "model-00003-of-00004.safetensors",
    "t3": "model-00003-of-00004.safetensors",
    "t4": "model-00004-of-00004.safetensors"
  }
}
`

func TestWriteDirShards(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	tensors := shardTensors()
	if err := WriteDir(dir, tensors, map[string]string{"step": "7"}, 64); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	wantNames := []string{"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
		"model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors", IndexFileName}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("files %q, want %q", names, wantNames)
	}
	index, _ := os.ReadFile(filepath.Join(dir, IndexFileName))
	if string(index) != wantIndex {
		t.Errorf("index\n%s\nwant (json.dumps(indent=2, sort_keys=True) of transformers)\n%s", index, wantIndex)
	}
	f, err := Open(filepath.Join(dir, "model-00003-of-00004.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if md := f.Metadata(); len(md) != 2 || md["format"] != "pt" || md["step"] != "7" {
		t.Errorf("shard metadata %q, want format=pt added to step=7", md)
	}
	f.Close()

	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got []string
	for _, ti := range d.Tensors() {
		got = append(got, ti.Name)
	}
	if !slices.Equal(got, []string{"big", "t0.weight", "t1.weight", "t3", "t4"}) {
		t.Errorf("tensors %q", got)
	}
	for _, w := range tensors {
		v, err := d.Float32(w.Name, nil)
		if err != nil || !slices.Equal(v, w.Values) {
			t.Errorf("%s: read %v, %v", w.Name, v, err)
		}
		info, file, ok := d.Lookup(w.Name)
		if !ok || !slices.Equal(info.Shape, w.Shape) || file == nil {
			t.Errorf("%s: lookup %+v %v", w.Name, info, ok)
		}
	}
	if _, err := d.Float32("nope", nil); !errors.Is(err, ErrNoTensor) {
		t.Errorf("missing tensor: %v", err)
	}

	// Saving again in one shard leaves only model.safetensors.
	if err := WriteDir(dir, tensors, nil, 0); err != nil {
		t.Fatal(err)
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != SingleFileName {
		t.Errorf("after a single-file save: %v", entries)
	}
	d2, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d2.Tensors()) != 5 {
		t.Errorf("%d tensors", len(d2.Tensors()))
	}
	d2.Close()
}

// writeShards writes the sharded directory and returns a function editing
// its index.
func writeShards(t *testing.T) (string, func(func(map[string]string))) {
	dir := t.TempDir()
	if err := WriteDir(dir, shardTensors(), nil, 64); err != nil {
		t.Fatal(err)
	}
	edit := func(change func(map[string]string)) {
		p := filepath.Join(dir, IndexFileName)
		var index struct {
			Metadata  map[string]any    `json:"metadata"`
			WeightMap map[string]string `json:"weight_map"`
		}
		b, _ := os.ReadFile(p)
		if err := json.Unmarshal(b, &index); err != nil {
			t.Fatal(err)
		}
		change(index.WeightMap)
		b, _ = json.Marshal(index)
		os.WriteFile(p, b, 0o644)
	}
	return dir, edit
}

func TestOpenDirDisagreements(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(dir string, edit func(func(map[string]string)))
		want  []string
	}{
		{"index names a missing tensor", func(_ string, edit func(func(map[string]string))) {
			edit(func(m map[string]string) { m["ghost.weight"] = "model-00001-of-00004.safetensors" })
		}, []string{`tensor "ghost.weight": the index puts it in model-00001-of-00004.safetensors, which does not hold it`}},
		{"shard holds an unlisted tensor", func(_ string, edit func(func(map[string]string))) {
			edit(func(m map[string]string) { delete(m, "t3") })
		}, []string{`tensor "t3": model-00003-of-00004.safetensors holds it but the index does not list it`}},
		{"tensor in the wrong shard", func(_ string, edit func(func(map[string]string))) {
			edit(func(m map[string]string) { m["t1.weight"] = "model-00004-of-00004.safetensors" })
		}, []string{`tensor "t1.weight": the index puts it in model-00004-of-00004.safetensors, which does not hold it`,
			`tensor "t1.weight": model-00003-of-00004.safetensors holds it but the index puts it in model-00004-of-00004.safetensors`}},
		{"missing shard", func(dir string, _ func(func(map[string]string))) {
			os.Remove(filepath.Join(dir, "model-00002-of-00004.safetensors"))
		}, []string{`shard model-00002-of-00004.safetensors is missing (it should hold 1 tensors, e.g. "big")`}},
		{"corrupt shard", func(dir string, _ func(func(map[string]string))) {
			os.WriteFile(filepath.Join(dir, "model-00004-of-00004.safetensors"), []byte("garbage"), 0o644)
		}, []string{"model-00004-of-00004.safetensors: file is 7 bytes, too short"}},
		{"all at once", func(dir string, edit func(func(map[string]string))) {
			edit(func(m map[string]string) {
				m["ghost"] = "model-00003-of-00004.safetensors"
				delete(m, "t3")
			})
			os.Remove(filepath.Join(dir, "model-00004-of-00004.safetensors"))
		}, []string{"3 disagreements", `"ghost"`, `"t3"`, "model-00004-of-00004.safetensors is missing"}},
		{"path in the weight map", func(_ string, edit func(func(map[string]string))) {
			edit(func(m map[string]string) { m["t4"] = "../model-00004-of-00004.safetensors" })
		}, []string{`not a file name in the directory`}},
	}
	for _, c := range cases {
		dir, edit := writeShards(t)
		c.spoil(dir, edit)
		d, err := OpenDir(dir)
		if err == nil {
			d.Close()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, filepath.Join(dir, IndexFileName)) {
			t.Errorf("%s: error does not name the index: %s", c.name, msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error\n%s\nlacks %q", c.name, msg, w)
			}
		}
	}
}

func TestOpenDirBadIndex(t *testing.T) {
	cases := map[string]string{
		`{"metadata": {}}`:                          `no "weight_map"`,
		`[]`:                                        "index is an array, not a JSON object",
		`{"weight_map": {"a": 1}}`:                  `tensor "a" maps to a number`,
		`{"weight_map": {"a": "x", "a": "y"}}`:      `tensor "a" is listed twice`,
		`{"weight_map": {}, "weight_map": {}}`:      `duplicate key "weight_map"`,
		`{"weight_map": {"a": "x.safetensors"}`:     "index is not valid JSON",
		`{"weight_map": {"a": "x.safetensors"}} {}`: "data after the top-level object",
	}
	for js, want := range cases {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, IndexFileName), []byte(js), 0o644)
		_, err := OpenDir(dir)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), IndexFileName) {
			t.Errorf("%s: error %v, want %q", js, err, want)
		}
	}
	_, err := OpenDir(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "neither model.safetensors nor model.safetensors.index.json") {
		t.Errorf("empty directory: %v", err)
	}
}

func TestWriteRejectsBadTensors(t *testing.T) {
	cases := []struct {
		tensors []Tensor
		want    string
	}{
		{[]Tensor{{Name: "a", DType: F32, Shape: []int{2}, Values: []float32{1}}}, "needs 2 values, have 1"},
		{[]Tensor{{Name: "a", DType: BF16, Shape: []int{2}, Data: []byte{1, 2, 3}}}, "is 4 bytes, data has 3"},
		{[]Tensor{{Name: "a", DType: I32, Shape: []int{1}, Values: []float32{1}}}, "cannot be written as I32"},
		{[]Tensor{{Name: "a", DType: F32, Shape: []int{1}, Values: []float32{1}, Data: []byte{0, 0, 0, 0}}}, "both Data and Values"},
		{[]Tensor{{Name: "a", DType: "F128", Shape: []int{1}}}, `unknown dtype "F128"`},
		{[]Tensor{{Name: "a", DType: F32, Shape: []int{-1}}}, "negative dimension"},
		{[]Tensor{{Name: "a", DType: U8, Shape: []int{math.MaxInt, 3}}}, "overflows"},
		{[]Tensor{{Name: "", DType: U8, Shape: []int{0}}}, "empty name"},
		{[]Tensor{{Name: "__metadata__", DType: U8, Shape: []int{0}}}, "cannot name a tensor"},
		{[]Tensor{{Name: "a", DType: U8, Shape: []int{0}}, {Name: "a", DType: U8, Shape: []int{0}}}, `"a" appears twice`},
	}
	dir := t.TempDir()
	for _, c := range cases {
		p := filepath.Join(dir, "x.safetensors")
		err := WriteFile(p, c.tensors, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%+v: error %v, want %q", c.tensors, err, c.want)
		}
		err = WriteDir(dir, c.tensors, nil, 0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("WriteDir %+v: error %v, want %q", c.tensors, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed writes left files: %v", entries)
	}
}
