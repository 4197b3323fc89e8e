package collective

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// *Store is the rendezvous collective/nccl's New takes.
var _ interface {
	Set(key string, value []byte) error
	Get(ctx context.Context, key string) ([]byte, error)
} = (*Store)(nil)

func TestStore(t *testing.T) {
	srv, err := ListenStore("127.0.0.1:0", 3, testToken, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	var st [3]*Store
	for r := range st {
		if st[r], err = ConnectStore(ctx, srv.Addr().String(), r, 3, testToken, time.Second); err != nil {
			t.Fatal(err)
		}
		defer st[r].Close()
	}
	// A blocking Get is woken by another rank's Set.
	got := make(chan []byte, 1)
	go func() {
		v, err := st[1].Get(ctx, "k")
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	time.Sleep(20 * time.Millisecond)
	if err := st[0].Set("k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if v := <-got; string(v) != "v1" {
		t.Fatalf("Get = %q", v)
	}
	// Add is atomic across ranks.
	var wg sync.WaitGroup
	for r := range st {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := st[r].Add(ctx, "n", 2); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if v, err := st[2].Add(ctx, "n", 0); err != nil || v != 60 {
		t.Fatalf("Add total = %d, %v; want 60", v, err)
	}
	if err := st[2].Wait(ctx, "k", "n"); err != nil {
		t.Fatal(err)
	}
	// Timeouts name what is missing.
	start := time.Now()
	if _, err := st[2].Get(ctx, "never"); !errors.Is(err, ErrStoreTimeout) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	if el := time.Since(start); el < 900*time.Millisecond || el > 2*time.Second {
		t.Errorf("Get timed out after %v, want 1s", el)
	}
	ctx2, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := st[2].Wait(ctx2, "k", "absent"); !errors.Is(err, ErrStoreTimeout) || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("Wait: %v", err)
	}
}

// A client must prove the job token, claim the job's world size and a
// free rank in range; refusals are reported to the client and recorded
// by the server.
func TestStoreRefusals(t *testing.T) {
	srv, err := ListenStore("127.0.0.1:0", 2, testToken, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr, ctx := srv.Addr().String(), context.Background()
	first, err := ConnectStore(ctx, addr, 1, 2, testToken, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	cases := []struct {
		rank, size int
		token      string
		want       string
	}{
		{0, 2, "wrong-token", "authentication failed"},
		{3, 4, testToken, "rank 3 joined with world size 4, this job has 2"},
		{5, 2, testToken, "rank 5 joined, but this job's ranks are 0 to 1"},
		{1, 2, testToken, "rank 1 is already connected"},
	}
	for _, tc := range cases {
		_, err := ConnectStore(ctx, addr, tc.rank, tc.size, tc.token, time.Second)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("rank %d size %d token %q: %v, want %q", tc.rank, tc.size, tc.token, err, tc.want)
		} else {
			t.Log(err)
		}
	}
	// The server records a refusal after sending its verdict, each
	// connection in its own goroutine: wait for all, in any order.
	var ref []string
	for start := time.Now(); len(ref) < len(cases) && time.Since(start) < 2*time.Second; time.Sleep(5 * time.Millisecond) {
		ref = srv.Refusals()
	}
	all := strings.Join(ref, "\n")
	for _, want := range []string{"wrong EARL_JOB_TOKEN", cases[1].want, cases[2].want, cases[3].want} {
		if !strings.Contains(all, want) {
			t.Errorf("the server's refusals lack %q:\n%s", want, all)
		}
	}
}

// A stranger — garbage, silence, or a forged hello — gets nothing from the
// store and cannot put anything in it; the job's clients carry on.
func TestStoreStranger(t *testing.T) {
	srv, err := ListenStore("127.0.0.1:0", 1, testToken, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.Addr().String()
	// Garbage.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(strings.Repeat("SET key evil\n", 100)))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(c) // the challenge, then the server hangs up
	c.Close()
	if len(b) > len(authMagic)+1+32 {
		t.Errorf("the store sent a stranger %d bytes beyond its challenge", len(b))
	}
	// A well-formed hello that guesses the MAC: a stranger's frames are
	// never served (the verdict says refused and the server hangs up).
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	chal := make([]byte, len(authMagic)+1+32)
	io.ReadFull(c, chal)
	hello := append([]byte(authMagic), byte(roleStore))
	hello = append(hello, make([]byte, 4+4+8+32+32)...)
	hello[len(authMagic)+5] = 1 // size 1
	c.Write(hello)
	c.Write([]byte{9, 0, 0, 0, opSet, 3, 0, 'e', 'v', 'l', 'x', 'x', 'x'})
	rest, _ := io.ReadAll(c)
	c.Close()
	if len(rest) == 0 || rest[0] != verdictRefused {
		t.Errorf("forged hello: verdict % x", rest)
	}
	// Silence: the server gives up after its timeout without blocking
	// anyone else.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	st, err := ConnectStore(context.Background(), addr, 0, 1, testToken, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := st.Get(ctx, "evl"); err == nil {
		t.Error("the stranger's key is in the store")
	}
	if len(srv.Refusals()) < 2 {
		t.Errorf("refusals: %q", srv.Refusals())
	}
	t.Logf("refusals: %q", srv.Refusals())
}

// A client that meets a server without the token refuses it: a stranger
// on MASTER_PORT cannot impersonate the store.
func TestStrangerServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		_, err = serverHandshake(c, []byte("not-the-token"), roleStore, 0, 2, 0, time.Now().Add(2*time.Second), func(peerHello) error { return nil })
		srvErr <- err
	}()
	_, err = ConnectStore(context.Background(), ln.Addr().String(), 1, 2, testToken, time.Second)
	if err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Errorf("client: %v", err)
	}
	if err := <-srvErr; err == nil {
		t.Error("the impostor's handshake succeeded")
	} else {
		t.Logf("impostor side: %v", err)
	}
}

// An impostor that does not know the token but answers "accepted" is
// caught by the client, which checks the server's MAC, and hears no data.
func TestClientRejectsImpostor(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ack := make(chan []byte, 1)
	go func() {
		a.SetDeadline(time.Now().Add(2 * time.Second))
		chal := append([]byte(authMagic), byte(roleRing))
		a.Write(append(chal, make([]byte, 32)...))
		io.ReadFull(a, make([]byte, len(authMagic)+1+4+4+8+32+32))
		verdict := []byte{verdictOK, 1, 0, 0, 0, 2, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		a.Write(append(verdict, make([]byte, 32)...)) // a guessed MAC
		b, _ := io.ReadAll(a)
		ack <- b
	}()
	err := clientHandshake(b, []byte(testToken), roleRing, 0, 2, 64, 1, time.Now().Add(2*time.Second))
	if err == nil || !strings.Contains(err.Error(), "did not prove knowledge of EARL_JOB_TOKEN") {
		t.Fatalf("client: %v", err)
	}
	b.Close()
	if got := <-ack; len(got) != 1 || got[0] != verdictRefused {
		t.Errorf("the impostor got % x, want the refusal byte only", got)
	}
	t.Logf("client: %v", err)
}

// A rank with the wrong token is refused, and both sides say so: the
// intruder at once, rank 0 when the rendezvous times out, listing the
// refusal as the reason rank 1 never arrived.
func TestWrongToken(t *testing.T) {
	port := freePort(t)
	var errs [2]error
	var took [2]time.Duration
	var wg sync.WaitGroup
	for r, tok := range []string{testToken, "some-other-job"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			c, err := Dial(context.Background(), r, 2, "127.0.0.1", port, tok, Options{Timeout: 2 * time.Second})
			if c != nil {
				c.Close()
			}
			errs[r], took[r] = err, time.Since(start)
		}()
	}
	wg.Wait()
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "authentication failed") {
		t.Errorf("rank 1: %v", errs[1])
	}
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "rank 1 never registered") || !strings.Contains(errs[0].Error(), "wrong EARL_JOB_TOKEN") {
		t.Errorf("rank 0: %v", errs[0])
	}
	for r, err := range errs {
		t.Logf("rank %d after %v: %v", r, took[r].Round(time.Millisecond), err)
	}
}

// A rank launched with another world size is refused with both numbers.
func TestWorldSizeMismatch(t *testing.T) {
	port := freePort(t)
	var errs [2]error
	var wg sync.WaitGroup
	for r, size := range []int{2, 3} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(context.Background(), r, size, "127.0.0.1", port, testToken, Options{Timeout: 2 * time.Second})
			if c != nil {
				c.Close()
			}
			errs[r] = err
		}()
	}
	wg.Wait()
	want := "rank 1 joined with world size 3, this job has 2"
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rank %d: %v, want %q", r, err, want)
		} else {
			t.Logf("rank %d: %v", r, err)
		}
	}
}

// Ranks must agree on the chunk size; the handshake says who differs.
func TestChunkBytesMismatch(t *testing.T) {
	port := freePort(t)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(context.Background(), r, 2, "127.0.0.1", port, testToken,
				Options{Timeout: 2 * time.Second, ChunkBytes: 4096 << r})
			if c != nil {
				c.Close()
			}
			errs[r] = err
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "ChunkBytes") {
			t.Errorf("rank %d: %v", r, err)
		} else {
			t.Logf("rank %d: %v", r, err)
		}
	}
}

func TestDialArguments(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		rank, size, port int
		token            string
		opt              Options
		want             string
	}{
		{2, 2, 1234, "t", Options{}, "need 0 <= rank < size"},
		{0, 2, 1234, "", Options{}, "EARL_JOB_TOKEN"},
		{0, 2, 0, "t", Options{}, "MASTER_PORT"},
		{0, 2, 1234, "t", Options{ChunkBytes: 3}, "ChunkBytes"},
		{0, 2, 1234, "t", Options{Interface: "no-such-if0"}, "no-such-if0"},
	} {
		_, err := Dial(ctx, tc.rank, tc.size, "127.0.0.1", tc.port, tc.token, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc, err)
		}
	}
	// A one-rank job needs no network.
	c, err := Dial(ctx, 0, 1, "nowhere.invalid", 1, "", Options{})
	if err != nil || c.Size() != 1 {
		t.Fatalf("size 1: %v", err)
	}
	c.Close()
}

// Options.Interface takes an address or an interface name.
func TestBindIP(t *testing.T) {
	for _, tc := range []struct{ iface, master, want string }{
		{"", "127.0.0.1", "127.0.0.1"},
		{"", "localhost", "127.0.0.1"},
		{"127.0.0.1", "10.1.2.3", "127.0.0.1"},
		{"lo", "10.1.2.3", "127.0.0.1"},
	} {
		ip, err := bindIP(tc.iface, tc.master)
		if err != nil || ip.String() != tc.want {
			t.Errorf("bindIP(%q, %q) = %v, %v; want %s", tc.iface, tc.master, ip, err, tc.want)
		}
	}
}
