package ckpt

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Dir is the weights of a Hugging Face model directory: model.safetensors,
// or the shards that model.safetensors.index.json names. Its methods are
// safe for concurrent use.
type Dir struct {
	path    string
	files   []*File // sorted by path
	tensors []TensorInfo
	byName  map[string]*File
}

// OpenDir opens the weights in dir as transformers finds them:
// model.safetensors if present, otherwise model.safetensors.index.json and
// the shards its weight_map names. Every shard is opened and validated, and
// the index must agree with the shards exactly — every tensor it names in
// the file it names, no tensor in a shard it does not list there; all
// disagreements are reported in one error.
func OpenDir(dir string) (*Dir, error) {
	single := filepath.Join(dir, SingleFileName)
	if st, err := os.Stat(single); err == nil && !st.IsDir() {
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		d := &Dir{path: dir, files: []*File{f}, tensors: f.Tensors(), byName: map[string]*File{}}
		for _, t := range d.tensors {
			d.byName[t.Name] = f
		}
		return d, nil
	}
	indexPath := filepath.Join(dir, IndexFileName)
	js, err := os.ReadFile(indexPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("safetensors directory %s: neither %s nor %s found", dir, SingleFileName, IndexFileName)
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors index: %w", err)
	}
	weightMap, err := parseIndex(js)
	if err != nil {
		return nil, fmt.Errorf("safetensors index %s: %w", indexPath, err)
	}
	d, err := openShards(dir, weightMap)
	if err != nil {
		return nil, fmt.Errorf("safetensors index %s: %w", indexPath, err)
	}
	return d, nil
}

// parseIndex reads the weight_map of an index file: a JSON object with a
// "weight_map" object of tensor name -> shard file name (a plain name in
// the same directory) and an optional "metadata" object, which is not used.
func parseIndex(js []byte) (map[string]string, error) {
	p := newJSONParser(js, "index")
	var weightMap map[string]string
	seen := map[string]bool{}
	err := p.object("index", func(key string) error {
		if seen[key] {
			return fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		if key != "weight_map" {
			return p.skip()
		}
		weightMap = map[string]string{}
		return p.object("weight_map", func(name string) error {
			t, err := p.token()
			if err != nil {
				return err
			}
			file, ok := t.(string)
			if !ok {
				return fmt.Errorf("weight_map: tensor %q maps to %s, not a file name", name, describe(t))
			}
			if _, dup := weightMap[name]; dup {
				return fmt.Errorf("weight_map: tensor %q is listed twice", name)
			}
			if file == "" || file == "." || file == ".." || strings.ContainsAny(file, `/\`) {
				return fmt.Errorf("weight_map: tensor %q maps to %q, not a file name in the directory", name, file)
			}
			weightMap[name] = file
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, errors.New("index is not valid JSON: data after the top-level object")
	}
	if weightMap == nil {
		return nil, errors.New(`no "weight_map"`)
	}
	return weightMap, nil
}

// maxProblems bounds how many disagreements one error lists.
const maxProblems = 20

// openShards opens the files weightMap names and checks them against it.
func openShards(dir string, weightMap map[string]string) (*Dir, error) {
	want := map[string][]string{} // file -> tensor names the index puts there
	for name, file := range weightMap {
		want[file] = append(want[file], name)
	}
	d := &Dir{path: dir, byName: map[string]*File{}}
	var problems []string
	for _, file := range slices.Sorted(maps.Keys(want)) {
		names := want[file]
		slices.Sort(names)
		f, err := Open(filepath.Join(dir, file))
		if errors.Is(err, os.ErrNotExist) {
			problems = append(problems, fmt.Sprintf("shard %s is missing (it should hold %d tensors, e.g. %q)", file, len(names), names[0]))
			continue
		}
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		d.files = append(d.files, f)
		for _, name := range names {
			if _, ok := f.info(name); !ok {
				problems = append(problems, fmt.Sprintf("tensor %q: the index puts it in %s, which does not hold it", name, file))
			}
		}
		for _, t := range f.h.tensors {
			switch owner, listed := weightMap[t.Name]; {
			case !listed:
				problems = append(problems, fmt.Sprintf("tensor %q: %s holds it but the index does not list it", t.Name, file))
			case owner != file:
				problems = append(problems, fmt.Sprintf("tensor %q: %s holds it but the index puts it in %s", t.Name, file, owner))
			default:
				d.byName[t.Name] = f
				d.tensors = append(d.tensors, t)
			}
		}
	}
	if len(problems) > 0 {
		d.Close()
		msg := fmt.Sprintf("%d disagreements between the index and the shards:", len(problems))
		if len(problems) == 1 {
			msg = "the index and the shards disagree:"
		}
		for i, p := range problems {
			if i == maxProblems {
				msg += fmt.Sprintf("\n  ... and %d more", len(problems)-maxProblems)
				break
			}
			msg += "\n  " + p
		}
		return nil, errors.New(msg)
	}
	slices.SortFunc(d.tensors, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) })
	return d, nil
}

// Path is the directory the weights were opened from.
func (d *Dir) Path() string { return d.path }

// Tensors lists the tensors of all files, sorted by name; Begin and End are
// offsets in the tensor's own file (see Lookup).
func (d *Dir) Tensors() []TensorInfo { return cloneInfos(d.tensors) }

// Lookup finds a tensor and the file that holds it; the File belongs to
// the Dir, which closes it.
func (d *Dir) Lookup(name string) (TensorInfo, *File, bool) {
	f, ok := d.byName[name]
	if !ok {
		return TensorInfo{}, nil, false
	}
	t, _ := f.Tensor(name)
	return t, f, true
}

// Bytes returns the named tensor's raw bytes, a view into its file's
// mapping (see File.Bytes).
func (d *Dir) Bytes(name string) ([]byte, error) {
	_, f, ok := d.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("safetensors directory %s: tensor %q: %w", d.path, name, ErrNoTensor)
	}
	return f.Bytes(name)
}

// Float32 converts the named tensor to float32 (see File.Float32).
func (d *Dir) Float32(name string, dst []float32) ([]float32, error) {
	_, f, ok := d.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("safetensors directory %s: tensor %q: %w", d.path, name, ErrNoTensor)
	}
	return f.Float32(name, dst)
}

// Close closes every file.
func (d *Dir) Close() error {
	var errs []error
	for _, f := range d.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
