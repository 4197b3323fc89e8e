//go:build unix

package ckpt

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps size bytes of f read-only; the pages are read on first use.
func mapFile(f *os.File, size int) ([]byte, error) {
	if size == 0 {
		return nil, nil // mmap rejects empty mappings; parseFile rejects the file
	}
	return unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
}

// unmapFile releases what mapFile returned.
func unmapFile(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
