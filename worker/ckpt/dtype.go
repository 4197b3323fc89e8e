// Package ckpt reads and writes model weights: safetensors files as
// Hugging Face transformers and vLLM load them (one model.safetensors, or
// shards behind model.safetensors.index.json), and earl's checkpoints.
//
// Reading memory-maps the file: Open and OpenDir validate the header as the
// reference implementation (the Rust safetensors crate) does, File.Bytes hands
// out views into the mapping without copying, and Float32 converts any
// floating-point or integer tensor to float32. WriteFile and WriteDir write
// files the reference reads back byte for byte. docs/safetensors.md
// describes the format rules.
package ckpt

import "fmt"

// DType is a safetensors element type, spelled as in the header ("BF16").
type DType string

// The element types of the safetensors format that earl handles. Every one
// can be read as raw bytes and written; Float32 and DecodeFloat32 convert all
// but the F8 types and C64, and EncodeFloat32 writes F32, F16, BF16 and F64.
// The sub-byte types of the format (F4, F6_E2M3, F6_E3M2) are rejected.
const (
	BOOL        DType = "BOOL"
	U8          DType = "U8"
	I8          DType = "I8"
	F8_E5M2     DType = "F8_E5M2"
	F8_E4M3     DType = "F8_E4M3"
	F8_E8M0     DType = "F8_E8M0"
	F8_E4M3FNUZ DType = "F8_E4M3FNUZ"
	F8_E5M2FNUZ DType = "F8_E5M2FNUZ"
	I16         DType = "I16"
	U16         DType = "U16"
	F16         DType = "F16"
	BF16        DType = "BF16"
	I32         DType = "I32"
	U32         DType = "U32"
	F32         DType = "F32"
	C64         DType = "C64"
	F64         DType = "F64"
	I64         DType = "I64"
	U64         DType = "U64"
)

// dtypeInfo is the element size in bytes and the rank of each type in the
// reference implementation's Dtype enum, which orders the types by
// alignment; writers lay tensors out by descending rank, then by name, so
// every tensor starts aligned to its element size.
var dtypeInfo = map[DType]struct{ size, rank int }{
	BOOL:        {1, 0},
	U8:          {1, 4},
	I8:          {1, 5},
	F8_E5M2:     {1, 6},
	F8_E4M3:     {1, 7},
	F8_E8M0:     {1, 8},
	F8_E4M3FNUZ: {1, 9},
	F8_E5M2FNUZ: {1, 10},
	I16:         {2, 11},
	U16:         {2, 12},
	F16:         {2, 13},
	BF16:        {2, 14},
	I32:         {4, 15},
	U32:         {4, 16},
	F32:         {4, 17},
	C64:         {8, 18},
	F64:         {8, 19},
	I64:         {8, 20},
	U64:         {8, 21},
}

// subByte are the format's types narrower than a byte, which earl rejects.
var subByte = map[DType]bool{"F4": true, "F6_E2M3": true, "F6_E3M2": true}

// Size is the size of one element in bytes, or 0 for a type earl does not
// know.
func (d DType) Size() int { return dtypeInfo[d].size }

// Valid reports whether earl handles the type.
func (d DType) Valid() bool { return dtypeInfo[d].size != 0 }

// checkDType says why d cannot be used, or returns nil.
func checkDType(d DType) error {
	switch {
	case d.Valid():
		return nil
	case subByte[d]:
		return fmt.Errorf("dtype %s (sub-byte) is not supported by earl", d)
	default:
		return fmt.Errorf("unknown dtype %q", string(d))
	}
}
