package ckpt

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"sync"
)

// ErrClosed is returned (wrapped) by the methods of a closed File or Dir.
var ErrClosed = errors.New("file already closed")

// ErrNoTensor is returned (wrapped) when a tensor name is not in the file.
var ErrNoTensor = errors.New("no such tensor")

// File is one open safetensors file, memory-mapped read-only (read into
// memory on systems without mmap). Its methods are safe for concurrent use.
type File struct {
	path string
	h    *header

	mu     sync.RWMutex // Close takes it for writing, readers for reading
	data   []byte       // the whole file
	closed bool
}

// Open maps the safetensors file at path and validates its header (see
// docs/safetensors.md): a file Open accepts is one the reference
// implementation accepts, except that duplicate JSON keys are rejected.
// Errors name the file and the problem.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors %s: not a regular file", path)
	}
	if st.Size() > math.MaxInt {
		return nil, fmt.Errorf("safetensors %s: %d bytes is too large to map", path, st.Size())
	}
	data, err := mapFile(f, int(st.Size()))
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: mapping: %w", path, err)
	}
	h, err := parseFile(data)
	if err != nil {
		unmapFile(data)
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	return &File{path: path, h: h, data: data}, nil
}

// Path is the path the file was opened with.
func (f *File) Path() string { return f.path }

// Tensors lists the tensors, sorted by name.
func (f *File) Tensors() []TensorInfo { return cloneInfos(f.h.tensors) }

// Tensor returns the named tensor's description.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	t, ok := f.info(name)
	t.Shape = slices.Clone(t.Shape)
	return t, ok
}

// info is Tensor without copying the shape.
func (f *File) info(name string) (TensorInfo, bool) {
	i, ok := f.h.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.h.tensors[i], true
}

// cloneInfos copies tensor descriptions, shapes included, so that callers
// cannot change the File's.
func cloneInfos(ts []TensorInfo) []TensorInfo {
	out := slices.Clone(ts)
	for i := range out {
		out[i].Shape = slices.Clone(out[i].Shape)
	}
	return out
}

// Metadata is a copy of the header's "__metadata__" map; nil when the file
// has none.
func (f *File) Metadata() map[string]string { return maps.Clone(f.h.metadata) }

// lookup finds a tensor for a read, with f.mu held for reading.
func (f *File) lookup(name string) (TensorInfo, error) {
	if f.closed {
		return TensorInfo{}, fmt.Errorf("safetensors %s: %w", f.path, ErrClosed)
	}
	t, ok := f.info(name)
	if !ok {
		return t, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, ErrNoTensor)
	}
	return t, nil
}

// Bytes returns the named tensor's raw little-endian bytes: a read-only
// view into the mapping, not a copy. Writing to it faults; it is valid
// until Close, and using it after Close faults too.
func (f *File) Bytes(name string) ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return f.view(t), nil
}

func (f *File) view(t TensorInfo) []byte {
	b, e := f.h.dataStart+t.Begin, f.h.dataStart+t.End
	return f.data[b:e:e]
}

// Float32 converts the named tensor to float32 (see DecodeFloat32 for the
// types). With dst nil it allocates the result; otherwise dst must have
// exactly the tensor's number of elements and is filled and returned, so a
// tensor can be loaded straight into a view of a larger buffer.
func (f *File) Float32(name string, dst []float32) ([]float32, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	n := t.NumElements()
	if dst == nil {
		dst = make([]float32, n)
	} else if len(dst) != n {
		return nil, fmt.Errorf("safetensors %s: tensor %q: shape %v has %d elements, destination %d", f.path, name, t.Shape, n, len(dst))
	}
	if err := DecodeFloat32(dst, f.view(t), t.DType); err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, err)
	}
	return dst, nil
}

// Close unmaps the file. Views from Bytes become invalid; later calls of
// Bytes and Float32 return ErrClosed. Closing again does nothing.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	data := f.data
	f.data = nil
	if err := unmapFile(data); err != nil {
		return fmt.Errorf("safetensors %s: unmapping: %w", f.path, err)
	}
	return nil
}
