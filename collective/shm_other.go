//go:build !linux

package collective

import (
	"errors"
	"io"
	"net"
	"os"
)

// Elsewhere, payloads always travel on the socket.
const shmSupported = false

var errNoShm = errors.New("shared-memory links need Linux")

func shmCreate(size int) (*os.File, []byte, error)      { return nil, nil, errNoShm }
func shmMap(fd, size int) ([]byte, error)               { return nil, errNoShm }
func shmUnmap(mem []byte)                               {}
func sendFile(c net.Conn, msg []byte, f *os.File) error { return errNoShm }
func recvFile(c net.Conn, msg []byte) (int, error)      { return -1, errNoShm }
func closeFD(fd int)                                    {}
