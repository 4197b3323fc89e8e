package ckpt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Byte vectors from the reference implementation's own tests
// (huggingface/safetensors, safetensors/src/tensor.rs: test_serialization,
// test_serialization_forced_alignement, test_empty), which its serializer
// must produce exactly.
var (
	refAttnDot0 = []byte{ // "attn.0": F32 [1,2,3] = 0..5, no metadata
		64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
		116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
		58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
		101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
		0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
	}
	refAttn0 = []byte{ // "attn0": F32 [1,1,2,3] = 0..5: the header needs 7 spaces of padding
		72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
		121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
		91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
		115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
		32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
		160, 64,
	}
	refEmpty         = []byte{8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32}
	refEmptyMetadata = []byte{ // no tensors, {"framework": "pt"}
		40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
		95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
		116, 34, 125, 125, 32, 32, 32, 32, 32,
	}
)

func zeroToFive() []float32 { return []float32{0, 1, 2, 3, 4, 5} }

func TestWriterMatchesReferenceBytes(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name     string
		tensors  []Tensor
		metadata map[string]string
		want     []byte
	}{
		{"attn.0", []Tensor{{Name: "attn.0", DType: F32, Shape: []int{1, 2, 3}, Values: zeroToFive()}}, nil, refAttnDot0},
		{"attn0", []Tensor{{Name: "attn0", DType: F32, Shape: []int{1, 1, 2, 3}, Values: zeroToFive()}}, nil, refAttn0},
		{"empty", nil, nil, refEmpty},
		{"empty+metadata", nil, map[string]string{"framework": "pt"}, refEmptyMetadata},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name+".safetensors")
		if err := WriteFile(p, c.tensors, c.metadata); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s: wrote\n%q\nthe reference writes\n%q", c.name, got, c.want)
		}
		f, err := Open(p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(c.tensors) > 0 {
			v, err := f.Float32(c.tensors[0].Name, nil)
			if err != nil || !slices.Equal(v, zeroToFive()) {
				t.Errorf("%s: read back %v, %v", c.name, v, err)
			}
		}
		f.Close()
	}
}

// Files the reference implementation's tests deserialize successfully.
func TestReaderAcceptsReferenceFiles(t *testing.T) {
	cases := []struct {
		name  string
		data  string
		shape []int
		bytes int
	}{
		// test_deserialization: a 60-byte header, so the data is not 8-byte aligned.
		{"test_deserialization", "<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}" + strings.Repeat("\x00", 16), []int{2, 2}, 16},
		{"test_empty_shapes_allowed", "8\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}\x00\x00\x00\x00", []int{}, 4},
		{"test_zero_sized_tensor", "<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,0],\"data_offsets\":[0, 0]}}", []int{2, 0}, 0},
		{"test_whitespace_padded_header", "\x06\x00\x00\x00\x00\x00\x00\x00{}\x0D\x20\x09\x0A", nil, -1},
		{"test_whitespace_leading_padded_header", "\x06\x00\x00\x00\x00\x00\x00\x00\x09\x0A{}\x0D\x20", nil, -1},
	}
	dir := t.TempDir()
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, []byte(c.data), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := Open(p)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		ts := f.Tensors()
		if c.bytes < 0 {
			if len(ts) != 0 {
				t.Errorf("%s: %d tensors, want none", c.name, len(ts))
			}
			f.Close()
			continue
		}
		if len(ts) != 1 || ts[0].Name != "test" || ts[0].DType != I32 || !slices.Equal(ts[0].Shape, c.shape) {
			t.Errorf("%s: tensors %+v", c.name, ts)
		}
		b, err := f.Bytes("test")
		if err != nil || len(b) != c.bytes || bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }) {
			t.Errorf("%s: bytes %v, %v", c.name, b, err)
		}
		f.Close()
	}
}

// TestWriterMatchesHandBuiltFile checks the writer against a file built by
// hand from the format: the header JSON written literally (tensors by
// descending dtype alignment, then name, as the reference orders them;
// metadata first), padded with spaces to 8 bytes, then each tensor's
// little-endian bytes from encoding/binary.
func TestWriterMatchesHandBuiltFile(t *testing.T) {
	js := `{"__metadata__":{"format":"pt","note":"q\"x\\y\n"},` +
		`"step":{"dtype":"I64","shape":[],"data_offsets":[0,8]},` +
		`"bias":{"dtype":"F32","shape":[3],"data_offsets":[8,20]},` +
		`"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[20,32]},` +
		`"e":{"dtype":"F16","shape":[0,3],"data_offsets":[32,32]},` +
		`"h":{"dtype":"F16","shape":[2],"data_offsets":[32,36]},` +
		`"mask":{"dtype":"BOOL","shape":[5],"data_offsets":[36,41]}}`
	for len(js)%8 != 0 {
		js += " "
	}
	var want bytes.Buffer
	le := binary.LittleEndian
	want.Write(le.AppendUint64(nil, uint64(len(js))))
	want.WriteString(js)
	want.Write(le.AppendUint64(nil, uint64(0xfffffffffffffff9))) // step = -7
	bias := []float32{0.25, -1e-3, 3e38}
	for _, v := range bias {
		want.Write(le.AppendUint32(nil, math.Float32bits(v)))
	}
	// 1, -2.5, 0.5, 3, -0, 256 in bfloat16: sign | exponent+127 | 7 mantissa bits.
	wBits := []uint16{0x3f80, 0xc020, 0x3f00, 0x4040, 0x8000, 0x4380}
	for _, h := range wBits {
		want.Write(le.AppendUint16(nil, h))
	}
	// 1.5 and -65504 in binary16: sign | exponent+15 | 10 mantissa bits.
	want.Write(le.AppendUint16(nil, 0x3e00))
	want.Write(le.AppendUint16(nil, 0xfbff))
	want.Write([]byte{1, 0, 0, 1, 1})

	tensors := []Tensor{ // deliberately out of order
		{Name: "mask", DType: BOOL, Shape: []int{5}, Data: []byte{1, 0, 0, 1, 1}},
		{Name: "w", DType: BF16, Shape: []int{2, 3}, Values: []float32{1, -2.5, 0.5, 3, float32(math.Copysign(0, -1)), 256}},
		{Name: "e", DType: F16, Shape: []int{0, 3}},
		{Name: "bias", DType: F32, Shape: []int{3}, Values: bias},
		{Name: "h", DType: F16, Shape: []int{2}, Values: []float32{1.5, -65504}},
		{Name: "step", DType: I64, Shape: []int{}, Data: le.AppendUint64(nil, uint64(0xfffffffffffffff9))},
	}
	p := filepath.Join(t.TempDir(), "hand.safetensors")
	if err := WriteFile(p, tensors, map[string]string{"note": "q\"x\\y\n", "format": "pt"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("wrote\n%q\nwant\n%q", got, want.Bytes())
	}

	// The reader parses the hand-built bytes (written independently of the writer).
	p2 := filepath.Join(t.TempDir(), "hand2.safetensors")
	if err := os.WriteFile(p2, want.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p2)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wantInfo := []TensorInfo{
		{"bias", F32, []int{3}, 8, 20},
		{"e", F16, []int{0, 3}, 32, 32},
		{"h", F16, []int{2}, 32, 36},
		{"mask", BOOL, []int{5}, 36, 41},
		{"step", I64, []int{}, 0, 8},
		{"w", BF16, []int{2, 3}, 20, 32},
	}
	gotInfo := f.Tensors()
	if fmt.Sprint(gotInfo) != fmt.Sprint(wantInfo) {
		t.Errorf("tensors\n%v\nwant\n%v", gotInfo, wantInfo)
	}
	if md := f.Metadata(); len(md) != 2 || md["format"] != "pt" || md["note"] != "q\"x\\y\n" {
		t.Errorf("metadata %q", md)
	}
	checks := map[string][]float32{
		"bias": bias, "e": {}, "h": {1.5, -65504}, "mask": {1, 0, 0, 1, 1}, "step": {-7},
		"w": {1, -2.5, 0.5, 3, float32(math.Copysign(0, -1)), 256},
	}
	for name, wantV := range checks {
		v, err := f.Float32(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != len(wantV) {
			t.Fatalf("%s: %v, want %v", name, v, wantV)
		}
		for i := range v {
			if math.Float32bits(v[i]) != math.Float32bits(wantV[i]) {
				t.Errorf("%s[%d] = %v, want %v", name, i, v[i], wantV[i])
			}
		}
	}
}

// refRank is the reference's Dtype enum order (ascending alignment), which
// its writer sorts by, descending, before the names.
var refRank = []DType{BOOL, "F4", "F6_E2M3", "F6_E3M2", U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
	I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64}

var allDTypes = []DType{BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
	I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64}

// TestRoundTripAllDTypes writes a tensor of every dtype with odd shapes and
// reads the bytes back; it checks the header's alignment, space padding and
// order, and the float32 conversion of each type against its definition.
func TestRoundTripAllDTypes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	shapes := [][]int{{}, {0, 3}, {7}, {3, 5}, {2, 1, 3}, {1}}
	var tensors []Tensor
	for i, d := range allDTypes {
		for j, shape := range shapes {
			n := 1
			for _, s := range shape {
				n *= s
			}
			data := make([]byte, n*d.Size())
			for k := range data {
				data[k] = byte(rng.Uint32())
			}
			if d == BOOL {
				for k := range data {
					data[k] &= 1
				}
			}
			// Names of varying length move the data start around.
			name := fmt.Sprintf("layers.%d.%s.t%d%s", i, strings.ToLower(string(d)), j, strings.Repeat("x", (i+j)%5))
			tensors = append(tensors, Tensor{Name: name, DType: d, Shape: shape, Data: data})
		}
	}
	md := map[string]string{"format": "pt", "é": "ünïcode ✓", "empty": ""}
	p := filepath.Join(t.TempDir(), "all.safetensors")
	if err := WriteFile(p, tensors, md); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	if n%8 != 0 {
		t.Errorf("header length %d: data does not start 8-byte aligned", n)
	}
	hdr := raw[8 : 8+n]
	js := bytes.TrimRight(hdr, " ")
	if !json.Valid(js) || js[len(js)-1] != '}' || len(hdr)-len(js) >= 8 {
		t.Errorf("header is not JSON padded with fewer than 8 spaces: %q", hdr[len(js)-1:])
	}
	// Order of the keys in the header: __metadata__, then by descending
	// reference rank, then name; and every tensor aligned to its element size.
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.Token()
	var keys []string
	var offsets = map[string][2]int64{}
	for dec.More() {
		k, _ := dec.Token()
		var v struct {
			DataOffsets [2]int64 `json:"data_offsets"`
		}
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		offsets[k.(string)] = v.DataOffsets
	}
	rank := func(d DType) int { return slices.Index(refRank, d) }
	want := []string{"__metadata__"}
	sorted := slices.Clone(tensors)
	slices.SortFunc(sorted, func(a, b Tensor) int {
		if rank(a.DType) != rank(b.DType) {
			return rank(b.DType) - rank(a.DType)
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, s := range sorted {
		want = append(want, s.Name)
		if (8+int64(n)+offsets[s.Name][0])%int64(s.DType.Size()) != 0 {
			t.Errorf("%s (%s) starts at file offset %d, not aligned", s.Name, s.DType, 8+int64(n)+offsets[s.Name][0])
		}
	}
	if !slices.Equal(keys, want) {
		t.Errorf("header order\n%q\nwant\n%q", keys, want)
	}

	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata(); fmt.Sprint(got) != fmt.Sprint(md) {
		t.Errorf("metadata %q, want %q", got, md)
	}
	if len(f.Tensors()) != len(tensors) {
		t.Errorf("%d tensors read, %d written", len(f.Tensors()), len(tensors))
	}
	for _, w := range tensors {
		info, ok := f.Tensor(w.Name)
		if !ok || info.DType != w.DType || !slices.Equal(info.Shape, w.Shape) {
			t.Fatalf("%s: read %+v", w.Name, info)
		}
		b, err := f.Bytes(w.Name)
		if err != nil || !bytes.Equal(b, w.Data) {
			t.Fatalf("%s: bytes differ (%v)", w.Name, err)
		}
		v, err := f.Float32(w.Name, nil)
		wantV, convertible := refDecode(w.DType, w.Data)
		if !convertible {
			if err == nil {
				t.Errorf("%s: %s converted to float32, want an error", w.Name, w.DType)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != len(wantV) {
			t.Fatalf("%s: %d values, want %d", w.Name, len(v), len(wantV))
		}
		for k := range v {
			if !sameFloat(float64(v[k]), wantV[k]) {
				t.Fatalf("%s[%d] = %v, want %v", w.Name, k, v[k], wantV[k])
			}
		}
	}
}

// refDecode decodes little-endian elements by each type's definition, in
// float64 then rounded to float32 once.
func refDecode(d DType, b []byte) ([]float64, bool) {
	switch d {
	case F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, C64:
		return nil, false
	}
	size := d.Size()
	out := make([]float64, len(b)/size)
	le := binary.LittleEndian
	for i := range out {
		e := b[i*size : (i+1)*size]
		switch d {
		case BOOL:
			out[i] = float64(e[0])
		case U8:
			out[i] = float64(e[0])
		case I8:
			out[i] = float64(int8(e[0]))
		case U16:
			out[i] = float64(le.Uint16(e))
		case I16:
			out[i] = float64(int16(le.Uint16(e)))
		case U32:
			out[i] = float64(le.Uint32(e))
		case I32:
			out[i] = float64(int32(le.Uint32(e)))
		case U64:
			out[i] = float64(float32(le.Uint64(e))) // float32(u64) rounds once
		case I64:
			out[i] = float64(float32(int64(le.Uint64(e))))
		case F16:
			out[i] = f16Format.value(le.Uint16(e))
		case BF16:
			out[i] = bf16Format.value(le.Uint16(e))
		case F32:
			out[i] = float64(math.Float32frombits(le.Uint32(e)))
		case F64:
			out[i] = math.Float64frombits(le.Uint64(e))
		}
		out[i] = float64(float32(out[i]))
	}
	return out, true
}

func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Float64bits(a) == math.Float64bits(b)
}

// TestNumpyReadsOurFiles parses a written file with an independent Python
// reader (json + struct + numpy.frombuffer), as a second implementation of
// the format. python3-numpy comes with `make deps`.
func TestNumpyReadsOurFiles(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("%s missing: run `make deps`", py)
	}
	le := binary.LittleEndian
	tensors := []Tensor{
		{Name: "model.embed_tokens.weight", DType: BF16, Shape: []int{3, 2}, Values: []float32{1, -2, 0.5, 1e-3, 3e38, -0.0078125}},
		{Name: "audio_tower.conv1.bias", DType: F32, Shape: []int{5}, Values: []float32{0.1, -7.25, 1e-30, float32(math.Inf(1)), 42}},
		{Name: "f16", DType: F16, Shape: []int{2, 2}, Values: []float32{0.1, 65504, -6e-8, 2049}},
		{Name: "f64", DType: F64, Shape: []int{3}, Data: le.AppendUint64(le.AppendUint64(le.AppendUint64(nil, math.Float64bits(math.Pi)), math.Float64bits(-1e300)), math.Float64bits(5e-324))},
		{Name: "ids", DType: I64, Shape: []int{2}, Data: le.AppendUint64(le.AppendUint64(nil, uint64(1<<40)), uint64(0xffffffffffffffff))},
		{Name: "i32", DType: I32, Shape: []int{}, Data: le.AppendUint32(nil, 0x80000000)},
		{Name: "u8", DType: U8, Shape: []int{3}, Data: []byte{0, 128, 255}},
		{Name: "mask", DType: BOOL, Shape: []int{1, 3}, Data: []byte{1, 0, 1}},
		{Name: "empty", DType: F32, Shape: []int{0, 4}},
	}
	p := filepath.Join(t.TempDir(), "np.safetensors")
	if err := WriteFile(p, tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", `
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
assert (8 + n) % 8 == 0, "data not 8-byte aligned"
text = raw[8:8 + n].decode("utf-8")
assert text.rstrip(" ").endswith("}") and len(text) - len(text.rstrip(" ")) < 8
header = json.loads(text)
assert header.pop("__metadata__") == {"format": "pt"}
data = raw[8 + n:]
spans = sorted(tuple(v["data_offsets"]) for v in header.values())
pos = 0
for b, e in spans:
    assert b == pos, "offsets do not tile the buffer"
    pos = e
assert pos == len(data), "bytes after the last tensor"
types = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1", "BOOL": "?"}
for name in sorted(header):
    info = header[name]
    b, e = info["data_offsets"]
    if info["dtype"] == "BF16":
        a = (np.frombuffer(data[b:e], "<u2").astype("<u4") << 16).view("<f4")
    else:
        a = np.frombuffer(data[b:e], types[info["dtype"]])
    a = a.reshape(info["shape"])
    print(name, info["dtype"], list(a.shape), *[repr(float(x)) if a.dtype.kind == "f" else str(int(x)) for x in a.ravel()])
`, p).CombinedOutput()
	if err != nil {
		t.Fatalf("python reader: %v\n%s(run `make deps` for python3-numpy)", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := map[string][]string{}
	for _, tt := range tensors {
		vals := []string{}
		if tt.Values != nil {
			for _, v := range tt.Values {
				vals = append(vals, numpyRepr(tt.DType, v))
			}
		}
		want[tt.Name] = vals
	}
	want["f64"] = []string{"3.141592653589793", "-1e+300", "5e-324"}
	want["ids"] = []string{"1099511627776", "-1"}
	want["i32"] = []string{"-2147483648"}
	want["u8"] = []string{"0", "128", "255"}
	want["mask"] = []string{"1", "0", "1"}
	if len(lines) != len(tensors) {
		t.Fatalf("python read %d tensors, wrote %d:\n%s", len(lines), len(tensors), out)
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		name := fields[0]
		var tt *Tensor
		for i := range tensors {
			if tensors[i].Name == name {
				tt = &tensors[i]
			}
		}
		if tt == nil {
			t.Fatalf("python found unknown tensor %q", name)
		}
		shape := strings.ReplaceAll(fmt.Sprint(tt.Shape), " ", ", ")
		rest := strings.Join(fields[1:], " ")
		exp := strings.Join(append([]string{string(tt.DType), shape}, want[name]...), " ")
		if rest != exp {
			t.Errorf("python read %s as\n  %s\nwant\n  %s", name, rest, exp)
		}
	}
}

// numpyRepr is Python's repr(float(x)) of the value v has after narrowing
// to d by the definition of the format (nearest, ties to even).
func numpyRepr(d DType, v float32) string {
	x := float64(v)
	switch d {
	case BF16, F16:
		f := bf16Format
		if d == F16 {
			f = f16Format
		}
		pos := make([]float64, f.infBits())
		for i := range pos {
			pos[i] = f.value(uint16(i))
		}
		x = f.value(refNarrow(f, pos, v))
	}
	switch {
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	}
	return pyFloat(x)
}

// pyFloat formats a finite x as Python's repr(float) does: the shortest
// digits that round-trip, in exponent form outside [1e-4, 1e16).
func pyFloat(x float64) string {
	if x == 0 {
		if math.Signbit(x) {
			return "-0.0"
		}
		return "0.0"
	}
	ax := math.Abs(x)
	if ax >= 1e16 || ax < 1e-4 {
		s := strconv.FormatFloat(x, 'e', -1, 64) // 1e+300, 5e-324, 1.5e-07
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		exp = strings.TrimLeft(exp[1:], "0")
		if len(exp) < 2 {
			exp = "0" + exp
		}
		return mant + "e" + string(sign) + exp
	}
	s := strconv.FormatFloat(x, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
