// fakecuda.c: a stand-in libcuda.so.1 for running collective/nccl's tests
// on a machine without a GPU (make check-cuda). It is NOT a CUDA
// implementation: "device memory" is host memory, every stream is a host
// thread running its queue in order, and the only kernel it can launch is
// the backend's own earl_scale_f32 (emulated on the host). What it checks
// is earl's side of the contract: every device range earl touches lies in
// a live allocation (out-of-bounds access aborts the test with a
// message), asynchronous work runs in stream order and completes only
// when its event says so, the current context is set on the calling
// thread, and kernel parameters have the layout of the PTX entry.
//
// Only the functions collective/nccl calls are implemented; any other
// entry point is missing, and the dynamic linker stops the test with a
// "symbol lookup error" naming it if it is ever called.
//
// Environment: FAKE_CUDA_DEVICES (default 2) devices are visible.

#define _GNU_SOURCE
#include <cuda.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 16

static void die(const char *fmt, const char *what, uintptr_t p, size_t n) {
	fprintf(stderr, "fakecuda: ");
	fprintf(stderr, fmt, what, (unsigned long)p, (unsigned long)n);
	fprintf(stderr, "\n");
	abort();
}

// ---- allocations: a list, checked on every access ----

typedef struct alloc {
	uintptr_t p;
	size_t n;
	struct alloc *next;
} alloc;

static pthread_mutex_t alloc_mu = PTHREAD_MUTEX_INITIALIZER;
static alloc *allocs;

// fakecuda_check aborts unless [p, p+n) lies in one live allocation;
// exported for fakenccl.c.
void fakecuda_check(uintptr_t p, size_t n, const char *what) {
	if (n == 0)
		return;
	pthread_mutex_lock(&alloc_mu);
	for (alloc *a = allocs; a; a = a->next) {
		if (p >= a->p && p + n <= a->p + a->n) {
			pthread_mutex_unlock(&alloc_mu);
			return;
		}
	}
	pthread_mutex_unlock(&alloc_mu);
	die("%s: device range [0x%lx, +%lu bytes) is not inside any live allocation", what, p, n);
}

// ---- contexts: one primary context per device, current per thread ----

typedef struct fctx {
	int dev;
	int refs;
} fctx;

static fctx ctxs[MAX_DEVICES];
static __thread fctx *current;

static int ndevices(void) {
	const char *s = getenv("FAKE_CUDA_DEVICES");
	int n = s ? atoi(s) : 2;
	return n < 0 ? 0 : n > MAX_DEVICES ? MAX_DEVICES : n;
}

// fakecuda_current_device is the device of the calling thread's current
// context, -1 without one; exported for fakenccl.c.
int fakecuda_current_device(void) { return current ? current->dev : -1; }

static CUresult need_ctx(void) { return current ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT; }

CUresult cuInit(unsigned int flags) { return flags ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS; }

CUresult cuDeviceGetCount(int *n) {
	*n = ndevices();
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *d, int ordinal) {
	if (ordinal < 0 || ordinal >= ndevices())
		return CUDA_ERROR_INVALID_DEVICE;
	*d = ordinal;
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) {
	if (d < 0 || d >= ndevices())
		return CUDA_ERROR_INVALID_DEVICE;
	ctxs[d].dev = d;
	__atomic_add_fetch(&ctxs[d].refs, 1, __ATOMIC_SEQ_CST);
	*c = (CUcontext)&ctxs[d];
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice d) {
	if (d < 0 || d >= ndevices())
		return CUDA_ERROR_INVALID_DEVICE;
	if (__atomic_sub_fetch(&ctxs[d].refs, 1, __ATOMIC_SEQ_CST) < 0)
		die("%s: primary context of device released more often than retained (0x%lx, %lu)", "cuDevicePrimaryCtxRelease", 0, (size_t)d);
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext c) {
	current = (fctx *)c;
	return CUDA_SUCCESS;
}

// ---- memory ----

CUresult cuMemAlloc(CUdeviceptr *p, size_t n) {
	if (need_ctx())
		return CUDA_ERROR_INVALID_CONTEXT;
	if (n == 0)
		return CUDA_ERROR_INVALID_VALUE;
	void *m = malloc(n);
	if (!m)
		return CUDA_ERROR_OUT_OF_MEMORY;
	memset(m, 0xff, n); // like real device memory, never zero by luck: 0xffffffff is a NaN
	alloc *a = malloc(sizeof *a);
	a->p = (uintptr_t)m;
	a->n = n;
	pthread_mutex_lock(&alloc_mu);
	a->next = allocs;
	allocs = a;
	pthread_mutex_unlock(&alloc_mu);
	*p = (CUdeviceptr)m;
	return CUDA_SUCCESS;
}

CUresult cuMemFree(CUdeviceptr p) {
	pthread_mutex_lock(&alloc_mu);
	for (alloc **a = &allocs; *a; a = &(*a)->next) {
		if ((*a)->p == (uintptr_t)p) {
			alloc *dead = *a;
			*a = dead->next;
			pthread_mutex_unlock(&alloc_mu);
			free((void *)dead->p);
			free(dead);
			return CUDA_SUCCESS;
		}
	}
	pthread_mutex_unlock(&alloc_mu);
	return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t n) {
	if (need_ctx())
		return CUDA_ERROR_INVALID_CONTEXT;
	fakecuda_check(dst, n, "cuMemcpyHtoD destination");
	memcpy((void *)dst, src, n);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t n) {
	if (need_ctx())
		return CUDA_ERROR_INVALID_CONTEXT;
	fakecuda_check(src, n, "cuMemcpyDtoH source");
	memcpy(dst, (void *)src, n);
	return CUDA_SUCCESS;
}

// ---- streams: a worker thread per stream runs its queue in order ----

typedef struct item {
	void (*fn)(void *);
	void *arg;
	struct item *next;
} item;

typedef struct fstream {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	item *head, *tail;
	int quit;
} fstream;

static void *worker(void *arg) {
	fstream *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->head && !s->quit)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->head) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		item *it = s->head;
		pthread_mutex_unlock(&s->mu);
		it->fn(it->arg); // runs before the item leaves the queue: later work waits
		pthread_mutex_lock(&s->mu);
		s->head = it->next;
		if (!s->head)
			s->tail = NULL;
		pthread_mutex_unlock(&s->mu);
		free(it);
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	return NULL;
}

// fakecuda_enqueue queues fn(arg) on stream s (NULL: run it now);
// exported for fakenccl.c.
int fakecuda_enqueue(void *stream, void (*fn)(void *), void *arg) {
	fstream *s = stream;
	if (!s) {
		fn(arg);
		return 0;
	}
	item *it = malloc(sizeof *it);
	it->fn = fn;
	it->arg = arg;
	it->next = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->quit) {
		pthread_mutex_unlock(&s->mu);
		free(it);
		return -1;
	}
	if (s->tail)
		s->tail->next = it;
	else
		s->head = it;
	s->tail = it;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

CUresult cuStreamCreate(CUstream *out, unsigned int flags) {
	(void)flags;
	if (need_ctx())
		return CUDA_ERROR_INVALID_CONTEXT;
	fstream *s = calloc(1, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_t th;
	if (pthread_create(&th, NULL, worker, s) != 0)
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_detach(th);
	*out = (CUstream)s;
	return CUDA_SUCCESS;
}

// cuStreamDestroy returns at once, as CUDA's does; the worker finishes
// the queue and frees the stream.
CUresult cuStreamDestroy(CUstream st) {
	fstream *s = (fstream *)st;
	if (!s)
		return CUDA_ERROR_INVALID_HANDLE;
	pthread_mutex_lock(&s->mu);
	s->quit = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return CUDA_SUCCESS;
}

// ---- events ----

typedef struct fevent {
	atomic_int pending;
} fevent;

CUresult cuEventCreate(CUevent *e, unsigned int flags) {
	(void)flags;
	if (need_ctx())
		return CUDA_ERROR_INVALID_CONTEXT;
	*e = (CUevent)calloc(1, sizeof(fevent));
	return CUDA_SUCCESS;
}

CUresult cuEventDestroy(CUevent e) {
	free(e);
	return CUDA_SUCCESS;
}

static void event_done(void *e) { atomic_store(&((fevent *)e)->pending, 0); }

CUresult cuEventRecord(CUevent e, CUstream s) {
	atomic_store(&((fevent *)e)->pending, 1);
	fakecuda_enqueue(s, event_done, e);
	return CUDA_SUCCESS;
}

CUresult cuEventQuery(CUevent e) {
	return atomic_load(&((fevent *)e)->pending) ? CUDA_ERROR_NOT_READY : CUDA_SUCCESS;
}

// ---- asynchronous copies and sets ----

typedef struct copy_args {
	uintptr_t dst, src;
	size_t n;
	uint32_t v;
} copy_args;

static void do_copy(void *a) {
	copy_args *c = a;
	memmove((void *)c->dst, (void *)c->src, c->n);
	free(c);
}

CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
	if (need_ctx())
		return CUDA_ERROR_INVALID_CONTEXT;
	fakecuda_check(dst, n, "cuMemcpyDtoDAsync destination");
	fakecuda_check(src, n, "cuMemcpyDtoDAsync source");
	if (dst < src + n && src < dst + n && dst != src)
		die("%s: overlapping copy [0x%lx, +%lu) (undefined in CUDA)", "cuMemcpyDtoDAsync", dst, n);
	copy_args *c = malloc(sizeof *c);
	*c = (copy_args){.dst = dst, .src = src, .n = n};
	fakecuda_enqueue(s, do_copy, c);
	return CUDA_SUCCESS;
}

static void do_set32(void *a) {
	copy_args *c = a;
	uint32_t *p = (uint32_t *)c->dst;
	for (size_t i = 0; i < c->n; i++)
		p[i] = c->v;
	free(c);
}

CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, CUstream s) {
	if (need_ctx())
		return CUDA_ERROR_INVALID_CONTEXT;
	fakecuda_check(dst, n * 4, "cuMemsetD32Async");
	copy_args *c = malloc(sizeof *c);
	*c = (copy_args){.dst = dst, .n = n, .v = v};
	fakecuda_enqueue(s, do_set32, c);
	return CUDA_SUCCESS;
}

// ---- modules and the one kernel ----

static int scale_module, scale_function;

CUresult cuModuleLoadData(CUmodule *m, const void *image) {
	if (need_ctx())
		return CUDA_ERROR_INVALID_CONTEXT;
	if (!strstr(image, ".visible .entry earl_scale_f32("))
		return CUDA_ERROR_INVALID_IMAGE;
	*m = (CUmodule)&scale_module;
	return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
	if (m != (CUmodule)&scale_module || strcmp(name, "earl_scale_f32") != 0)
		return CUDA_ERROR_NOT_FOUND;
	*f = (CUfunction)&scale_function;
	return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule m) {
	return m == (CUmodule)&scale_module ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

typedef struct scale_args {
	float *x;
	uint64_t n;
	double alpha;
} scale_args;

static void do_scale(void *a) {
	scale_args *s = a;
	float alpha = (float)s->alpha; // cvt.rn.f32.f64, then mul.rn.f32
	for (uint64_t i = 0; i < s->n; i++)
		s->x[i] = s->x[i] * alpha;
	free(s);
}

// cuLaunchKernel emulates earl_scale_f32(u64 x, u64 n, f64 alpha): the
// parameters are read with the widths the PTX entry declares.
CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, CUstream s, void **params, void **extra) {
	if (need_ctx())
		return CUDA_ERROR_INVALID_CONTEXT;
	if (f != (CUfunction)&scale_function || extra || !params)
		return CUDA_ERROR_INVALID_VALUE;
	if (gx == 0 || gy != 1 || gz != 1 || bx == 0 || bx > 1024 || by != 1 || bz != 1 || shared != 0)
		return CUDA_ERROR_INVALID_VALUE;
	scale_args *a = malloc(sizeof *a);
	a->x = (float *)*(uint64_t *)params[0];
	a->n = *(uint64_t *)params[1];
	a->alpha = *(double *)params[2];
	fakecuda_check((uintptr_t)a->x, a->n * 4, "earl_scale_f32");
	fakecuda_enqueue(s, do_scale, a);
	return CUDA_SUCCESS;
}
