package cpu

// This is the only file with cgo: OpenBLAS's cblas_sgemm, and the calls
// that set and report its thread count.

/*
#cgo pkg-config: openblas
#include <cblas.h>
*/
import "C"

import (
	"strings"
	"unsafe"
)

// sgemm is one cblas_sgemm call, row-major:
// c (m, n) = alpha * op(a) (m, k) * op(b) (k, n) + beta * c.
// The caller has checked that a, b and c cover their matrices (see
// checkMatrix): a wrong length here would corrupt memory, not panic.
// m, n and k are all positive.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(unsafe.Pointer(unsafe.SliceData(a))), C.blasint(lda),
		(*C.float)(unsafe.Pointer(unsafe.SliceData(b))), C.blasint(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(unsafe.SliceData(c))), C.blasint(ldc))
}

// setBLASThreads sets the number of threads OpenBLAS uses for one call.
// The setting is process-wide.
func setBLASThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// blasThreads reports OpenBLAS's current thread count.
func blasThreads() int { return int(C.openblas_get_num_threads()) }

// blasConfig names the OpenBLAS build and the kernel it chose for this
// CPU, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64".
func blasConfig() string {
	return strings.TrimSpace(C.GoString(C.openblas_get_config()))
}
