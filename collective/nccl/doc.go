// Package nccl is the GPU backend of collective.Comm: all-reduce,
// reduce-scatter, all-gather, broadcast and barrier over NVIDIA's NCCL, on
// kernels views whose buffers live in device memory.
//
// Everything but this file is built only with the build tag cuda, so
// that machines without the CUDA toolkit build, vet and test the rest of
// earl; with the tag off this package holds no code. With the tag on it
// needs gorgonia.org/cu (the CUDA driver API) at build time and, at run
// time, a GPU and libnccl.so.2. NCCL is not linked: no Debian package
// provides it, so the functions earl uses are declared here from the
// NCCL 2.x header and looked up with dlopen / dlsym when the first
// communicator is made. Clusters provide the library through a module
// (`module load nccl`) or LD_LIBRARY_PATH; EARL_NCCL_LIB names the file
// explicitly.
//
// Ranks find each other through a Store (the rendezvous store of package
// collective satisfies it): rank 0 makes the NCCL unique id and publishes
// it there once every rank has checked in.
//
// docs/nccl.md describes how to run the tests on a GPU node, what is and
// is not verified without one, and the padding and timeout design.
package nccl
