package collective

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// The rendezvous store is a small key-value server that rank 0 hosts at
// MASTER_ADDR:MASTER_PORT, like PyTorch's TCPStore: ranks register the
// address their ring listener advertises, fetch their neighbour's, and
// may wait on or count keys. Every connection is authenticated (auth.go);
// the server refuses a client whose token, world size or rank does not fit
// the job, and remembers the refusals so rank 0 can say why a rank never
// showed up.
//
// Requests and responses are frames: u32 length, then an op (request) or
// status (response) byte and the body:
//
//	set   u16 len(key) key value             → ok
//	get   u32 timeout_ms u16 len(key) key    → ok value | timeout
//	add   i64 delta u16 len(key) key          → ok i64 (the new value)
//	wait  u32 timeout_ms (u16 len(key) key)* → ok | timeout missing-keys

const (
	opSet  = 1
	opGet  = 2
	opAdd  = 3
	opWait = 4

	stOK      = 0
	stTimeout = 1
	stError   = 2

	maxStoreFrame = 64 << 20
	maxRefusals   = 32
)

// ErrStoreTimeout is returned (wrapped) when a Get or Wait gives up.
var ErrStoreTimeout = errors.New("store: timed out waiting for keys")

// StoreServer is the job's rendezvous store, hosted by rank 0.
type StoreServer struct {
	ln      net.Listener
	size    int
	token   []byte
	timeout time.Duration

	mu       sync.Mutex
	data     map[string][]byte
	changed  chan struct{} // closed and replaced on every change
	ranks    map[int]string
	conns    map[net.Conn]struct{}
	refusals []string
	closed   bool
	done     chan struct{}
	wg       sync.WaitGroup
}

// ListenStore starts a store for a job of size ranks on addr (host:port;
// port 0 picks one). timeout bounds each client's handshake. The caller
// must Close it.
func ListenStore(addr string, size int, token string, timeout time.Duration) (*StoreServer, error) {
	if size < 1 {
		return nil, fmt.Errorf("store: world size %d: need at least 1", size)
	}
	if token == "" {
		return nil, errors.New("store: empty job token: set EARL_JOB_TOKEN to the same secret on every rank")
	}
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("store: listening on %s: %w (is MASTER_PORT taken by another job? pick another)", addr, err)
	}
	s := &StoreServer{
		ln: ln, size: size, token: []byte(token), timeout: timeout,
		data: map[string][]byte{}, changed: make(chan struct{}),
		ranks: map[int]string{}, conns: map[net.Conn]struct{}{}, done: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the address the store listens on.
func (s *StoreServer) Addr() net.Addr { return s.ln.Addr() }

// Refusals lists the connections the store refused (newest last, at most
// 32): who connected, what it claimed, and why it was turned away.
func (s *StoreServer) Refusals() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refusals...)
}

// Close stops the store and disconnects its clients. It is idempotent.
func (s *StoreServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *StoreServer) refuse(remote string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusals = append(s.refusals, fmt.Sprintf("%s %v", remote, err))
	if len(s.refusals) > maxRefusals {
		s.refusals = s.refusals[1:]
	}
}

func (s *StoreServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *StoreServer) serve(c net.Conn) {
	remote := c.RemoteAddr().String()
	h, err := serverHandshake(c, s.token, roleStore, 0, s.size, 0, time.Now().Add(s.timeout), func(h peerHello) error {
		if h.size != s.size {
			return fmt.Errorf("rank %d joined with world size %d, this job has %d", h.rank, h.size, s.size)
		}
		if h.rank < 0 || h.rank >= s.size {
			return fmt.Errorf("rank %d joined, but this job's ranks are 0 to %d", h.rank, s.size-1)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if prev, ok := s.ranks[h.rank]; ok {
			return fmt.Errorf("rank %d is already connected from %s (two processes with the same RANK?)", h.rank, prev)
		}
		s.ranks[h.rank] = remote
		return nil
	})
	if err != nil {
		s.refuse(remote, err)
		return
	}
	defer func() {
		s.mu.Lock()
		delete(s.ranks, h.rank)
		s.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		req, err := readFrame(br)
		if err != nil {
			return
		}
		st, body := s.handle(req)
		if err := writeFrame(c, st, body); err != nil {
			return
		}
	}
}

func (s *StoreServer) handle(req []byte) (byte, []byte) {
	if len(req) < 1 {
		return stError, []byte("empty request")
	}
	op, b := req[0], req[1:]
	switch op {
	case opSet:
		key, val, err := takeKey(b)
		if err != nil {
			return stError, []byte(err.Error())
		}
		s.mu.Lock()
		s.data[key] = append([]byte(nil), val...)
		s.notifyLocked()
		s.mu.Unlock()
		return stOK, nil
	case opAdd:
		if len(b) < 8 {
			return stError, []byte("short add")
		}
		delta := int64(binary.LittleEndian.Uint64(b))
		key, _, err := takeKey(b[8:])
		if err != nil {
			return stError, []byte(err.Error())
		}
		s.mu.Lock()
		var v int64
		if old, ok := s.data[key]; ok && len(old) == 8 {
			v = int64(binary.LittleEndian.Uint64(old))
		}
		v += delta
		s.data[key] = binary.LittleEndian.AppendUint64(nil, uint64(v))
		s.notifyLocked()
		s.mu.Unlock()
		return stOK, binary.LittleEndian.AppendUint64(nil, uint64(v))
	case opGet, opWait:
		if len(b) < 4 {
			return stError, []byte("short request")
		}
		timeout := time.Duration(binary.LittleEndian.Uint32(b)) * time.Millisecond
		var keys []string
		for rest := b[4:]; len(rest) > 0; {
			key, r, err := takeKey(rest)
			if err != nil {
				return stError, []byte(err.Error())
			}
			if op == opGet {
				r = nil
			}
			keys, rest = append(keys, key), r
		}
		missing := s.waitKeys(keys, timeout)
		if len(missing) > 0 {
			return stTimeout, []byte(strings.Join(missing, "\n"))
		}
		if op == opGet {
			s.mu.Lock()
			v := s.data[keys[0]]
			s.mu.Unlock()
			return stOK, v
		}
		return stOK, nil
	}
	return stError, []byte(fmt.Sprintf("unknown store op %d", op))
}

func (s *StoreServer) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitKeys blocks until every key is set or timeout passes, and returns
// the keys still missing.
func (s *StoreServer) waitKeys(keys []string, timeout time.Duration) []string {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		s.mu.Lock()
		var missing []string
		for _, k := range keys {
			if _, ok := s.data[k]; !ok {
				missing = append(missing, k)
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-t.C:
			return missing
		case <-s.done:
			return missing
		}
	}
}

func takeKey(b []byte) (key string, rest []byte, err error) {
	if len(b) < 2 {
		return "", nil, errors.New("short key")
	}
	n := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, errors.New("short key")
	}
	return string(b[2 : 2+n]), b[2+n:], nil
}

func appendKey(b []byte, key string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(key)))
	return append(b, key...)
}

func readFrame(r io.Reader) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(l[:])
	if n > maxStoreFrame {
		return nil, fmt.Errorf("store frame of %d bytes exceeds %d", n, maxStoreFrame)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

func writeFrame(w io.Writer, first byte, body []byte) error {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, 5+len(body)), uint32(1+len(body)))
	b = append(b, first)
	b = append(b, body...)
	_, err := w.Write(b)
	return err
}

// Store is one rank's client of the rendezvous store. Its methods may be
// called from several goroutines; requests are serialised.
type Store struct {
	addr    string
	rank    int
	timeout time.Duration

	mu   sync.Mutex
	conn net.Conn
	br   *bufio.Reader
}

// ConnectStore connects rank (of a job of size ranks) to the store at
// addr, retrying while the store is not up yet (rank 0 may start last)
// until ctx ends or timeout passes; timeout also bounds each Get and
// Wait. A refusal (wrong token, world size or rank) is returned at once.
func ConnectStore(ctx context.Context, addr string, rank, size int, token string, timeout time.Duration) (*Store, error) {
	if token == "" {
		return nil, errors.New("store: empty job token: set EARL_JOB_TOKEN to the same secret on every rank")
	}
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var d net.Dialer
	wait := 20 * time.Millisecond
	for {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			err = clientHandshake(c, []byte(token), roleStore, rank, size, 0, 0, deadline)
			if err == nil {
				return &Store{addr: addr, rank: rank, timeout: timeout, conn: c, br: bufio.NewReader(c)}, nil
			}
			c.Close()
			if errors.Is(err, errRefused) {
				return nil, fmt.Errorf("the rendezvous store at %s %w", addr, err)
			}
		}
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("cannot reach the rendezvous store at %s within %v: %w (is rank 0 running, and MASTER_ADDR/MASTER_PORT the same on every rank?)",
				addr, timeout, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// Close disconnects from the store.
func (s *Store) Close() error { return s.conn.Close() }

// request sends one request and returns the response; wait is how long
// the server may block on it.
func (s *Store) request(ctx context.Context, what string, req []byte, wait time.Duration) (byte, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	deadline := time.Now().Add(wait + 5*time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { s.conn.SetDeadline(time.Now()) })
	defer stop()
	if err := writeFrame(s.conn, req[0], req[1:]); err != nil {
		return 0, nil, fmt.Errorf("store %s at %s: %w", what, s.addr, err)
	}
	resp, err := readFrame(s.br)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return 0, nil, fmt.Errorf("store %s at %s: %w", what, s.addr, err)
	}
	if len(resp) < 1 {
		return 0, nil, fmt.Errorf("store %s at %s: empty response", what, s.addr)
	}
	if resp[0] == stError {
		return 0, nil, fmt.Errorf("store %s at %s: %s", what, s.addr, resp[1:])
	}
	return resp[0], resp[1:], nil
}

// waitMillis is how long the server may block: the store's timeout,
// shortened by ctx's deadline.
func (s *Store) waitMillis(ctx context.Context) (time.Duration, uint32) {
	w := s.timeout
	if d, ok := ctx.Deadline(); ok {
		// Leave the server time to answer "timeout" before ctx expires,
		// so the caller learns which keys were missing.
		w = min(w, time.Until(d)-50*time.Millisecond)
	}
	w = max(w, 0)
	return w, uint32(min(w.Milliseconds(), 1<<31))
}

// Set stores value under key, waking every Get and Wait on it. It waits
// for no other rank, only for the store's answer (a few seconds at most),
// so it takes no context — which lets *Store serve as collective/nccl's
// Store.
func (s *Store) Set(key string, value []byte) error {
	req := appendKey([]byte{opSet}, key)
	_, _, err := s.request(context.Background(), "set "+key, append(req, value...), 0)
	return err
}

// Get returns key's value, waiting until some rank sets it, for at most
// the store's timeout (and ctx).
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	w, ms := s.waitMillis(ctx)
	req := binary.LittleEndian.AppendUint32([]byte{opGet}, ms)
	st, body, err := s.request(ctx, "get "+key, appendKey(req, key), w)
	if err != nil {
		return nil, err
	}
	if st == stTimeout {
		return nil, fmt.Errorf("store get %q: %w (%v)", key, ErrStoreTimeout, w.Round(time.Millisecond))
	}
	return body, nil
}

// Add adds delta to the counter under key (absent: 0) and returns the new
// value.
func (s *Store) Add(ctx context.Context, key string, delta int64) (int64, error) {
	req := binary.LittleEndian.AppendUint64([]byte{opAdd}, uint64(delta))
	_, body, err := s.request(ctx, "add "+key, appendKey(req, key), 0)
	if err != nil {
		return 0, err
	}
	if len(body) != 8 {
		return 0, fmt.Errorf("store add %q: malformed reply", key)
	}
	return int64(binary.LittleEndian.Uint64(body)), nil
}

// Wait blocks until every key is set, for at most the store's timeout
// (and ctx); the error names the keys still missing.
func (s *Store) Wait(ctx context.Context, keys ...string) error {
	w, ms := s.waitMillis(ctx)
	req := binary.LittleEndian.AppendUint32([]byte{opWait}, ms)
	for _, k := range keys {
		req = appendKey(req, k)
	}
	st, body, err := s.request(ctx, "wait", req, w)
	if err != nil {
		return err
	}
	if st == stTimeout {
		return fmt.Errorf("store wait: %w (%v): missing %s", ErrStoreTimeout, w.Round(time.Millisecond), strings.ReplaceAll(string(body), "\n", ", "))
	}
	return nil
}
