package ckpt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// file builds a safetensors file from a header string and a data length,
// with the true header length.
func file(header string, data int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, data)...)
}

// withLength builds a file whose 8-byte length field is n, followed by rest.
func withLength(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

const refI32 = `{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}`

// hostile are files every reader must reject, with the words the error
// must contain. The "ref:" ones are the reference implementation's own
// rejection tests (safetensors/src/tensor.rs).
var hostile = []struct {
	name string
	data []byte
	want string
}{
	{"zero bytes", nil, "0 bytes, too short"},
	{"seven bytes", []byte("\x10\x00\x00\x00\x00\x00\x00"), "7 bytes, too short"},
	{"header over 100 MB", withLength(MaxHeaderSize+1, "{}"), "exceeds the 100000000-byte limit"},
	{"header length 2^64-1", withLength(1<<64-1, "{}"), "exceeds"},
	{"ref: test_header_too_large", append([]byte("<\x00\x00\x00\x00\xff\xff\xff"), refI32+strings.Repeat("\x00", 16)...), "exceeds"},
	{"header past the end", withLength(100, `{"a":{}}`), "runs past the end of the 16-byte file"},
	{"ref: test_invalid_header_length", []byte("<\x00\x00\x00\x00\x00\x00\x00"), "runs past the end"},
	{"ref: test_invalid_header_non_utf8", []byte("\x01\x00\x00\x00\x00\x00\x00\x00\xff"), "not valid UTF-8"},
	{"non-UTF-8 in a name", file("{\"a\xc3\x28\":{}}", 0), "not valid UTF-8"},
	{"ref: test_invalid_header_not_json", []byte("\x01\x00\x00\x00\x00\x00\x00\x00{"), "not valid JSON"},
	{"invalid JSON", file(`{"a":{"dtype":"F32",`, 0), "not valid JSON"},
	{"empty header", file(``, 0), "not valid JSON"},
	{"spaces only", file(`        `, 0), "not valid JSON"},
	{"array header", file(`[]`, 0), "header is an array, not a JSON object"},
	{"string header", file(`"x"`, 0), "header is a string, not a JSON object"},
	{"number header", file(`12`, 0), "not a JSON object"},
	{"two objects", file(`{}{}`, 0), "data after the top-level object"},
	{"garbage after object", file(`{}x`, 0), "not valid JSON"},
	{"tensor entry not an object", file(`{"a":5}`, 0), `tensor "a" is a number, not a JSON object`},
	{"unknown dtype", file(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, 16), `tensor "a": unknown dtype "F128"`},
	{"sub-byte dtype", file(`{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, 1), "F4 (sub-byte) is not supported"},
	{"dtype not a string", file(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, 4), "dtype is a number"},
	{"missing dtype", file(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, 4), `tensor "a": no dtype`},
	{"missing shape", file(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, 4), "no shape"},
	{"missing offsets", file(`{"a":{"dtype":"F32","shape":[1]}}`, 4), "no data_offsets"},
	{"negative offset", file(`{"a":{"dtype":"U8","shape":[3],"data_offsets":[-1,2]}}`, 3), "holds -1, not a non-negative"},
	{"fractional offset", file(`{"a":{"dtype":"U8","shape":[3],"data_offsets":[0.5,3]}}`, 3), "holds 0.5"},
	{"float-spelled offset", file(`{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3.0]}}`, 3), "holds 3.0"},
	{"offset as string", file(`{"a":{"dtype":"U8","shape":[3],"data_offsets":["0",3]}}`, 3), "holds a string"},
	{"offset past 2^64", file(`{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,18446744073709551616]}}`, 3), "not a non-negative 64-bit integer"},
	{"offset past 2^63", file(`{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,18446744073709551615]}}`, 3), "too large"},
	{"three offsets", file(`{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3,3]}}`, 3), "data_offsets has 3 numbers"},
	{"offsets not an array", file(`{"a":{"dtype":"U8","shape":[3],"data_offsets":{}}}`, 3), `data_offsets is "{", not an array`},
	{"begin after end", file(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[3,0]}}`, 3), "data_offsets [3, 0] begin after they end"},
	{"end past the buffer", file(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}`, 4), "run past the 4-byte data buffer"},
	{"overlapping tensors", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12), `tensor "b": data_offsets [4, 12] overlap tensor "a"`},
	{"same range twice", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 16), "overlap"},
	{"empty tensor inside another", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`, 8), `tensor "b": data_offsets [4, 4] overlap`},
	{"gap between tensors", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, 12), "leave a gap of 4 bytes at 4"},
	{"gap at the start", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "gap of 4 bytes at 0"},
	{"bytes after the last tensor", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 6), "the last 2 bytes of the 6-byte data buffer belong to no tensor"},
	{"ref: test_metadata_incomplete_buffer (extra)", append(file(refI32, 16), "extra_bogus_data_for_polyglot_file"...), "belong to no tensor"},
	{"ref: test_metadata_incomplete_buffer (short)", file(refI32, 14), "run past the 14-byte data buffer"},
	{"truncated data", file(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}}`, 17), `tensor "b": data_offsets [16, 20] run past the 17-byte data buffer (truncated file?)`},
	{"ref: test_invalid_info", []byte("<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0, 4]}}"), "shape [2 2] of I32 is 16 bytes but data_offsets [0, 4] hold 4"},
	{"size mismatch", file(`{"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}}`, 4), "is 6 bytes but"},
	{"negative dimension", file(`{"a":{"dtype":"U8","shape":[-2,3],"data_offsets":[0,6]}}`, 6), "shape holds -2"},
	{"fractional dimension", file(`{"a":{"dtype":"U8","shape":[2.5],"data_offsets":[0,2]}}`, 2), "shape holds 2.5"},
	{"shape overflow", file(`{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}`, 4), "overflows a 64-bit byte count"},
	{"ref: test_validation_overflow (shape)", []byte("O\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,18446744073709551614],\"data_offsets\":[0,16]}}" + strings.Repeat("\x00", 16)), "too large"},
	{"ref: test_validation_overflow (bytes)", []byte("N\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,9223372036854775807],\"data_offsets\":[0,16]}}" + strings.Repeat("\x00", 16)), "overflows"},
	{"shape not an array", file(`{"a":{"dtype":"U8","shape":3,"data_offsets":[0,3]}}`, 3), "shape is a number"},
	{"duplicate tensor", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2), `duplicate key "a" in the header`},
	{"duplicate __metadata__", file(`{"__metadata__":{},"__metadata__":{}}`, 0), `duplicate key "__metadata__"`},
	{"duplicate metadata key", file(`{"__metadata__":{"k":"1","k":"2"}}`, 0), `duplicate key "k" in __metadata__`},
	{"duplicate field", file(`{"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}}`, 1), `tensor "a": duplicate field "dtype"`},
	{"metadata value not a string", file(`{"__metadata__":{"step":5}}`, 0), `__metadata__ "step" is a number: metadata values must be strings`},
	{"metadata not an object", file(`{"__metadata__":["x"]}`, 0), "__metadata__ is an array, not a JSON object"},
	{"ref: test_json_attack", file(jsonAttack(), 16), "overlap"},
}

// jsonAttack is the reference's test_json_attack: ten tensors claiming the
// same 16 bytes.
func jsonAttack() string {
	var parts []string
	for i := range 10 {
		parts = append(parts, fmt.Sprintf(`"weight_%d":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`, i))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestHostileFiles(t *testing.T) {
	dir := t.TempDir()
	for i, c := range hostile {
		p := filepath.Join(dir, fmt.Sprintf("hostile-%02d.safetensors", i))
		if err := os.WriteFile(p, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := Open(p)
		if err == nil {
			f.Close()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, p) || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q, want the path and %q", c.name, msg, c.want)
		}
	}
}

// A length field of up to 100 MB (or 2^64-1) in a tiny file must not make
// the reader allocate it.
func TestLyingLengthsAllocateNothing(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]byte{
		"huge":       withLength(1<<64-1, "{}"),
		"just under": withLength(MaxHeaderSize, "{}"),
		"data":       file(`{"a":{"dtype":"U8","shape":[4000000000],"data_offsets":[0,4000000000]}}`, 8),
	}
	for name, data := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Open(p)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Errorf("%s: opening allocated %d bytes", name, grew)
		}
	}
}

// FuzzParseHeader feeds arbitrary bytes to the parser: it must never panic,
// and what it accepts must satisfy the format's invariants and survive
// being written again.
func FuzzParseHeader(f *testing.F) {
	for _, c := range hostile {
		f.Add(c.data)
	}
	f.Add(refAttnDot0)
	f.Add(refAttn0)
	f.Add(refEmpty)
	f.Add(refEmptyMetadata)
	f.Add(file(`{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"BF16","shape":[0,2],"data_offsets":[4,4]},"c":{"dtype":"BOOL","shape":[],"data_offsets":[4,5]}}`, 5))
	f.Fuzz(checkParse)
}

// FuzzHeaderJSON fuzzes the JSON header with a correct length field, so
// that the fuzzer spends its time on the header's meaning rather than on
// the length, with dataLen bytes of data after it.
func FuzzHeaderJSON(f *testing.F) {
	for _, c := range hostile {
		if len(c.data) >= 8 {
			n := binary.LittleEndian.Uint64(c.data)
			if n <= uint64(len(c.data)-8) {
				f.Add(string(c.data[8:8+n]), uint16(len(c.data)-8-int(n)))
			}
		}
	}
	f.Add(`{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"BF16","shape":[0,2],"data_offsets":[4,4]},"c":{"dtype":"BOOL","shape":[],"data_offsets":[4,5]}}`, uint16(5))
	f.Add(`{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}`, uint16(16))
	f.Fuzz(func(t *testing.T, header string, dataLen uint16) {
		checkParse(t, file(header, int(dataLen)))
	})
}

// checkParse parses b; when the parser accepts it, the format's invariants
// must hold and the tensors must read back the same after being written
// again.
func checkParse(t *testing.T, b []byte) {
	h, err := parseFile(b)
	if err != nil {
		if h != nil {
			t.Fatal("header returned with an error")
		}
		return
	}
	n := binary.LittleEndian.Uint64(b)
	if h.dataStart != 8+int64(n) || n > MaxHeaderSize {
		t.Fatalf("data starts at %d with header length %d", h.dataStart, n)
	}
	bufLen := int64(len(b)) - h.dataStart
	spans := slices.Clone(h.tensors)
	slices.SortFunc(spans, func(a, b TensorInfo) int {
		if a.Begin != b.Begin {
			return cmpInt64(a.Begin, b.Begin)
		}
		return cmpInt64(a.End, b.End)
	})
	var pos int64
	for _, s := range spans {
		if s.Begin != pos || s.End < s.Begin {
			t.Fatalf("tensor %q [%d, %d] does not continue at %d", s.Name, s.Begin, s.End, pos)
		}
		size, ok := byteSize(s.DType, s.Shape)
		if !ok || int64(size) != s.End-s.Begin || s.DType.Size() == 0 {
			t.Fatalf("tensor %q: %s %v in [%d, %d]", s.Name, s.DType, s.Shape, s.Begin, s.End)
		}
		pos = s.End
	}
	if pos != bufLen {
		t.Fatalf("tensors cover %d of %d bytes", pos, bufLen)
	}
	for i, tt := range h.tensors {
		if i > 0 && h.tensors[i-1].Name >= tt.Name {
			t.Fatalf("names not sorted and unique: %q, %q", h.tensors[i-1].Name, tt.Name)
		}
		if h.byName[tt.Name] != i {
			t.Fatalf("index of %q wrong", tt.Name)
		}
	}
	// Written again, the tensors and metadata read back the same.
	var tensors []Tensor
	for _, tt := range h.tensors {
		data := b[h.dataStart+tt.Begin : h.dataStart+tt.End]
		tensors = append(tensors, Tensor{Name: tt.Name, DType: tt.DType, Shape: tt.Shape, Data: data})
	}
	enc, err := newEncoder(tensors, h.metadata)
	if err != nil {
		if tt := h.tensors; len(tt) > 0 && strings.Contains(err.Error(), "empty name") {
			return // the reader accepts "" as a name, as the reference does; the writer refuses it
		}
		t.Fatalf("rewriting an accepted file: %v", err)
	}
	var out bytes.Buffer
	if err := enc.writeTo(&out); err != nil {
		t.Fatal(err)
	}
	h2, err := parseFile(out.Bytes())
	if err != nil {
		t.Fatalf("rewritten file rejected: %v", err)
	}
	if len(h2.tensors) != len(h.tensors) || fmt.Sprint(h2.metadata) != fmt.Sprint(h.metadata) {
		t.Fatalf("rewritten file differs")
	}
	for _, tt := range h.tensors {
		t2 := h2.tensors[h2.byName[tt.Name]]
		if t2.DType != tt.DType || !slices.Equal(t2.Shape, tt.Shape) ||
			!bytes.Equal(out.Bytes()[h2.dataStart+t2.Begin:h2.dataStart+t2.End], b[h.dataStart+tt.Begin:h.dataStart+tt.End]) {
			t.Fatalf("tensor %q differs after rewriting", tt.Name)
		}
	}
}
