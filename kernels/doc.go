// Package kernels will hold the Device interface and its ops (forward and
// backward) with CPU and CUDA implementations. Nothing is implemented yet;
// see README: Status.
package kernels
