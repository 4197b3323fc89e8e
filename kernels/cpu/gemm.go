package cpu

// gemm is sgemm split across the pool: the larger of c's dimensions is cut
// into one slab per goroutine (in multiples of 16, the kernels' tile), and
// each slab is one single-threaded cblas_sgemm call. A product too small to
// pay for the split is one call on the calling goroutine.
//
// OpenBLAS could split the product itself, with its own threads, at about
// the same speed; but its threads then spin for about 0.1 s after every
// call (measured: 80 ms of CPU during a 300 ms sleep after one sgemm),
// taking a core from the Go loops that run between the products. So the
// Device sets OpenBLAS to one thread and owns the cores itself.
//
// If bias is not nil, each slab first copies it into its rows of c (beta
// is then 1): the bias pass stays in the slab's cache.
func (d *Device) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, bias []float32) {
	j := &d.jobs.gemm
	*j = gemmJob{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
		a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, bias: bias, byRows: m >= n}
	const tile, minMACs = 16, 1 << 19 // a slab of at least ~4 us
	if j.byRows {
		d.pool.do((m+tile-1)/tile, minMACs/(tile*n*k)+1, j)
	} else {
		d.pool.do((n+tile-1)/tile, minMACs/(tile*m*k)+1, j)
	}
}

type gemmJob struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c, bias  []float32
	lda, ldb, ldc  int
	byRows         bool
}

// run computes tiles [lo, hi) of c's rows (byRows) or columns.
func (j *gemmJob) run(_, lo, hi int) {
	const tile = 16
	a, b, c := j.a, j.b, j.c
	m, n := j.m, j.n
	lo *= tile
	if j.byRows {
		hi = min(hi*tile, m)
		if j.transA {
			a = a[lo:]
		} else {
			a = a[lo*j.lda:]
		}
		c, m = c[lo*j.ldc:], hi-lo
		if j.bias != nil {
			for i := range m {
				copy(c[i*j.ldc:i*j.ldc+n], j.bias)
			}
		}
	} else {
		hi = min(hi*tile, n)
		if j.transB {
			b = b[lo*j.ldb:]
		} else {
			b = b[lo:]
		}
		c, n = c[lo:], hi-lo
		if j.bias != nil {
			for i := range m {
				copy(c[i*j.ldc:i*j.ldc+n], j.bias[lo:hi])
			}
		}
	}
	sgemm(j.transA, j.transB, m, n, j.k, j.alpha, a, j.lda, b, j.ldb, j.beta, c, j.ldc)
}
