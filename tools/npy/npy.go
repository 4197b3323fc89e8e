// Package npy writes arrays in NumPy's .npy format (version 1.0), so earl's
// outputs load with numpy.load for parity checks against Python stacks.
package npy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// WriteFloat32 writes data as a C-ordered little-endian float32 array of
// the given shape.
func WriteFloat32(w io.Writer, shape []int, data []float32) error {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("npy: negative dimension in shape %v", shape)
		}
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("npy: shape %v holds %d values, data has %d", shape, n, len(data))
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	hdr := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	// Magic (6) + version (2) + header length (2) + header, padded with
	// spaces and a final newline to a multiple of 64 bytes.
	total := 10 + len(hdr) + 1
	pad := (64 - total%64) % 64
	hdr += strings.Repeat(" ", pad) + "\n"
	if len(hdr) > math.MaxUint16 {
		return fmt.Errorf("npy: header too long for format 1.0")
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("\x93NUMPY\x01\x00")
	binary.Write(bw, binary.LittleEndian, uint16(len(hdr)))
	bw.WriteString(hdr)
	var b [4]byte
	for _, v := range data {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		bw.Write(b[:])
	}
	return bw.Flush()
}

// SaveFloat32 writes a .npy file through a temporary name, so a failed
// write never leaves a truncated file behind.
func SaveFloat32(path string, shape []int, data []float32) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	err = WriteFloat32(f, shape, data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadFloat32 reads a little-endian float32 (or float64, converted) .npy
// file in C order and returns its shape and values.
func ReadFloat32(path string) ([]int, []float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, nil, fmt.Errorf("%s: not a .npy file", path)
	}
	var hlen, off int
	switch b[6] {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(b[8:])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, nil, fmt.Errorf("%s: truncated header", path)
		}
		hlen, off = int(binary.LittleEndian.Uint32(b[8:])), 12
	default:
		return nil, nil, fmt.Errorf("%s: .npy version %d not supported", path, b[6])
	}
	if off+hlen > len(b) {
		return nil, nil, fmt.Errorf("%s: truncated header", path)
	}
	hdr := string(b[off : off+hlen])
	descr := field(hdr, "descr")
	if strings.Contains(hdr, "'fortran_order': True") {
		return nil, nil, fmt.Errorf("%s: Fortran-ordered arrays are not supported; save with np.ascontiguousarray", path)
	}
	var shape []int
	sh := field(hdr, "shape")
	for _, p := range strings.Split(strings.Trim(sh, "()"), ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		var d int
		if _, err := fmt.Sscanf(p, "%d", &d); err != nil || d < 0 {
			return nil, nil, fmt.Errorf("%s: bad shape %q", path, sh)
		}
		shape = append(shape, d)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := b[off+hlen:]
	out := make([]float32, n)
	switch descr {
	case "'<f4'":
		if len(data) != 4*n {
			return nil, nil, fmt.Errorf("%s: %d data bytes for shape %v of float32", path, len(data), shape)
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case "'<f8'":
		if len(data) != 8*n {
			return nil, nil, fmt.Errorf("%s: %d data bytes for shape %v of float64", path, len(data), shape)
		}
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:])))
		}
	default:
		return nil, nil, fmt.Errorf("%s: dtype %s not supported (use float32 or float64)", path, descr)
	}
	return shape, out, nil
}

// field extracts a value from the header's Python dict literal.
func field(hdr, key string) string {
	i := strings.Index(hdr, "'"+key+"':")
	if i < 0 {
		return ""
	}
	rest := strings.TrimSpace(hdr[i+len(key)+3:])
	if strings.HasPrefix(rest, "(") {
		return rest[:strings.Index(rest, ")")+1]
	}
	if j := strings.IndexAny(rest, ",}"); j >= 0 {
		return strings.TrimSpace(rest[:j])
	}
	return rest
}
