package ckpt

import (
	"encoding/binary"
	"math"
)

// Byte-plane shuffle of float32 data, as HDF5's shuffle filter does it for
// 4-byte elements: the n values of a block become four planes of n bytes —
// every value's byte 0 (the low mantissa bits, nearly random), then every
// byte 1, byte 2, and last byte 3 (sign and the top seven exponent bits).
// Weights and optimizer moments of one tensor share a few exponents, so the
// top planes are long runs of a handful of symbols that zstd's entropy coder
// squeezes, while interleaved they hide among the random mantissa bytes.

// shuffle4 writes the byte planes of src into dst, which is 4*len(src)
// bytes: dst[k*n+i] is byte k (little-endian) of src[i].
func shuffle4(dst []byte, src []float32) {
	n := len(src)
	p0, p1, p2, p3 := dst[:n:n], dst[n:2*n:2*n], dst[2*n:3*n:3*n], dst[3*n:4*n:4*n]
	i := 0
	// Eight values at a time: a 4×8 byte transpose in 64-bit registers
	// (SWAR), one 8-byte store per plane — about three times the speed of
	// moving single bytes.
	le := binary.LittleEndian
	for ; i+8 <= n; i += 8 {
		s := src[i : i+8 : i+8]
		u0 := interleave(uint64(math.Float32bits(s[0])) | uint64(math.Float32bits(s[1]))<<32)
		u1 := interleave(uint64(math.Float32bits(s[2])) | uint64(math.Float32bits(s[3]))<<32)
		u2 := interleave(uint64(math.Float32bits(s[4])) | uint64(math.Float32bits(s[5]))<<32)
		u3 := interleave(uint64(math.Float32bits(s[6])) | uint64(math.Float32bits(s[7]))<<32)
		// u0 holds 16-bit units [b0 of values 0,1][b1 of 0,1][b2][b3].
		const lo16, hi16 = 0x0000FFFF0000FFFF, 0xFFFF0000FFFF0000
		v0 := u0&lo16 | (u1&lo16)<<16 // byte 0 of values 0-3, byte 2 of values 0-3
		v1 := u0>>16&lo16 | u1&hi16   // byte 1, byte 3 of values 0-3
		v2 := u2&lo16 | (u3&lo16)<<16 // the same for values 4-7
		v3 := u2>>16&lo16 | u3&hi16
		const lo32, hi32 = 0x00000000FFFFFFFF, 0xFFFFFFFF00000000
		le.PutUint64(p0[i:], v0&lo32|v2<<32)
		le.PutUint64(p1[i:], v1&lo32|v3<<32)
		le.PutUint64(p2[i:], v0>>32|v2&hi32)
		le.PutUint64(p3[i:], v1>>32|v3&hi32)
	}
	for ; i < n; i++ {
		b := math.Float32bits(src[i])
		p0[i], p1[i], p2[i], p3[i] = byte(b), byte(b>>8), byte(b>>16), byte(b>>24)
	}
}

// interleave turns the bytes a0 a1 a2 a3 b0 b1 b2 b3 (low to high) of x
// into a0 b0 a1 b1 a2 b2 a3 b3; both steps swap fields, so applying them
// in the opposite order undoes it (deinterleave).
func interleave(x uint64) uint64 {
	x = x&0xFFFF00000000FFFF | x&0x0000FFFF00000000>>16 | x&0x00000000FFFF0000<<16 // a0 a1 b0 b1 a2 a3 b2 b3
	return x&0xFF0000FFFF0000FF | x&0x00FF000000FF0000>>8 | x&0x0000FF000000FF00<<8
}

func deinterleave(x uint64) uint64 {
	x = x&0xFF0000FFFF0000FF | x&0x00FF000000FF0000>>8 | x&0x0000FF000000FF00<<8
	return x&0xFFFF00000000FFFF | x&0x0000FFFF00000000>>16 | x&0x00000000FFFF0000<<16
}

// unshuffle4 is the inverse of shuffle4 for part of a block: planes holds
// the four planes of a block of n values, and dst receives the values
// from, from+1, ... from+len(dst)-1 of that block.
func unshuffle4(dst []float32, planes []byte, n, from int) {
	m := len(dst)
	p0 := planes[from : from+m : from+m]
	p1 := planes[n+from : n+from+m : n+from+m]
	p2 := planes[2*n+from : 2*n+from+m : 2*n+from+m]
	p3 := planes[3*n+from : 3*n+from+m : 3*n+from+m]
	le := binary.LittleEndian
	i := 0
	for ; i+8 <= m; i += 8 {
		w0, w1, w2, w3 := le.Uint64(p0[i:]), le.Uint64(p1[i:]), le.Uint64(p2[i:]), le.Uint64(p3[i:])
		const lo32, hi32 = 0x00000000FFFFFFFF, 0xFFFFFFFF00000000
		v0, v2 := w0&lo32|w2<<32, w0>>32|w2&hi32
		v1, v3 := w1&lo32|w3<<32, w1>>32|w3&hi32
		const lo16, hi16 = 0x0000FFFF0000FFFF, 0xFFFF0000FFFF0000
		u0 := deinterleave(v0&lo16 | (v1&lo16)<<16)
		u1 := deinterleave(v0>>16&lo16 | v1&hi16)
		u2 := deinterleave(v2&lo16 | (v3&lo16)<<16)
		u3 := deinterleave(v2>>16&lo16 | v3&hi16)
		d := dst[i : i+8 : i+8]
		d[0], d[1] = math.Float32frombits(uint32(u0)), math.Float32frombits(uint32(u0>>32))
		d[2], d[3] = math.Float32frombits(uint32(u1)), math.Float32frombits(uint32(u1>>32))
		d[4], d[5] = math.Float32frombits(uint32(u2)), math.Float32frombits(uint32(u2>>32))
		d[6], d[7] = math.Float32frombits(uint32(u3)), math.Float32frombits(uint32(u3>>32))
	}
	for ; i < m; i++ {
		dst[i] = math.Float32frombits(uint32(p0[i]) | uint32(p1[i])<<8 | uint32(p2[i])<<16 | uint32(p3[i])<<24)
	}
}

// putLE writes src as little-endian float32s into dst (4*len(src) bytes):
// the unshuffled layout, as in a safetensors F32 tensor.
func putLE(dst []byte, src []float32) {
	dst = dst[:4*len(src)]
	for i, f := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(f))
	}
}

// getLE reads little-endian float32s from src into dst.
func getLE(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}
