package ckpt

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"unsafe"
)

func writeSmall(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "m.safetensors")
	err := WriteFile(p, []Tensor{
		{Name: "a", DType: F32, Shape: []int{2, 2}, Values: []float32{1, 2, 3, 4}},
		{Name: "b", DType: BF16, Shape: []int{3}, Values: []float32{-1, 0.5, 8}},
		{Name: "c", DType: C64, Shape: []int{1}, Data: make([]byte, 8)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Bytes is a view into the mapping: two calls alias the same memory, the
// view lies inside the mapped file at the tensor's offset, and it costs no
// allocation.
func TestBytesIsAView(t *testing.T) {
	f, err := Open(writeSmall(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b1, _ := f.Bytes("a")
	b2, _ := f.Bytes("a")
	if &b1[0] != &b2[0] {
		t.Error("two Bytes calls returned different memory")
	}
	info, _ := f.Tensor("a")
	base := uintptr(unsafe.Pointer(unsafe.SliceData(f.data)))
	if got := uintptr(unsafe.Pointer(&b1[0])) - base; int64(got) != f.h.dataStart+info.Begin {
		t.Errorf("view at file offset %d, want %d", got, f.h.dataStart+info.Begin)
	}
	if cap(b1) != len(b1) {
		t.Errorf("view has capacity %d beyond its %d bytes", cap(b1), len(b1))
	}
	if n := testing.AllocsPerRun(100, func() { f.Bytes("a") }); n != 0 {
		t.Errorf("Bytes allocates %v times per call", n)
	}
	dst := make([]float32, 3)
	if n := testing.AllocsPerRun(100, func() { f.Float32("b", dst) }); n != 0 {
		t.Errorf("Float32 into dst allocates %v times per call", n)
	}
}

func TestFloat32Destination(t *testing.T) {
	f, err := Open(writeSmall(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flat := make([]float32, 10)
	got, err := f.Float32("b", flat[4:7])
	if err != nil || &got[0] != &flat[4] || !slices.Equal(flat, []float32{0, 0, 0, 0, -1, 0.5, 8, 0, 0, 0}) {
		t.Errorf("into a view: %v, %v", flat, err)
	}
	if _, err := f.Float32("b", flat[:2]); err == nil {
		t.Error("a destination of the wrong length was accepted")
	}
	if _, err := f.Float32("c", nil); err == nil {
		t.Error("C64 converted to float32")
	}
	if _, err := f.Float32("zz", nil); !errors.Is(err, ErrNoTensor) {
		t.Errorf("missing tensor: %v", err)
	}
}

func TestUseAfterClose(t *testing.T) {
	f, err := Open(writeSmall(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Bytes("a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Bytes after Close: %v", err)
	}
	if _, err := f.Float32("a", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Float32 after Close: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if len(f.Tensors()) != 3 { // the header stays readable
		t.Error("Tensors after Close")
	}
}

// Readers in parallel with Close either finish or get ErrClosed; none faults.
func TestConcurrentReadsAndClose(t *testing.T) {
	f, err := Open(writeSmall(t))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				v, err := f.Float32("a", nil)
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
					return
				}
				if v[3] != 4 {
					t.Errorf("read %v", v)
					return
				}
			}
		})
	}
	f.Close()
	wg.Wait()
}

// Overwriting a file from views of its own mapping works: the new file is
// written aside and renamed, so the mapped pages are never truncated (the
// reference's issue #762).
func TestRewriteMappedFile(t *testing.T) {
	p := writeSmall(t)
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	var tensors []Tensor
	for _, ti := range f.Tensors() {
		b, _ := f.Bytes(ti.Name)
		tensors = append(tensors, Tensor{Name: ti.Name + ".copy", DType: ti.DType, Shape: ti.Shape, Data: b})
	}
	if err := WriteFile(p, tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	g, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	v, err := g.Float32("a.copy", nil)
	if err != nil || !slices.Equal(v, []float32{1, 2, 3, 4}) {
		t.Errorf("rewritten: %v, %v", v, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "nope.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("a directory opened")
	}
}

func TestDecodeEncodeErrors(t *testing.T) {
	if err := DecodeFloat32(make([]float32, 2), make([]byte, 6), F32); err == nil {
		t.Error("length mismatch accepted")
	}
	if err := EncodeFloat32(make([]byte, 4), []float32{1}, I32); err == nil {
		t.Error("float32 -> I32 accepted")
	}
	if err := EncodeFloat32(make([]byte, 4), []float32{1}, "F4"); err == nil {
		t.Error("float32 -> F4 accepted")
	}
	b := make([]byte, 8)
	if err := EncodeFloat32(b, []float32{float32(math.Pi)}, F64); err != nil || math.Float64frombits(uint64(b[0])|uint64(b[1])<<8|uint64(b[2])<<16|uint64(b[3])<<24|uint64(b[4])<<32|uint64(b[5])<<40|uint64(b[6])<<48|uint64(b[7])<<56) != float64(float32(math.Pi)) {
		t.Errorf("F64 encoding: %v %v", b, err)
	}
}
