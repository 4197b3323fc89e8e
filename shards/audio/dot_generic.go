//go:build !amd64 || purego

package audio

// dot returns Σ x[i]·h[i] over len(x), which must not exceed len(h): the
// portable loop, for CPUs without the amd64 kernel and under the purego tag.
func dot(x, h []float32) float32 { return dotGeneric(x, h) }

// dotAccel is nil: this build has no assembly kernel.
var dotAccel func(x, h []float32) float32
