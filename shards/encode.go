package shards

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/klauspost/compress/zlib"
)

// DType is the on-disk element type of the log-mel features.
type DType string

// The feature dtypes. float32 rebuilds the padded log-mel bit for bit;
// float16 halves the size at about 1e-3 relative precision.
const (
	Float32 DType = "float32"
	Float16 DType = "float16"
)

// ParseDType checks a --dtype value.
func ParseDType(s string) (DType, error) {
	switch DType(s) {
	case Float32, Float16:
		return DType(s), nil
	}
	return "", fmt.Errorf("unknown feature dtype %q: use float32 or float16", s)
}

func (d DType) size() int {
	if d == Float16 {
		return 2
	}
	return 4
}

// deflateLevel trades writer-side CPU for size: log-mel mantissas are
// noise, so higher levels buy little (measured in BENCHMARKS.md).
const deflateLevel = 1

// encodeChunk turns frame-major float32 values into the bytes of one HDF5
// chunk with the shuffle and deflate filters applied, exactly as HDF5's own
// filter pipeline would have produced them: little-endian elements, bytes
// shuffled by significance, then a zlib stream. Workers call it in parallel
// so the single HDF5 writer only copies bytes.
func encodeChunk(vals []float32, dt DType) ([]byte, error) {
	size := dt.size()
	n := len(vals)
	raw := make([]byte, n*size)
	if dt == Float16 {
		for i, v := range vals {
			binary.LittleEndian.PutUint16(raw[2*i:], float32ToHalf(v))
		}
	} else {
		for i, v := range vals {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
	}
	shuf := make([]byte, len(raw))
	for i := 0; i < n; i++ {
		for b := 0; b < size; b++ {
			shuf[b*n+i] = raw[i*size+b]
		}
	}
	var buf bytes.Buffer
	buf.Grow(len(raw)/2 + 64)
	zw, err := zlib.NewWriterLevel(&buf, deflateLevel)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(shuf); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
