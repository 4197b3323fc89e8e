package shards

// The HDF5 calls gonum.org/v1/hdf5 does not wrap: creation properties that
// keep files byte-identical across runs (no object timestamps), the shuffle
// filter, direct chunk writes (so chunks are compressed in parallel by Go
// workers, not by the single writer thread), variable-length UTF-8 string
// columns, and reads converted to float32 (so float16 shards read the same
// way). Handles come from and go back to gonum's objects as int64 hid_t.

/*
#cgo pkg-config: hdf5
#include <stdlib.h>
#include <stdint.h>
#include <hdf5.h>

static hid_t earl_dcpl(int rank, const hsize_t *chunk, int shuffle, int level) {
	hid_t p = H5Pcreate(H5P_DATASET_CREATE);
	if (p < 0) return p;
	if (H5Pset_obj_track_times(p, 0) < 0) goto fail;
	if (chunk != NULL) {
		if (H5Pset_chunk(p, rank, chunk) < 0) goto fail;
		if (shuffle && H5Pset_shuffle(p) < 0) goto fail;
		if (level >= 0 && H5Pset_deflate(p, (unsigned)level) < 0) goto fail;
	}
	return p;
fail:
	H5Pclose(p);
	return -1;
}

static hid_t earl_half_type(void) {
	// IEEE binary16, laid out as h5py and numpy's float16 expect.
	hid_t t = H5Tcopy(H5T_IEEE_F32LE);
	if (t < 0) return t;
	if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
		H5Tclose(t);
		return -1;
	}
	return t;
}

static hid_t earl_str_type(void) {
	hid_t t = H5Tcopy(H5T_C_S1);
	if (t < 0) return t;
	if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
		H5Tclose(t);
		return -1;
	}
	return t;
}

static hid_t earl_group(hid_t loc, const char *name) {
	hid_t p = H5Pcreate(H5P_GROUP_CREATE);
	if (p < 0) return p;
	if (H5Pset_obj_track_times(p, 0) < 0) { H5Pclose(p); return -1; }
	hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, p, H5P_DEFAULT);
	H5Pclose(p);
	return g;
}

// earl_features creates a [rows, cols] dataset stored as one chunk and
// writes that chunk's already-filtered bytes.
static int earl_features(hid_t loc, const char *name, hsize_t rows, hsize_t cols, int half, int level,
		const void *buf, size_t len) {
	hsize_t dims[2] = {rows, cols};
	hsize_t off[2] = {0, 0};
	int rc = -1;
	hid_t sp = -1, dcpl = -1, t = -1, ds = -1;
	sp = H5Screate_simple(2, dims, NULL);
	if (sp < 0) goto out;
	dcpl = earl_dcpl(2, dims, 1, level);
	if (dcpl < 0) goto out;
	t = half ? earl_half_type() : H5Tcopy(H5T_IEEE_F32LE);
	if (t < 0) goto out;
	ds = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	if (ds < 0) goto out;
	if (H5Dwrite_chunk(ds, H5P_DEFAULT, 0, off, len, buf) < 0) goto out;
	rc = 0;
out:
	if (ds >= 0) H5Dclose(ds);
	if (t >= 0) H5Tclose(t);
	if (dcpl >= 0) H5Pclose(dcpl);
	if (sp >= 0) H5Sclose(sp);
	return rc;
}

// earl_column writes a 1-D dataset of n elements of type t (strings when
// t is a variable-length string type: buf is then char*[n]).
static int earl_column(hid_t loc, const char *name, hid_t filetype, hid_t memtype, hsize_t n, const void *buf) {
	int rc = -1;
	hsize_t dims[1] = {n};
	hsize_t chunk[1] = {n > 4096 ? 4096 : (n == 0 ? 1 : n)};
	hid_t sp = -1, dcpl = -1, ds = -1;
	sp = H5Screate_simple(1, dims, NULL);
	if (sp < 0) goto out;
	// Chunked and deflated: question text compresses well.
	dcpl = earl_dcpl(1, chunk, 0, 4);
	if (dcpl < 0) goto out;
	ds = H5Dcreate2(loc, name, filetype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	if (ds < 0) goto out;
	if (n > 0 && H5Dwrite(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) goto out;
	rc = 0;
out:
	if (ds >= 0) H5Dclose(ds);
	if (dcpl >= 0) H5Pclose(dcpl);
	if (sp >= 0) H5Sclose(sp);
	return rc;
}

static int earl_string_column(hid_t loc, const char *name, hsize_t n, char **strs) {
	hid_t t = earl_str_type();
	if (t < 0) return -1;
	int rc = earl_column(loc, name, t, t, n, strs);
	H5Tclose(t);
	return rc;
}

// earl_read_strings reads a 1-D string dataset into a malloc'd char*[]; the
// caller frees it with earl_free_strings.
static char **earl_read_strings(hid_t loc, const char *name, hssize_t *n) {
	char **out = NULL;
	hid_t ds = -1, sp = -1, t = -1;
	ds = H5Dopen2(loc, name, H5P_DEFAULT);
	if (ds < 0) goto fail;
	sp = H5Dget_space(ds);
	if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1) goto fail;
	*n = H5Sget_simple_extent_npoints(sp);
	if (*n < 0) goto fail;
	t = earl_str_type();
	if (t < 0) goto fail;
	out = calloc(*n > 0 ? (size_t)*n : 1, sizeof(char *));
	if (out == NULL) goto fail;
	if (*n > 0 && H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) { free(out); out = NULL; goto fail; }
	H5Tclose(t);
	H5Sclose(sp);
	H5Dclose(ds);
	return out;
fail:
	if (t >= 0) H5Tclose(t);
	if (sp >= 0) H5Sclose(sp);
	if (ds >= 0) H5Dclose(ds);
	return NULL;
}

static void earl_free_strings(char **s, hssize_t n) {
	for (hssize_t i = 0; i < n; i++) free(s[i]);
	free(s);
}

// earl_read_f32 reads a whole dataset of at most cap elements as float32,
// converting from float16 where needed. Returns the element count or -1.
static hssize_t earl_read_f32(hid_t loc, const char *name, float *buf, hssize_t cap, int *rank, hsize_t *dims) {
	hssize_t n = -1;
	hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
	if (ds < 0) return -1;
	hid_t sp = H5Dget_space(ds);
	if (sp < 0) goto out;
	*rank = H5Sget_simple_extent_ndims(sp);
	if (*rank < 1 || *rank > 2) goto out;
	H5Sget_simple_extent_dims(sp, dims, NULL);
	n = H5Sget_simple_extent_npoints(sp);
	if (n > cap) goto out;
	if (n > 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) n = -1;
out:
	if (sp >= 0) H5Sclose(sp);
	H5Dclose(ds);
	return n;
}

static hssize_t earl_dataset_len(hid_t loc, const char *name) {
	hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
	if (ds < 0) return -1;
	hid_t sp = H5Dget_space(ds);
	hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
	if (sp >= 0) H5Sclose(sp);
	H5Dclose(ds);
	return n;
}

static hid_t earl_native_int32(void) { return H5T_NATIVE_INT32; }
static hid_t earl_native_int64(void) { return H5T_NATIVE_INT64; }
static hid_t earl_native_float(void) { return H5T_NATIVE_FLOAT; }
static hid_t earl_native_double(void) { return H5T_NATIVE_DOUBLE; }
static hid_t earl_le_int32(void) { return H5T_STD_I32LE; }
static hid_t earl_le_int64(void) { return H5T_STD_I64LE; }
static hid_t earl_le_f32(void) { return H5T_IEEE_F32LE; }
static hid_t earl_le_f64(void) { return H5T_IEEE_F64LE; }

static int earl_read_column(hid_t loc, const char *name, hid_t memtype, void *buf) {
	hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
	if (ds < 0) return -1;
	int rc = H5Dread(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ? -1 : 0;
	H5Dclose(ds);
	return rc;
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// h5mu serialises every HDF5 call in the process: Debian's libhdf5 is built
// without thread safety.
var h5mu sync.Mutex

func cstr(s string) *C.char { return C.CString(s) }

// createGroup makes a group without modification times.
func createGroup(loc int64, name string) error {
	cn := cstr(name)
	defer C.free(unsafe.Pointer(cn))
	g := C.earl_group(C.hid_t(loc), cn)
	if g < 0 {
		return fmt.Errorf("hdf5: create group %q failed", name)
	}
	C.H5Gclose(g)
	return nil
}

// writeFeatureChunk creates dataset name [rows, cols] (float32 or float16,
// shuffle + deflate at level) holding one chunk whose filtered bytes are buf.
func writeFeatureChunk(loc int64, name string, rows, cols int, half bool, level int, buf []byte) error {
	cn := cstr(name)
	defer C.free(unsafe.Pointer(cn))
	h := C.int(0)
	if half {
		h = 1
	}
	// The bytes are copied by HDF5 before the call returns; pin nothing.
	cbuf := C.CBytes(buf)
	defer C.free(cbuf)
	if C.earl_features(C.hid_t(loc), cn, C.hsize_t(rows), C.hsize_t(cols), h, C.int(level), cbuf, C.size_t(len(buf))) < 0 {
		return fmt.Errorf("hdf5: write features %q failed", name)
	}
	return nil
}

// writeStrings writes a 1-D variable-length UTF-8 string column.
func writeStrings(loc int64, name string, vals []string) error {
	cn := cstr(name)
	defer C.free(unsafe.Pointer(cn))
	n := len(vals)
	arr := (**C.char)(C.malloc(C.size_t(max(n, 1)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(arr))
	ptrs := unsafe.Slice(arr, max(n, 1))
	for i, v := range vals {
		ptrs[i] = C.CString(v)
	}
	defer func() {
		for i := 0; i < n; i++ {
			C.free(unsafe.Pointer(ptrs[i]))
		}
	}()
	if C.earl_string_column(C.hid_t(loc), cn, C.hsize_t(n), arr) < 0 {
		return fmt.Errorf("hdf5: write string column %q failed", name)
	}
	return nil
}

// readStrings reads a 1-D string column.
func readStrings(loc int64, name string) ([]string, error) {
	cn := cstr(name)
	defer C.free(unsafe.Pointer(cn))
	var n C.hssize_t
	arr := C.earl_read_strings(C.hid_t(loc), cn, &n)
	if arr == nil {
		return nil, fmt.Errorf("hdf5: read string column %q failed", name)
	}
	defer C.earl_free_strings(arr, n)
	ptrs := unsafe.Slice(arr, max(int(n), 1))
	out := make([]string, int(n))
	for i := range out {
		if ptrs[i] != nil {
			out[i] = C.GoString(ptrs[i])
		}
	}
	return out, nil
}

// column element types.
type colType int

const (
	colInt32 colType = iota
	colInt64
	colFloat32
	colFloat64
)

func (t colType) types() (file, mem C.hid_t, size int) {
	switch t {
	case colInt32:
		return C.earl_le_int32(), C.earl_native_int32(), 4
	case colInt64:
		return C.earl_le_int64(), C.earl_native_int64(), 8
	case colFloat32:
		return C.earl_le_f32(), C.earl_native_float(), 4
	default:
		return C.earl_le_f64(), C.earl_native_double(), 8
	}
}

// writeColumn writes a 1-D numeric column; data is []int32, []int64,
// []float32 or []float64 matching t.
func writeColumn[T int32 | int64 | float32 | float64](loc int64, name string, t colType, vals []T) error {
	cn := cstr(name)
	defer C.free(unsafe.Pointer(cn))
	file, mem, size := t.types()
	if size != int(unsafe.Sizeof(*new(T))) {
		panic("shards: column type mismatch for " + name)
	}
	var p unsafe.Pointer
	if len(vals) > 0 {
		p = C.CBytes(unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), len(vals)*size))
		defer C.free(p)
	}
	if C.earl_column(C.hid_t(loc), cn, file, mem, C.hsize_t(len(vals)), p) < 0 {
		return fmt.Errorf("hdf5: write column %q failed", name)
	}
	return nil
}

// readColumn reads a 1-D numeric column of n elements.
func readColumn[T int32 | int64 | float32 | float64](loc int64, name string, t colType, n int) ([]T, error) {
	cn := cstr(name)
	defer C.free(unsafe.Pointer(cn))
	if got := C.earl_dataset_len(C.hid_t(loc), cn); got != C.hssize_t(n) {
		return nil, fmt.Errorf("hdf5: column %q has %d elements, want %d", name, int64(got), n)
	}
	_, mem, size := t.types()
	if size != int(unsafe.Sizeof(*new(T))) {
		panic("shards: column type mismatch for " + name)
	}
	out := make([]T, n)
	if n == 0 {
		return out, nil
	}
	buf := C.malloc(C.size_t(n * size))
	defer C.free(buf)
	if C.earl_read_column(C.hid_t(loc), cn, mem, buf) < 0 {
		return nil, fmt.Errorf("hdf5: read column %q failed", name)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), n*size), unsafe.Slice((*byte)(buf), n*size))
	return out, nil
}

// readFloat32 reads a whole 1-D or 2-D dataset as float32 (converting
// float16) and returns its values and dims.
func readFloat32(loc int64, name string, maxElems int) ([]float32, []int, error) {
	cn := cstr(name)
	defer C.free(unsafe.Pointer(cn))
	buf := C.malloc(C.size_t(max(maxElems, 1) * 4))
	defer C.free(buf)
	var rank C.int
	var dims [2]C.hsize_t
	n := C.earl_read_f32(C.hid_t(loc), cn, (*C.float)(buf), C.hssize_t(maxElems), &rank, &dims[0])
	if n < 0 {
		return nil, nil, fmt.Errorf("hdf5: read %q failed (missing, larger than %d values, or corrupt)", name, maxElems)
	}
	out := make([]float32, int(n))
	copy(out, unsafe.Slice((*float32)(buf), int(n)))
	d := make([]int, int(rank))
	for i := range d {
		d[i] = int(dims[i])
	}
	return out, d, nil
}
