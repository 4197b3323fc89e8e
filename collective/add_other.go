//go:build !amd64 || purego

package collective

func add32(dst, a, b []float32) { add32Go(dst, a, b) }
