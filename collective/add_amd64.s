//go:build !purego

#include "textflag.h"

// func add32SSE(dst, a, b []float32)
//
// dst[i] = a[i] + b[i] for i < len(dst) &^ 15 (the caller adds the rest);
// len(a) and len(b) are at least that. SSE2, which every amd64 CPU has:
// four 4-lane ADDPS per iteration. Each element is one IEEE addition, so
// the result is bit-identical to the Go loop's; dst may be a or b.
TEXT ·add32SSE(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ a_base+24(FP), SI
	MOVQ b_base+48(FP), DX
	SHRQ $4, CX
	JZ   done

loop:
	MOVUPS (SI), X0
	MOVUPS 16(SI), X1
	MOVUPS 32(SI), X2
	MOVUPS 48(SI), X3
	MOVUPS (DX), X4
	MOVUPS 16(DX), X5
	MOVUPS 32(DX), X6
	MOVUPS 48(DX), X7
	ADDPS  X4, X0
	ADDPS  X5, X1
	ADDPS  X6, X2
	ADDPS  X7, X3
	MOVUPS X0, (DI)
	MOVUPS X1, 16(DI)
	MOVUPS X2, 32(DI)
	MOVUPS X3, 48(DI)
	ADDQ   $64, SI
	ADDQ   $64, DX
	ADDQ   $64, DI
	DECQ   CX
	JNZ    loop

done:
	RET
