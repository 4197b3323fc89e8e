package ckpt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header the reference implementation
// reads or writes, in bytes.
const MaxHeaderSize = 100_000_000

// TensorInfo describes one tensor of a safetensors file.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int // empty for a scalar
	// Begin and End are the tensor's byte range in the file's data buffer,
	// which starts right after the header.
	Begin, End int64
}

// NumElements is the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// header is a parsed and validated safetensors header.
type header struct {
	tensors   []TensorInfo // sorted by name
	byName    map[string]int
	metadata  map[string]string // nil when the file has none
	dataStart int64             // 8 + header length
}

// parseFile parses and validates the header of a whole safetensors file
// held in b, with the reference implementation's rules: a header length of
// at most MaxHeaderSize, a UTF-8 JSON object (JSON whitespace around it is
// padding), known dtypes, shapes whose byte size matches the offsets, and
// offsets that tile the data buffer exactly — no gap, no overlap, no byte
// after the last tensor. Duplicate keys, which the reference's JSON parser
// lets the last one win, are rejected. It never allocates more than a
// bounded multiple of the header's actual bytes.
func parseFile(b []byte) (*header, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("file is %d bytes, too short for the 8-byte header length (not a safetensors file?)", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("header length %d exceeds the %d-byte limit (not a safetensors file?)", n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("header length %d runs past the end of the %d-byte file (truncated?)", n, len(b))
	}
	h, err := parseHeader(b[8 : 8+n])
	if err != nil {
		return nil, err
	}
	h.dataStart = 8 + int64(n)
	if err := h.checkLayout(int64(len(b)) - h.dataStart); err != nil {
		return nil, err
	}
	return h, nil
}

// parseHeader parses the JSON header into tensors (with dtype, shape and
// sizes checked) and metadata; the layout in the buffer is checked later.
func parseHeader(js []byte) (*header, error) {
	if !utf8.Valid(js) {
		return nil, errors.New("header is not valid UTF-8")
	}
	p := newJSONParser(js, "header")
	h := &header{byName: map[string]int{}}
	seen := map[string]bool{}
	err := p.object("header", func(key string) error {
		if seen[key] {
			return fmt.Errorf("duplicate key %q in the header", key)
		}
		seen[key] = true
		if key == "__metadata__" {
			return p.metadata(h)
		}
		t, err := p.tensor(key)
		if err != nil {
			return err
		}
		h.tensors = append(h.tensors, t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, errors.New("header is not valid JSON: data after the top-level object")
	}
	slices.SortFunc(h.tensors, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) })
	for i, t := range h.tensors {
		h.byName[t.Name] = i
	}
	return h, nil
}

// checkLayout checks that the tensors tile [0, bufLen) exactly.
func (h *header) checkLayout(bufLen int64) error {
	order := slices.Clone(h.tensors)
	slices.SortFunc(order, func(a, b TensorInfo) int {
		if a.Begin != b.Begin {
			return cmpInt64(a.Begin, b.Begin)
		}
		if a.End != b.End {
			return cmpInt64(a.End, b.End)
		}
		return strings.Compare(a.Name, b.Name)
	})
	var pos int64
	prev := ""
	for _, t := range order {
		switch {
		case t.End > bufLen:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] run past the %d-byte data buffer (truncated file?)", t.Name, t.Begin, t.End, bufLen)
		case t.Begin < pos:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q, which ends at %d", t.Name, t.Begin, t.End, prev, pos)
		case t.Begin > pos:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a gap of %d bytes at %d not covered by any tensor", t.Name, t.Begin, t.End, t.Begin-pos, pos)
		}
		if t.End > t.Begin {
			pos, prev = t.End, t.Name
		}
	}
	if pos != bufLen {
		return fmt.Errorf("the last %d bytes of the %d-byte data buffer belong to no tensor (extra data after the tensors?)", bufLen-pos, bufLen)
	}
	return nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// jsonParser reads the header token by token so that duplicate keys can be
// caught (encoding/json keeps the last one silently).
type jsonParser struct {
	dec *json.Decoder
	doc string // what is parsed, for messages: "header"
}

func newJSONParser(js []byte, doc string) *jsonParser {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	return &jsonParser{dec: dec, doc: doc}
}

func (p *jsonParser) token() (json.Token, error) {
	t, err := p.dec.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %v", p.doc, err)
	}
	return t, nil
}

// object reads a JSON object, calling field for every key with the decoder
// positioned at the value, which field must consume.
func (p *jsonParser) object(what string, field func(key string) error) error {
	t, err := p.token()
	if err != nil {
		return err
	}
	if t != json.Delim('{') {
		return fmt.Errorf("%s is %s, not a JSON object", what, describe(t))
	}
	for p.dec.More() {
		t, err := p.token()
		if err != nil {
			return err
		}
		key, ok := t.(string)
		if !ok {
			return fmt.Errorf("%s is not valid JSON: key %v", p.doc, t)
		}
		if err := field(key); err != nil {
			return err
		}
	}
	_, err = p.token() // the closing brace
	return err
}

// describe names the kind of a JSON token for error messages.
func describe(t json.Token) string {
	switch v := t.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", t)
}

// skip consumes one JSON value.
func (p *jsonParser) skip() error {
	var raw json.RawMessage
	if err := p.dec.Decode(&raw); err != nil {
		return fmt.Errorf("%s is not valid JSON: %v", p.doc, err)
	}
	return nil
}

// metadata reads "__metadata__": null or an object of strings.
func (p *jsonParser) metadata(h *header) error {
	var raw json.RawMessage
	if err := p.dec.Decode(&raw); err != nil {
		return fmt.Errorf("%s is not valid JSON: %v", p.doc, err)
	}
	if string(raw) == "null" {
		return nil
	}
	sub := newJSONParser(raw, p.doc)
	h.metadata = map[string]string{}
	return sub.object("__metadata__", func(key string) error {
		t, err := sub.token()
		if err != nil {
			return err
		}
		v, ok := t.(string)
		if !ok {
			return fmt.Errorf("__metadata__ %q is %s: metadata values must be strings", key, describe(t))
		}
		if _, dup := h.metadata[key]; dup {
			return fmt.Errorf("duplicate key %q in __metadata__", key)
		}
		h.metadata[key] = v
		return nil
	})
}

// tensor reads one tensor entry and checks its dtype, shape and size.
func (p *jsonParser) tensor(name string) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	var haveDType, haveShape, haveOffsets bool
	var offsets []uint64
	err := p.object(fmt.Sprintf("tensor %q", name), func(key string) error {
		var err error
		switch key {
		case "dtype":
			if haveDType {
				return fmt.Errorf("tensor %q: duplicate field \"dtype\"", name)
			}
			haveDType = true
			tok, err := p.token()
			if err != nil {
				return err
			}
			s, ok := tok.(string)
			if !ok {
				return fmt.Errorf("tensor %q: dtype is %s, not a string", name, describe(tok))
			}
			t.DType = DType(s)
		case "shape":
			if haveShape {
				return fmt.Errorf("tensor %q: duplicate field \"shape\"", name)
			}
			haveShape = true
			var dims []uint64
			if dims, err = p.uints(name, key); err != nil {
				return err
			}
			t.Shape = make([]int, len(dims))
			for i, d := range dims {
				if d > math.MaxInt {
					return fmt.Errorf("tensor %q: shape %v: dimension %d is too large", name, dims, d)
				}
				t.Shape[i] = int(d)
			}
		case "data_offsets":
			if haveOffsets {
				return fmt.Errorf("tensor %q: duplicate field \"data_offsets\"", name)
			}
			haveOffsets = true
			if offsets, err = p.uints(name, key); err != nil {
				return err
			}
		default: // the reference ignores unknown fields
			return p.skip()
		}
		return nil
	})
	if err != nil {
		return t, err
	}
	switch {
	case !haveDType:
		return t, fmt.Errorf("tensor %q: no dtype", name)
	case !haveShape:
		return t, fmt.Errorf("tensor %q: no shape", name)
	case !haveOffsets:
		return t, fmt.Errorf("tensor %q: no data_offsets", name)
	case len(offsets) != 2:
		return t, fmt.Errorf("tensor %q: data_offsets has %d numbers, want [begin, end]", name, len(offsets))
	}
	if err := checkDType(t.DType); err != nil {
		return t, fmt.Errorf("tensor %q: %v", name, err)
	}
	begin, end := offsets[0], offsets[1]
	if begin > end {
		return t, fmt.Errorf("tensor %q: data_offsets [%d, %d] begin after they end", name, begin, end)
	}
	if end > math.MaxInt64 {
		return t, fmt.Errorf("tensor %q: data_offsets [%d, %d] are too large", name, begin, end)
	}
	t.Begin, t.End = int64(begin), int64(end)
	size, ok := byteSize(t.DType, t.Shape)
	if !ok {
		return t, fmt.Errorf("tensor %q: shape %v of %s overflows a 64-bit byte count", name, t.Shape, t.DType)
	}
	if size != end-begin {
		return t, fmt.Errorf("tensor %q: shape %v of %s is %d bytes but data_offsets [%d, %d] hold %d", name, t.Shape, t.DType, size, begin, end, end-begin)
	}
	return t, nil
}

// uints reads an array of non-negative integers.
func (p *jsonParser) uints(name, field string) ([]uint64, error) {
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("tensor %q: %s is %s, not an array of integers", name, field, describe(tok))
	}
	out := []uint64{}
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("tensor %q: %s holds %s, not an integer", name, field, describe(tok))
		}
		v, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %s holds %s, not a non-negative 64-bit integer", name, field, num)
		}
		out = append(out, v)
	}
	_, err = p.token() // the closing bracket
	return out, err
}

// byteSize is the product of shape times the element size, and false when
// it overflows 63 bits.
func byteSize(d DType, shape []int) (uint64, bool) {
	n := uint64(d.Size())
	for _, s := range shape {
		hi, lo := bits.Mul64(n, uint64(s))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		n = lo
	}
	return n, true
}
