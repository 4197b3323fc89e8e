//go:build !unix

package ckpt

import (
	"io"
	"os"
)

// mapFile reads the file into memory where there is no mmap; size is the
// file's real size, never a length read from the file.
func mapFile(f *os.File, size int) ([]byte, error) {
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}

func unmapFile([]byte) error { return nil }

// syncDir does nothing where directories cannot be synced (Windows); the
// file itself was synced before the rename.
func syncDir(string) error { return nil }
