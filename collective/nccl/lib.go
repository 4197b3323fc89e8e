//go:build cuda

package nccl

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

// The part of nccl.h (NCCL 2.x; values as in the 2.16 to 2.21 headers,
// unchanged since 2.10 except where noted in lib.go) that earl calls. NCCL
// is not linked: the functions are looked up at run time with dlsym and
// called through the trampolines below, so building needs no NCCL header
// or library. Enums are passed as int, which is how the x86-64 and
// aarch64 C ABIs pass these enums (every value fits in an int).
typedef struct ncclComm* ncclComm_t;
#define NCCL_UNIQUE_ID_BYTES 128
typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;
typedef int ncclResult_t;

typedef ncclResult_t (*earl_getVersion_fn)(int*);
typedef ncclResult_t (*earl_getUniqueId_fn)(ncclUniqueId*);
typedef ncclResult_t (*earl_commInitRank_fn)(ncclComm_t*, int, ncclUniqueId, int);
typedef ncclResult_t (*earl_comm_fn)(ncclComm_t);
typedef ncclResult_t (*earl_commGetAsyncError_fn)(ncclComm_t, ncclResult_t*);
typedef const char* (*earl_getErrorString_fn)(ncclResult_t);
typedef const char* (*earl_getLastError_fn)(ncclComm_t);
typedef ncclResult_t (*earl_allReduce_fn)(const void*, void*, size_t, int, int, ncclComm_t, void*);
typedef ncclResult_t (*earl_reduceScatter_fn)(const void*, void*, size_t, int, int, ncclComm_t, void*);
typedef ncclResult_t (*earl_allGather_fn)(const void*, void*, size_t, int, ncclComm_t, void*);
typedef ncclResult_t (*earl_broadcast_fn)(const void*, void*, size_t, int, int, ncclComm_t, void*);

// Device addresses travel as uintptr_t so that Go never turns an integer
// into an unsafe.Pointer; streams are cudaStream_t (== CUstream) as void*.
static ncclResult_t earl_ncclGetVersion(void* f, int* v) {
	return ((earl_getVersion_fn)f)(v);
}
static ncclResult_t earl_ncclGetUniqueId(void* f, ncclUniqueId* id) {
	return ((earl_getUniqueId_fn)f)(id);
}
static ncclResult_t earl_ncclCommInitRank(void* f, ncclComm_t* comm, int nranks, ncclUniqueId* id, int rank) {
	return ((earl_commInitRank_fn)f)(comm, nranks, *id, rank);
}
static ncclResult_t earl_ncclComm(void* f, ncclComm_t comm) {
	return ((earl_comm_fn)f)(comm);
}
static ncclResult_t earl_ncclCommGetAsyncError(void* f, ncclComm_t comm, ncclResult_t* r) {
	return ((earl_commGetAsyncError_fn)f)(comm, r);
}
static const char* earl_ncclGetErrorString(void* f, ncclResult_t r) {
	return ((earl_getErrorString_fn)f)(r);
}
static const char* earl_ncclGetLastError(void* f, ncclComm_t comm) {
	return ((earl_getLastError_fn)f)(comm);
}
static ncclResult_t earl_ncclAllReduce(void* f, uintptr_t send, uintptr_t recv, size_t n, int dt, int op, ncclComm_t comm, void* stream) {
	return ((earl_allReduce_fn)f)((const void*)send, (void*)recv, n, dt, op, comm, stream);
}
static ncclResult_t earl_ncclReduceScatter(void* f, uintptr_t send, uintptr_t recv, size_t n, int dt, int op, ncclComm_t comm, void* stream) {
	return ((earl_reduceScatter_fn)f)((const void*)send, (void*)recv, n, dt, op, comm, stream);
}
static ncclResult_t earl_ncclAllGather(void* f, uintptr_t send, uintptr_t recv, size_t n, int dt, ncclComm_t comm, void* stream) {
	return ((earl_allGather_fn)f)((const void*)send, (void*)recv, n, dt, comm, stream);
}
static ncclResult_t earl_ncclBroadcast(void* f, uintptr_t send, uintptr_t recv, size_t n, int dt, int root, ncclComm_t comm, void* stream) {
	return ((earl_broadcast_fn)f)((const void*)send, (void*)recv, n, dt, root, comm, stream);
}
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// ncclResult_t values (nccl.h, NCCL 2.x). ncclRemoteError appeared in
// 2.12 and ncclInProgress (non-blocking communicators only, which earl
// does not use) in 2.14; older libraries never return them.
const (
	resSuccess          = 0
	resUnhandledCudaErr = 1
	resSystemError      = 2
	resInternalError    = 3
	resInvalidArgument  = 4
	resInvalidUsage     = 5
	resRemoteError      = 6
	resInProgress       = 7
)

// ncclRedOp_t values (nccl.h, NCCL 2.x). ncclAvg exists from 2.10 on.
const (
	redSum = 0
	redMax = 2
	redAvg = 4
)

// ncclDataType_t values (nccl.h, NCCL 2.x).
const (
	typeFloat32 = 7 // ncclFloat32 == ncclFloat
	typeFloat64 = 8 // ncclFloat64 == ncclDouble
)

// avgVersion is NCCL_VERSION(2,10,0), the first library with ncclAvg.
const avgVersion = 21000

// UniqueIDBytes is NCCL_UNIQUE_ID_BYTES, the size of the id rank 0
// publishes through the store.
const UniqueIDBytes = C.NCCL_UNIQUE_ID_BYTES

// library holds the NCCL functions found in libnccl.so.2.
type library struct {
	path    string
	version int // ncclGetVersion's code, e.g. 21805 for 2.18.5

	// The functions, as dlsym found them.
	fnGetVersion, fnGetUniqueID, fnCommInitRank, fnCommDestroy, fnCommAbort,
	fnCommGetAsyncError, fnGetErrorString, fnAllReduce, fnReduceScatter,
	fnAllGather, fnBroadcast unsafe.Pointer
	fnGetLastError unsafe.Pointer // 2.13+; nil before
}

var (
	libOnce sync.Once
	lib     *library
	libErr  error
)

// libName is the file dlopen looks for when EARL_NCCL_LIB is unset: the
// soname, found through LD_LIBRARY_PATH and the linker cache as for any
// shared library.
const libName = "libnccl.so.2"

// load opens libnccl.so.2 once per process and resolves every function
// earl calls; a missing library or symbol is reported with what to do.
func load() (*library, error) {
	libOnce.Do(func() { lib, libErr = open() })
	return lib, libErr
}

func open() (*library, error) {
	path := os.Getenv("EARL_NCCL_LIB")
	if path == "" {
		path = libName
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	// RTLD_GLOBAL as if NCCL were linked: its network plugins
	// (libnccl-net.so) are loaded by NCCL itself into the same namespace.
	h := C.dlopen(cpath, C.RTLD_NOW|C.RTLD_GLOBAL)
	if h == nil {
		return nil, fmt.Errorf("nccl: cannot load %s: %s: install NCCL or load the cluster's nccl module "+
			"(module load nccl), or add the directory holding libnccl.so.2 to LD_LIBRARY_PATH "+
			"(LD_LIBRARY_PATH=%q), or name the file in EARL_NCCL_LIB", path, dlerror(), os.Getenv("LD_LIBRARY_PATH"))
	}
	l := &library{path: path}
	syms := []struct {
		name string
		dst  *unsafe.Pointer
	}{
		{"ncclGetVersion", &l.fnGetVersion},
		{"ncclGetUniqueId", &l.fnGetUniqueID},
		{"ncclCommInitRank", &l.fnCommInitRank},
		{"ncclCommDestroy", &l.fnCommDestroy},
		{"ncclCommAbort", &l.fnCommAbort},
		{"ncclCommGetAsyncError", &l.fnCommGetAsyncError},
		{"ncclGetErrorString", &l.fnGetErrorString},
		{"ncclAllReduce", &l.fnAllReduce},
		{"ncclReduceScatter", &l.fnReduceScatter},
		{"ncclAllGather", &l.fnAllGather},
		{"ncclBroadcast", &l.fnBroadcast},
	}
	for _, s := range syms {
		p, err := dlsym(h, s.name)
		if err != nil {
			// The handle is kept open: closing a library NCCL may have
			// started threads in is not worth the risk for an error path.
			return nil, fmt.Errorf("nccl: %s: %w: NCCL 2.4 or newer is needed (2.10+ for a native average)", path, err)
		}
		*s.dst = p
	}
	// Optional: only used to add NCCL's own message to errors.
	l.fnGetLastError, _ = dlsym(h, "ncclGetLastError")

	var v C.int
	if r := C.earl_ncclGetVersion(l.fnGetVersion, &v); r != resSuccess {
		return nil, fmt.Errorf("nccl: %s: ncclGetVersion: %s", path, l.errorString(r))
	}
	l.version = int(v)
	return l, nil
}

func dlsym(h unsafe.Pointer, name string) (unsafe.Pointer, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	C.dlerror() // clear a stale error: dlsym may legitimately return NULL
	p := C.dlsym(h, cname)
	if p == nil {
		return nil, fmt.Errorf("symbol %s not found: %s", name, dlerror())
	}
	return p, nil
}

func dlerror() string {
	if e := C.dlerror(); e != nil {
		return C.GoString(e)
	}
	return "unknown dlopen error"
}

// Version returns the loaded NCCL library's version, e.g. "2.18.5", loading
// libnccl.so.2 if no communicator has yet.
func Version() (string, error) {
	l, err := load()
	if err != nil {
		return "", err
	}
	return versionString(l.version), nil
}

// versionString decodes NCCL_VERSION_CODE: X*1000+Y*100+Z up to 2.8,
// X*10000+Y*100+Z from 2.9 on.
func versionString(code int) string {
	if code >= 10000 {
		return fmt.Sprintf("%d.%d.%d", code/10000, code%10000/100, code%100)
	}
	return fmt.Sprintf("%d.%d.%d", code/1000, code%1000/100, code%100)
}

// errorString is ncclGetErrorString's text with the result's name.
func (l *library) errorString(r C.ncclResult_t) string {
	name := resultName(int(r))
	if l.fnGetErrorString == nil {
		return name
	}
	msg := C.earl_ncclGetErrorString(l.fnGetErrorString, r)
	if msg == nil {
		return name
	}
	return name + ": " + C.GoString(msg)
}

// lastError is NCCL's description of the communicator's last failure
// (ncclGetLastError, NCCL 2.13+), or "" where the library lacks it.
func (l *library) lastError(comm C.ncclComm_t) string {
	if l.fnGetLastError == nil {
		return ""
	}
	msg := C.earl_ncclGetLastError(l.fnGetLastError, comm)
	if msg == nil {
		return ""
	}
	return strings.TrimSpace(C.GoString(msg))
}

func resultName(r int) string {
	switch r {
	case resSuccess:
		return "ncclSuccess"
	case resUnhandledCudaErr:
		return "ncclUnhandledCudaError"
	case resSystemError:
		return "ncclSystemError"
	case resInternalError:
		return "ncclInternalError"
	case resInvalidArgument:
		return "ncclInvalidArgument"
	case resInvalidUsage:
		return "ncclInvalidUsage"
	case resRemoteError:
		return "ncclRemoteError"
	case resInProgress:
		return "ncclInProgress"
	}
	return fmt.Sprintf("ncclResult(%d)", r)
}

// commHandle is an ncclComm_t, kept in this file with the rest of cgo.
type commHandle struct{ c C.ncclComm_t }

// The calls below wrap the trampolines with Go types and return the raw
// ncclResult_t; comm.go turns failures into errors.

func (l *library) uniqueID() ([]byte, int) {
	var id C.ncclUniqueId
	r := C.earl_ncclGetUniqueId(l.fnGetUniqueID, &id)
	return C.GoBytes(unsafe.Pointer(&id), C.NCCL_UNIQUE_ID_BYTES), int(r)
}

func (l *library) commInitRank(size int, id []byte, rank int) (commHandle, int) {
	var cid C.ncclUniqueId
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&cid)), C.NCCL_UNIQUE_ID_BYTES), id)
	var h commHandle
	r := C.earl_ncclCommInitRank(l.fnCommInitRank, &h.c, C.int(size), &cid, C.int(rank))
	return h, int(r)
}

func (l *library) commDestroy(h commHandle) int {
	return int(C.earl_ncclComm(l.fnCommDestroy, h.c))
}

func (l *library) commAbort(h commHandle) int {
	return int(C.earl_ncclComm(l.fnCommAbort, h.c))
}

// asyncError is the communicator's asynchronous error (a failed peer or
// network link), ncclSuccess while there is none.
func (l *library) asyncError(h commHandle) int {
	var async C.ncclResult_t
	if r := C.earl_ncclCommGetAsyncError(l.fnCommGetAsyncError, h.c, &async); r != resSuccess {
		return int(r)
	}
	return int(async)
}

func (l *library) allReduceCall(send, recv uintptr, n, dtype, op int, h commHandle, stream unsafe.Pointer) int {
	return int(C.earl_ncclAllReduce(l.fnAllReduce, C.uintptr_t(send), C.uintptr_t(recv), C.size_t(n), C.int(dtype), C.int(op), h.c, stream))
}

func (l *library) reduceScatterCall(send, recv uintptr, recvCount, dtype, op int, h commHandle, stream unsafe.Pointer) int {
	return int(C.earl_ncclReduceScatter(l.fnReduceScatter, C.uintptr_t(send), C.uintptr_t(recv), C.size_t(recvCount), C.int(dtype), C.int(op), h.c, stream))
}

func (l *library) allGatherCall(send, recv uintptr, sendCount, dtype int, h commHandle, stream unsafe.Pointer) int {
	return int(C.earl_ncclAllGather(l.fnAllGather, C.uintptr_t(send), C.uintptr_t(recv), C.size_t(sendCount), C.int(dtype), h.c, stream))
}

func (l *library) broadcastCall(send, recv uintptr, n, dtype, root int, h commHandle, stream unsafe.Pointer) int {
	return int(C.earl_ncclBroadcast(l.fnBroadcast, C.uintptr_t(send), C.uintptr_t(recv), C.size_t(n), C.int(dtype), C.int(root), h.c, stream))
}

// errorText is NCCL's description of result r on communicator h (which
// may be nil, before there is one): ncclGetErrorString, plus
// ncclGetLastError's detail where the library has it. Call it on the
// thread that made the failing call: NCCL may keep the last error per
// thread.
func (l *library) errorText(r int, h commHandle) string {
	s := l.errorString(C.ncclResult_t(r))
	if last := l.lastError(h.c); last != "" {
		s += " (" + last + ")"
	}
	return s
}
