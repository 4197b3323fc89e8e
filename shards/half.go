package shards

import "math"

// float32ToHalf rounds f to the nearest IEEE 754 binary16 value, ties to
// even, keeping signed zeros, infinities and NaN (quietened).
func float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff:
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	case exp == 0 && mant == 0:
		return sign
	}
	// Unbiased exponent; float32 subnormals are far below half's range and
	// round to zero through the shift below.
	e := exp - 127
	if exp == 0 {
		e = -126
	} else {
		mant |= 0x800000 // implicit leading one
	}
	// Half normal: e in [-14, 15]; keep 10 fraction bits (shift 13).
	// Half subnormal: e < -14; shift further so the value is m * 2^-24.
	shift := 13
	halfExp := e + 15
	if halfExp <= 0 {
		shift = 13 + 1 - halfExp
		halfExp = 0
		if shift > 24+1 {
			return sign // rounds to zero even at the tie point
		}
	}
	m := mant >> uint(shift)
	rem := mant & (1<<uint(shift) - 1)
	halfway := uint32(1) << uint(shift-1)
	if rem > halfway || (rem == halfway && m&1 == 1) {
		m++
	}
	if halfExp == 0 {
		// Subnormal (m may have carried into the smallest normal, which
		// the bit layout represents correctly).
		return sign | uint16(m)
	}
	// m includes the implicit bit (0x400); a carry to 0x800 bumps the
	// exponent.
	if m >= 0x800 {
		m >>= 1
		halfExp++
	}
	if halfExp >= 0x1f {
		return sign | 0x7c00
	}
	return sign | uint16(halfExp)<<10 | uint16(m&0x3ff)
}

// halfToFloat32 widens a binary16 value exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := int(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | mant<<13)
}
