package collective

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Dial joins rank (of size ranks) to a ring job: rank 0 hosts the
// rendezvous store at masterAddr:masterPort; every rank listens on the
// interface Options.Interface names (default: the one that routes to
// masterAddr), registers that address in the store, connects to its right
// neighbour and accepts its left one — over TCP, or on one host over a
// Unix socket with payloads in shared memory (see endpoint) — each
// connection authenticated with token (EARL_JOB_TOKEN) in both
// directions. Dial returns once the whole
// ring is connected (it ends with a barrier), so a rank that cannot join
// makes every rank's Dial fail within Options.Timeout (or ctx) instead of
// a later collective. The store is closed then; a job of one rank needs no
// network at all.
//
// The returned Comm needs host memory (kernels.Host) and is not safe for
// concurrent use. After any error it stays failed: Close it.
func Dial(ctx context.Context, rank, size int, masterAddr string, masterPort int, token string, opt Options) (Comm, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if size < 1 || rank < 0 || rank >= size {
		return nil, fmt.Errorf("collective: rank %d of world size %d: need 0 <= rank < size (check RANK and WORLD_SIZE)", rank, size)
	}
	if size == 1 {
		return &solo{}, nil
	}
	if token == "" {
		return nil, fmt.Errorf("collective: rank %d: empty job token: set EARL_JOB_TOKEN to the same secret on every rank", rank)
	}
	if masterPort <= 0 || masterPort > 65535 {
		return nil, fmt.Errorf("collective: rank %d: MASTER_PORT %d is not a TCP port", rank, masterPort)
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	r := &rendezvous{rank: rank, size: size, master: masterAddr, port: masterPort, token: []byte(token), opt: opt}
	c, err := r.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("collective: rank %d of %d: joining the job at %s: %w",
			rank, size, net.JoinHostPort(masterAddr, fmt.Sprint(masterPort)), err)
	}
	return c, nil
}

type rendezvous struct {
	rank, size int
	master     string
	port       int
	token      []byte
	opt        Options
	shm        bool // offer and accept shared memory on Unix links

	mu       sync.Mutex
	refusals []string // connections refused on this rank's ring listener
}

func ringKey(rank int) string { return fmt.Sprintf("ring/%d", rank) }

// transportEnv names the environment variable that chooses how ranks on
// one host talk: unset or "auto" (Unix sockets, payloads through shared
// memory), "socket" (Unix sockets, payloads on the socket), "tcp" (TCP
// loopback, as between hosts).
const transportEnv = "EARL_COLLECTIVE_TRANSPORT"

// transport resolves transportEnv and the test-only options.
func (o Options) transport() (unix, shm bool, err error) {
	switch v := os.Getenv(transportEnv); v {
	case "", "auto":
		return !o.tcpOnly, !o.tcpOnly && !o.noShm && shmSupported, nil
	case "socket":
		return !o.tcpOnly, false, nil
	case "tcp":
		return false, false, nil
	default:
		return false, false, fmt.Errorf("%s=%q: want auto, socket or tcp", transportEnv, v)
	}
}

// shmSlots is how many chunks a shared-memory link holds: the sender may
// run that far ahead of the receiver.
const shmSlots = 4

// shmSlotBytes is the slot size for a chunk size: the largest chunk a
// plan makes (ChunkBytes plus one element), rounded up to a cache line.
func shmSlotBytes(chunkBytes int) int { return (chunkBytes + 8 + 63) &^ 63 }

// link is what Dial learned about a ring connection.
type link struct {
	conn ringConn
	shm  []byte // the shared-memory region, on a link that has one
}

// endpoint is what a rank registers in the store: its TCP listener, and
// on Linux an abstract Unix socket with the host it lives on. Ranks on
// one host (same boot ID, same network namespace) connect over the Unix
// socket and, unless told otherwise, move payloads through shared memory
// (shm_linux.go); ranks elsewhere, or any rank whose Unix connection
// fails, use TCP. Measured on the 2-core development VM, 64 MiB
// all-reduce between 2 ranks: TCP loopback ~2 GB/s bus bandwidth, Unix
// socket ~2.2, shared memory ~5.
type endpoint struct {
	tcp, unix, host string
}

func (e endpoint) String() string {
	u, h := e.unix, e.host
	if u == "" {
		u, h = "-", "-"
	}
	return fmt.Sprintf("tcp=%s unix=%s host=%s", e.tcp, u, h)
}

func parseEndpoint(s string) (endpoint, error) {
	var e endpoint
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		if v == "-" {
			v = ""
		}
		switch k {
		case "tcp":
			e.tcp = v
		case "unix":
			e.unix = v
		case "host":
			e.host = v
		}
	}
	if e.tcp == "" {
		return e, fmt.Errorf("malformed ring address %q in the store", s)
	}
	return e, nil
}

// hostID identifies this machine's running kernel (Linux boot ID), or ""
// where Unix sockets in the abstract namespace are not available.
func hostID() string {
	if runtime.GOOS != "linux" {
		return ""
	}
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (r *rendezvous) run(ctx context.Context) (c *ringComm, err error) {
	useUnix, useShm, err := r.opt.transport()
	if err != nil {
		return nil, err
	}
	r.shm = useShm
	ip, err := bindIP(r.opt.Interface, r.master)
	if err != nil {
		return nil, err
	}
	tln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip})
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", ip, err)
	}
	defer tln.Close()
	me := endpoint{tcp: tln.Addr().String()}
	lns := []net.Listener{tln}
	if host := hostID(); host != "" && useUnix {
		var nonce [8]byte
		rand.Read(nonce[:])
		name := fmt.Sprintf("@earl-%x-%d", nonce, r.rank)
		if uln, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"}); err == nil {
			defer uln.Close()
			me.unix, me.host = name, host
			lns = append(lns, uln)
		}
	}

	var srv *StoreServer
	if r.rank == 0 {
		if srv, err = ListenStore(storeListenAddr(r.master, r.port), r.size, string(r.token), r.opt.Timeout); err != nil {
			return nil, err
		}
		defer srv.Close()
	}
	// explain adds what the store and the listeners refused to a
	// rendezvous error: usually the reason a rank never arrived.
	explain := func(err error) error {
		var notes []string
		if srv != nil {
			for _, s := range srv.Refusals() {
				notes = append(notes, "store refused "+s)
			}
		}
		r.mu.Lock()
		for _, s := range r.refusals {
			notes = append(notes, "ring listener refused "+s)
		}
		r.mu.Unlock()
		if len(notes) == 0 {
			return err
		}
		return fmt.Errorf("%w [%s]", err, strings.Join(notes, "; "))
	}

	st, err := ConnectStore(ctx, net.JoinHostPort(r.master, fmt.Sprint(r.port)), r.rank, r.size, string(r.token), r.opt.Timeout)
	if err != nil {
		return nil, explain(err)
	}
	defer st.Close()
	if err := st.Set(ringKey(r.rank), []byte(me.String())); err != nil {
		return nil, err
	}

	left, right := mod(r.rank-1, r.size), mod(r.rank+1, r.size)
	actx, stopAccept := context.WithCancel(ctx)
	defer stopAccept()
	acc := make(chan acceptResult, 1)
	go func() { acc <- r.acceptLeft(actx, lns, left) }()
	rightEP, rlink, err := r.dialRight(ctx, st, me, right)
	if err != nil {
		stopAccept()
	}
	a := <-acc
	if err == nil && a.err != nil {
		err = a.err
	}
	if err != nil {
		for _, l := range []link{rlink, a.link} {
			if l.conn != nil {
				l.conn.Close()
			}
			shmUnmap(l.shm)
		}
		return nil, explain(err)
	}
	// Errors name a neighbour by its advertised TCP address, which says
	// which host it is on.
	leftAddr := a.conn.RemoteAddr().String()
	if b, err := st.Get(ctx, ringKey(left)); err == nil {
		if e, err := parseEndpoint(string(b)); err == nil {
			leftAddr = e.tcp
		}
	}
	c = newRingComm(r.rank, r.size, r.opt, me.tcp, a.link, rlink, leftAddr, rightEP.tcp)
	// Every rank past this barrier has finished with the store and the
	// listeners, so they can close.
	if err := c.Barrier(); err != nil {
		c.Close()
		return nil, fmt.Errorf("first barrier: %w", err)
	}
	c.seq = 0 // the caller's calls count from 0, as in-process
	return c, nil
}

// sizeUnixBuffers lets a whole chunk sit in a Unix socket: its default
// buffer (~200 KiB) makes every 1 MiB chunk take several sleep-wake
// rounds, which costs ~25% of large all-reduce bandwidth when ranks share
// cores (measured with 4 ranks on 2 cores). TCP sockets keep the kernel's
// autotuning, which an explicit size would switch off.
func sizeUnixBuffers(c net.Conn, chunkBytes int) {
	if uc, ok := c.(*net.UnixConn); ok && chunkBytes > 256<<10 {
		uc.SetReadBuffer(chunkBytes)
		uc.SetWriteBuffer(chunkBytes)
	}
}

type acceptResult struct {
	link
	err error
}

// acceptLeft waits on every listener for the left neighbour to connect
// and authenticate; strangers and wrong ranks are refused (and
// remembered) while it waits.
func (r *rendezvous) acceptLeft(ctx context.Context, lns []net.Listener, left int) acceptResult {
	deadline, _ := ctx.Deadline()
	found := make(chan link, len(lns))
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				conn, err := ln.Accept()
				if err != nil {
					return // closed: found, failed, or timed out
				}
				_, err = serverHandshake(conn, r.token, roleRing, r.rank, r.size, uint64(r.opt.ChunkBytes), deadline, func(h peerHello) error {
					switch {
					case h.size != r.size:
						return fmt.Errorf("rank %d joined with world size %d, this job has %d", h.rank, h.size, r.size)
					case h.rank != left:
						return fmt.Errorf("rank %d connected to rank %d's ring port, but only its left neighbour rank %d may", h.rank, r.rank, left)
					case h.param != uint64(r.opt.ChunkBytes):
						return fmt.Errorf("rank %d uses Options.ChunkBytes %d, rank %d uses %d: every rank must use the same", h.rank, h.param, r.rank, r.opt.ChunkBytes)
					}
					return nil
				})
				if err != nil {
					r.mu.Lock()
					r.refusals = append(r.refusals, fmt.Sprintf("%s %v", remoteName(conn), err))
					r.mu.Unlock()
					conn.Close()
					continue
				}
				l := link{conn: conn.(ringConn)}
				if _, ok := conn.(*net.UnixConn); ok {
					sizeUnixBuffers(conn, r.opt.ChunkBytes)
					if l.shm, err = acceptShm(conn, r.shm, shmSlots*shmSlotBytes(r.opt.ChunkBytes), deadline); err != nil {
						r.mu.Lock()
						r.refusals = append(r.refusals, fmt.Sprintf("rank %d: shared-memory offer: %v", left, err))
						r.mu.Unlock()
						conn.Close()
						continue
					}
				}
				found <- l
				return
			}
		}()
	}
	var res acceptResult
	select {
	case res.link = <-found:
	case <-ctx.Done():
		res.err = fmt.Errorf("left neighbour rank %d never connected within %v", left, r.opt.Timeout)
	}
	for _, ln := range lns {
		ln.Close()
	}
	// A handshake that completes after the wait is over (Dial is failing)
	// leaves a link nobody will use.
	go func() {
		wg.Wait()
		close(found)
		for l := range found {
			l.conn.Close()
			shmUnmap(l.shm)
		}
	}()
	return res
}

func remoteName(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	return "a local process (Unix socket)"
}

// dialRight looks up the right neighbour's endpoint and connects to it —
// over its Unix socket when it is on this host — retrying while it is not
// reachable yet.
func (r *rendezvous) dialRight(ctx context.Context, st *Store, me endpoint, right int) (endpoint, link, error) {
	b, err := st.Get(ctx, ringKey(right))
	if err != nil {
		if errors.Is(err, ErrStoreTimeout) || ctx.Err() != nil {
			return endpoint{}, link{}, fmt.Errorf("rank %d never registered with the store within %v (not started, crashed, or refused)", right, r.opt.Timeout)
		}
		return endpoint{}, link{}, fmt.Errorf("looking up right neighbour rank %d: %w", right, err)
	}
	ep, err := parseEndpoint(string(b))
	if err != nil {
		return endpoint{}, link{}, err
	}
	deadline, _ := ctx.Deadline()
	var d net.Dialer
	dial := func(network, addr string) (ringConn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		rc := conn.(ringConn)
		if err := clientHandshake(rc, r.token, roleRing, r.rank, r.size, uint64(r.opt.ChunkBytes), right, deadline); err != nil {
			rc.Close()
			return nil, err
		}
		return rc, nil
	}
	if ep.unix != "" && ep.host == me.host && me.unix != "" {
		conn, err := dial("unix", ep.unix)
		if err == nil {
			sizeUnixBuffers(conn, r.opt.ChunkBytes)
			mem, err := offerShm(conn, r.shm, shmSlots*shmSlotBytes(r.opt.ChunkBytes), deadline)
			if err != nil {
				conn.Close()
				return endpoint{}, link{}, fmt.Errorf("right neighbour rank %d: shared-memory offer: %w", right, err)
			}
			return ep, link{conn: conn, shm: mem}, nil
		}
		if errors.Is(err, errRefused) {
			return endpoint{}, link{}, fmt.Errorf("right neighbour rank %d at %s %w", right, ep.unix, err)
		}
		// Another network namespace on the same kernel: use TCP.
	}
	wait := 10 * time.Millisecond
	for {
		conn, err := dial("tcp", ep.tcp)
		if err == nil {
			return ep, link{conn: conn}, nil
		}
		if errors.Is(err, errRefused) {
			return endpoint{}, link{}, fmt.Errorf("right neighbour rank %d at %s %w", right, ep.tcp, err)
		}
		if ctx.Err() != nil {
			return endpoint{}, link{}, fmt.Errorf("connecting to right neighbour rank %d at %s: %w", right, ep.tcp, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// The shared-memory offer, right after a Unix link's handshake: the left
// rank (the sender on this link) creates the region and passes its
// descriptor with its size (0: no region); the right rank maps it and
// answers whether it will use it. Either end may decline (a full /dev/shm,
// EARL_COLLECTIVE_TRANSPORT=socket), and the link then carries payloads
// on the socket.

func offerShm(conn net.Conn, enabled bool, size int, deadline time.Time) (mem []byte, err error) {
	conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{})
	var msg [8]byte
	var f *os.File
	if enabled {
		if f, mem, err = shmCreate(size); err != nil {
			mem = nil // no region: say so, and use the socket
		}
	}
	if f != nil {
		binary.LittleEndian.PutUint64(msg[:], uint64(size))
		err = sendFile(conn, msg[:], f)
		f.Close() // the mapping and the other end's copy keep the region
	} else {
		_, err = conn.Write(msg[:])
	}
	var ok [1]byte
	if err == nil {
		_, err = io.ReadFull(conn, ok[:])
	}
	if err != nil || ok[0] != 1 {
		shmUnmap(mem)
		mem = nil
	}
	return mem, err
}

func acceptShm(conn net.Conn, enabled bool, size int, deadline time.Time) (mem []byte, err error) {
	conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{})
	var msg [8]byte
	fd, err := recvFile(conn, msg[:])
	if err != nil {
		return nil, err
	}
	if fd >= 0 {
		if enabled && binary.LittleEndian.Uint64(msg[:]) == uint64(size) {
			mem, _ = shmMap(fd, size) // cannot map: decline, use the socket
		}
		closeFD(fd)
	}
	reply := []byte{0}
	if mem != nil {
		reply[0] = 1
	}
	if _, err := conn.Write(reply); err != nil {
		shmUnmap(mem)
		return nil, err
	}
	return mem, nil
}
