// fakenccl.c: a stand-in libnccl.so.2 for running collective/nccl's tests
// without a GPU (make check-cuda), on top of fakecuda.c. Every rank of a
// communicator must live in this one process (the tests' ranks are
// goroutines). It mirrors NCCL 2.x where earl depends on it:
//   - the ABI: the same prototypes and enum values as nccl.h (2.x);
//   - ncclCommInitRank blocks until every rank has joined, and refuses
//     two ranks on one device with ncclInvalidUsage ("Duplicate GPU");
//   - collectives are queued on the caller's stream and return at once;
//     the stream's work blocks until every rank's call arrives, and a rank
//     that never comes leaves it blocked until ncclCommAbort, as a NCCL
//     kernel spins;
//   - ncclAvg exists from 2.10 only (FAKE_NCCL_VERSION, default 21805).
// It is stricter than NCCL where NCCL's behaviour is undefined: counts or
// types that differ between ranks set the asynchronous error
// (ncclInvalidUsage) instead of corrupting memory, and reduce-scatter /
// all-gather buffers that overlap other than by NCCL's in-place rule are
// refused (ncclInvalidArgument). Device ranges are checked with
// fakecuda_check. Results are computed in the element type, rank by rank
// in order.

#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum {
	ncclSuccess = 0,
	ncclUnhandledCudaError = 1,
	ncclSystemError = 2,
	ncclInternalError = 3,
	ncclInvalidArgument = 4,
	ncclInvalidUsage = 5,
	ncclRemoteError = 6,
	ncclInProgress = 7,
} ncclResult_t;

enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 };
enum { ncclFloat32 = 7, ncclFloat64 = 8 };

typedef struct {
	char internal[128];
} ncclUniqueId;

typedef struct group group;
typedef struct comm {
	group *g;
	int rank, dev;
	volatile int aborted;
	volatile int async;
	char last[256];
} comm;
typedef comm *ncclComm_t;

enum { AR, RS, AG, BC };

typedef struct desc {
	int kind, dtype, op, root;
	size_t count;
	uintptr_t send, recv;
} desc;

struct group {
	ncclUniqueId id;
	int n, joined;
	comm **ranks;
	desc *ops;
	int count, gen; // barrier
	pthread_mutex_t mu;
	pthread_cond_t cv;
	group *next;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static group *groups;
static int next_id;

static void (*check)(uintptr_t, size_t, const char *);
static int (*current_device)(void);
static int (*enqueue)(void *, void (*)(void *), void *);

static int version(void) {
	const char *s = getenv("FAKE_NCCL_VERSION");
	return s ? atoi(s) : 21805;
}

static int bind_cuda(void) {
	if (check)
		return 0;
	check = dlsym(RTLD_DEFAULT, "fakecuda_check");
	current_device = dlsym(RTLD_DEFAULT, "fakecuda_current_device");
	enqueue = dlsym(RTLD_DEFAULT, "fakecuda_enqueue");
	if (!check || !current_device || !enqueue) {
		fprintf(stderr, "fakenccl: needs fakecuda's libcuda.so.1 in the process\n");
		return -1;
	}
	return 0;
}

ncclResult_t ncclGetVersion(int *v) {
	*v = version();
	return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r) {
	switch (r) {
	case ncclSuccess:
		return "no error";
	case ncclInvalidArgument:
		return "invalid argument (run with NCCL_DEBUG=WARN for details)";
	case ncclInvalidUsage:
		return "invalid usage (run with NCCL_DEBUG=WARN for details)";
	case ncclRemoteError:
		return "remote process exited or there was a network error";
	default:
		return "unhandled error";
	}
}

const char *ncclGetLastError(ncclComm_t c) { return c ? c->last : ""; }

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
	memset(id, 0, sizeof *id);
	pthread_mutex_lock(&reg_mu);
	snprintf(id->internal, sizeof id->internal, "fakenccl-%d-%d", (int)getpid(), ++next_id);
	pthread_mutex_unlock(&reg_mu);
	return ncclSuccess;
}

static int elem(int dtype) { return dtype == ncclFloat32 ? 4 : dtype == ncclFloat64 ? 8 : 0; }

// barrier waits for every rank of g; -1 once c is aborted.
static int barrier(group *g, comm *c) {
	pthread_mutex_lock(&g->mu);
	int gen = g->gen;
	if (++g->count == g->n) {
		g->count = 0;
		g->gen++;
		pthread_cond_broadcast(&g->cv);
		pthread_mutex_unlock(&g->mu);
		return 0;
	}
	while (gen == g->gen) {
		if (c->aborted) {
			pthread_mutex_unlock(&g->mu);
			return -1;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&g->cv, &g->mu, &ts);
	}
	pthread_mutex_unlock(&g->mu);
	return 0;
}

ncclResult_t ncclCommInitRank(ncclComm_t *out, int n, ncclUniqueId id, int rank) {
	if (bind_cuda())
		return ncclSystemError;
	if (n < 1 || rank < 0 || rank >= n)
		return ncclInvalidArgument;
	int dev = current_device();
	if (dev < 0)
		return ncclUnhandledCudaError;
	pthread_mutex_lock(&reg_mu);
	group *g = groups;
	while (g && memcmp(&g->id, &id, sizeof id) != 0)
		g = g->next;
	if (!g) {
		g = calloc(1, sizeof *g);
		g->id = id;
		g->n = n;
		g->ranks = calloc(n, sizeof *g->ranks);
		g->ops = calloc(n, sizeof *g->ops);
		pthread_mutex_init(&g->mu, NULL);
		pthread_cond_init(&g->cv, NULL);
		g->next = groups;
		groups = g;
	}
	pthread_mutex_unlock(&reg_mu);
	if (g->n != n)
		return ncclInvalidArgument;
	comm *c = calloc(1, sizeof *c);
	c->g = g;
	c->rank = rank;
	c->dev = dev;
	pthread_mutex_lock(&g->mu);
	if (g->ranks[rank]) {
		pthread_mutex_unlock(&g->mu);
		free(c);
		return ncclInvalidUsage;
	}
	g->ranks[rank] = c;
	g->joined++;
	pthread_cond_broadcast(&g->cv);
	while (g->joined < n) // like NCCL: no timeout
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	if (!getenv("FAKE_NCCL_SHARED_GPU")) {
		for (int r = 0; r < n; r++) {
			if (r != rank && g->ranks[r]->dev == dev) {
				fprintf(stderr, "fakenccl: Duplicate GPU detected : rank %d and rank %d both on CUDA device %d\n", rank, r, dev);
				return ncclInvalidUsage;
			}
		}
	}
	*out = c;
	return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t c, ncclResult_t *r) {
	if (!c)
		return ncclInvalidArgument;
	*r = c->async;
	return ncclSuccess;
}

// Comms are never freed: a stream may still hold work that points at one.
ncclResult_t ncclCommAbort(ncclComm_t c) {
	if (!c)
		return ncclInvalidArgument;
	c->aborted = 1;
	pthread_mutex_lock(&c->g->mu);
	pthread_cond_broadcast(&c->g->cv);
	pthread_mutex_unlock(&c->g->mu);
	return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t c) { return c ? ncclSuccess : ncclInvalidArgument; }

typedef struct work {
	comm *c;
	desc d;
} work;

static double get(uintptr_t p, int dtype, size_t i) {
	return dtype == ncclFloat32 ? ((float *)p)[i] : ((double *)p)[i];
}

static void put(void *p, int dtype, size_t i, double v) {
	if (dtype == ncclFloat32)
		((float *)p)[i] = (float)v;
	else
		((double *)p)[i] = v;
}

// reduce writes, for element i of every rank's buffer at offset off,
// the reduction into out[i], in the element type.
static void reduce(group *g, const desc *d, size_t off, size_t n, void *out) {
	for (size_t i = 0; i < n; i++) {
		double acc = get(g->ops[0].send, d->dtype, off + i);
		for (int r = 1; r < g->n; r++) {
			double v = get(g->ops[r].send, d->dtype, off + i);
			if (d->op == ncclMax)
				acc = v > acc ? v : acc;
			else if (d->op == ncclMin)
				acc = v < acc ? v : acc;
			else
				acc += v;
			if (d->dtype == ncclFloat32)
				acc = (float)acc; // each step rounds like a float32 add
		}
		if (d->op == ncclAvg)
			acc /= g->n;
		put(out, d->dtype, i, acc);
	}
}

static void run(void *arg) {
	work *w = arg;
	comm *c = w->c;
	group *g = c->g;
	desc *d = &w->d;
	if (c->aborted || c->async) {
		free(w);
		return;
	}
	g->ops[c->rank] = *d;
	if (barrier(g, c)) {
		free(w);
		return;
	}
	for (int r = 0; r < g->n; r++) {
		desc *o = &g->ops[r];
		if (o->kind != d->kind || o->count != d->count || o->dtype != d->dtype || o->op != d->op || o->root != d->root) {
			snprintf(c->last, sizeof c->last, "fakenccl: rank %d called a different collective or count (%zu) than rank %d (%zu)",
			         r, o->count, c->rank, d->count);
			c->async = ncclInvalidUsage;
			free(w);
			return;
		}
	}
	size_t e = elem(d->dtype), n = d->count;
	size_t outn = d->kind == AG ? n * g->n : n;
	void *tmp = malloc(outn * e + 1);
	switch (d->kind) {
	case AR:
		reduce(g, d, 0, n, tmp);
		break;
	case RS:
		reduce(g, d, (size_t)c->rank * n, n, tmp);
		break;
	case AG:
		for (int r = 0; r < g->n; r++)
			memcpy((char *)tmp + r * n * e, (void *)g->ops[r].send, n * e);
		break;
	case BC:
		memcpy(tmp, (void *)g->ops[d->root].send, n * e);
		break;
	}
	// Nobody writes until everybody has read: buffers may be in place.
	if (barrier(g, c) == 0) {
		memcpy((void *)d->recv, tmp, outn * e);
		barrier(g, c); // nobody reuses the slot before every rank is done
	}
	free(tmp);
	free(w);
}

static ncclResult_t submit(comm *c, int kind, uintptr_t send, uintptr_t recv, size_t count, int dtype, int op, int root, void *stream) {
	if (!c || bind_cuda())
		return ncclInvalidArgument;
	size_t e = elem(dtype);
	if (!e)
		return ncclInvalidArgument;
	if (kind == AR || kind == RS) {
		if (op != ncclSum && op != ncclProd && op != ncclMax && op != ncclMin && !(op == ncclAvg && version() >= 21000)) {
			snprintf(c->last, sizeof c->last, "fakenccl: reduction %d not supported by NCCL %d", op, version());
			return ncclInvalidArgument;
		}
	}
	if (kind == BC && (root < 0 || root >= c->g->n))
		return ncclInvalidArgument;
	size_t sendn = kind == RS ? count * c->g->n : count;
	size_t recvn = kind == AG ? count * c->g->n : count;
	check(send, sendn * e, "fakenccl send buffer");
	check(recv, recvn * e, "fakenccl receive buffer");
	uintptr_t se = send + sendn * e, re = recv + recvn * e;
	int overlap = count > 0 && send < re && recv < se;
	if (overlap) {
		int ok = (kind == AR || kind == BC) ? send == recv
		         : kind == RS               ? recv == send + c->rank * count * e
		                                    : send == recv + c->rank * count * e;
		if (!ok) {
			snprintf(c->last, sizeof c->last, "fakenccl: buffers overlap other than in place");
			return ncclInvalidArgument;
		}
	}
	work *w = malloc(sizeof *w);
	*w = (work){.c = c, .d = {.kind = kind, .dtype = dtype, .op = op, .root = root, .count = count, .send = send, .recv = recv}};
	if (enqueue(stream, run, w) != 0) {
		free(w);
		return ncclUnhandledCudaError;
	}
	return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *s, void *r, size_t n, int dt, int op, ncclComm_t c, void *st) {
	return submit(c, AR, (uintptr_t)s, (uintptr_t)r, n, dt, op, 0, st);
}

ncclResult_t ncclReduceScatter(const void *s, void *r, size_t n, int dt, int op, ncclComm_t c, void *st) {
	return submit(c, RS, (uintptr_t)s, (uintptr_t)r, n, dt, op, 0, st);
}

ncclResult_t ncclAllGather(const void *s, void *r, size_t n, int dt, ncclComm_t c, void *st) {
	return submit(c, AG, (uintptr_t)s, (uintptr_t)r, n, dt, 0, 0, st);
}

ncclResult_t ncclBroadcast(const void *s, void *r, size_t n, int dt, int root, ncclComm_t c, void *st) {
	return submit(c, BC, (uintptr_t)s, (uintptr_t)r, n, dt, 0, root, st);
}
