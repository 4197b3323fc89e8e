package ckpt

import (
	"encoding/binary"
	"fmt"
	"math"
)

// BF16ToFloat32 widens a bfloat16 (the top 16 bits of a float32) exactly.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 narrows f to bfloat16, rounding to nearest with ties to
// even as IEEE 754 does: values past the largest finite bfloat16 by half a
// unit or more become ±Inf, ±Inf stays ±Inf, and a NaN stays a NaN with its
// sign, made quiet.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep sign and top payload, set the quiet bit
		return uint16(b>>16) | 0x0040
	}
	// Adding 0x7fff (plus the lowest kept bit, for ties to even) carries into
	// the kept half exactly when the dropped half is above, or at and odd,
	// the midpoint; a carry out of the mantissa bumps the exponent, up to Inf.
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// F16ToFloat32 widens an IEEE 754 binary16 exactly, subnormals included; a
// NaN keeps its sign and payload.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0: // normal: rebias 15 -> 127
		return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal, man × 2^-24: normalise into a float32 normal.
	e := uint32(127 - 14)
	for man&0x400 == 0 {
		man <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
}

// Float32ToF16 narrows f to IEEE 754 binary16, rounding to nearest with
// ties to even: results below the smallest normal become subnormals (or
// ±0), values past 65504 by half a unit or more become ±Inf, and a NaN
// stays a NaN with its sign, made quiet.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00 | uint16(man>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // binary16 biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal result: the value is m × 2^(exp-150) with the implicit
		// bit, and a binary16 subnormal counts units of 2^-24.
		if e < -10 { // below half the smallest subnormal (float32 subnormals too)
			return sign
		}
		m := man | 0x800000
		shift := uint(14 - e) // 14..24
		r := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && r&1 == 1 {
			r++ // may reach 0x400, the smallest normal: still the right bits
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && r&1 == 1 {
		r++ // a carry out of the mantissa bumps the exponent, up to Inf
	}
	return sign | uint16(r)
}

// BF16SliceToFloat32 widens src into dst; the lengths must be equal.
func BF16SliceToFloat32(dst []float32, src []uint16) {
	checkLen(len(dst), len(src))
	for i, h := range src {
		dst[i] = BF16ToFloat32(h)
	}
}

// Float32SliceToBF16 narrows src into dst; the lengths must be equal.
func Float32SliceToBF16(dst []uint16, src []float32) {
	checkLen(len(dst), len(src))
	for i, f := range src {
		dst[i] = Float32ToBF16(f)
	}
}

// F16SliceToFloat32 widens src into dst; the lengths must be equal.
func F16SliceToFloat32(dst []float32, src []uint16) {
	checkLen(len(dst), len(src))
	for i, h := range src {
		dst[i] = F16ToFloat32(h)
	}
}

// Float32SliceToF16 narrows src into dst; the lengths must be equal.
func Float32SliceToF16(dst []uint16, src []float32) {
	checkLen(len(dst), len(src))
	for i, f := range src {
		dst[i] = Float32ToF16(f)
	}
}

func checkLen(dst, src int) {
	if dst != src {
		panic(fmt.Sprintf("ckpt: conversion of %d values into %d", src, dst))
	}
}

// DecodeFloat32 converts src, little-endian elements of type d, to float32
// in dst, which must hold exactly len(src)/d.Size() values. Floating-point
// types round to nearest; integers convert as float32(x) does (64-bit
// integers above 2^24 lose precision); BOOL gives 0 or 1. The F8 types and
// C64 are not converted.
func DecodeFloat32(dst []float32, src []byte, d DType) error {
	size := d.Size()
	if size == 0 {
		return checkDType(d)
	}
	if len(src) != len(dst)*size {
		return fmt.Errorf("converting %s to float32: %d bytes for %d values", d, len(src), len(dst))
	}
	le := binary.LittleEndian
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat32(le.Uint16(src[2*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToFloat32(le.Uint16(src[2*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case BOOL:
		for i, b := range src {
			dst[i] = 0
			if b != 0 {
				dst[i] = 1
			}
		}
	case U8:
		for i, b := range src {
			dst[i] = float32(b)
		}
	case I8:
		for i, b := range src {
			dst[i] = float32(int8(b))
		}
	case U16:
		for i := range dst {
			dst[i] = float32(le.Uint16(src[2*i:]))
		}
	case I16:
		for i := range dst {
			dst[i] = float32(int16(le.Uint16(src[2*i:])))
		}
	case U32:
		for i := range dst {
			dst[i] = float32(le.Uint32(src[4*i:]))
		}
	case I32:
		for i := range dst {
			dst[i] = float32(int32(le.Uint32(src[4*i:])))
		}
	case U64:
		for i := range dst {
			dst[i] = float32(le.Uint64(src[8*i:]))
		}
	case I64:
		for i := range dst {
			dst[i] = float32(int64(le.Uint64(src[8*i:])))
		}
	default:
		return fmt.Errorf("converting %s to float32 is not supported", d)
	}
	return nil
}

// EncodeFloat32 converts src to little-endian elements of type d (F32,
// F16, BF16 or F64) in dst, which must be exactly len(src)*d.Size() bytes.
// F16 and BF16 round to nearest, ties to even.
func EncodeFloat32(dst []byte, src []float32, d DType) error {
	switch d {
	case F32, F16, BF16, F64:
	default:
		if err := checkDType(d); err != nil {
			return err
		}
		return fmt.Errorf("converting float32 to %s is not supported (only F32, F16, BF16, F64)", d)
	}
	if len(dst) != len(src)*d.Size() {
		return fmt.Errorf("converting float32 to %s: %d bytes for %d values", d, len(dst), len(src))
	}
	le := binary.LittleEndian
	switch d {
	case F32:
		for i, f := range src {
			le.PutUint32(dst[4*i:], math.Float32bits(f))
		}
	case BF16:
		for i, f := range src {
			le.PutUint16(dst[2*i:], Float32ToBF16(f))
		}
	case F16:
		for i, f := range src {
			le.PutUint16(dst[2*i:], Float32ToF16(f))
		}
	case F64:
		for i, f := range src {
			le.PutUint64(dst[8*i:], math.Float64bits(float64(f)))
		}
	}
	return nil
}
