package collective

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Every connection of a job — a rank to the rendezvous store, a rank to
// its ring neighbour — starts with a mutual challenge-response proving
// that both ends know the job's secret (EARL_JOB_TOKEN), before a byte of
// data is accepted:
//
//	server → client  challenge: "EARL-AUTH-1", role, nonceS[32]
//	client → server  hello:     "EARL-AUTH-1", role, rank, size, param, nonceC[32],
//	                            HMAC-SHA256(token, "client" | nonceS | role | rank | size | param)
//	server → client  verdict:   status, rank, size, param, len(msg), msg,
//	                            HMAC-SHA256(token, "server" | nonceC | role | status | rank | size | param | msg)
//	client → server  ack:       status (the client accepted the server's proof)
//
// The nonces are fresh per connection, so a recorded exchange cannot be
// replayed, and the role is inside the MAC, so a store handshake cannot
// be passed off as a ring one. After authenticating the client, the
// server checks what it claims — the world size, the rank it must have
// (the left neighbour on a ring socket), the chunk size (param) — and
// refuses with a message saying what differs. The connection is not
// encrypted and its data is not MAC'd: the token keeps strangers (a port
// scanner, another job on a reused port) from joining or injecting data,
// not an attacker who can rewrite packets on the path.

const authMagic = "EARL-AUTH-1"

type role uint8

const (
	roleStore role = 1
	roleRing  role = 2
)

func (r role) String() string {
	if r == roleStore {
		return "store"
	}
	return "ring"
}

const (
	verdictOK      = 0
	verdictRefused = 1
)

// errRefused marks a handshake the other side refused: retrying will not
// help.
var errRefused = errors.New("refused")

// peerHello is what a client claims about itself.
type peerHello struct {
	rank, size int
	param      uint64
}

func authMAC(token []byte, side string, nonce []byte, r role, fields ...uint64) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(side))
	m.Write(nonce)
	m.Write([]byte{byte(r)})
	var b [8]byte
	for _, f := range fields {
		binary.LittleEndian.PutUint64(b[:], f)
		m.Write(b[:])
	}
	return m.Sum(nil)
}

// serverHandshake authenticates the client on conn and asks check whether
// its claims fit; a nil error means both sides proved the token and the
// client accepted. The returned hello is authenticated.
func serverHandshake(conn net.Conn, token []byte, r role, myRank, size int, param uint64, deadline time.Time,
	check func(peerHello) error) (peerHello, error) {
	conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{})
	var nonceS [32]byte
	if _, err := rand.Read(nonceS[:]); err != nil {
		return peerHello{}, err
	}
	chal := append([]byte(authMagic), byte(r))
	chal = append(chal, nonceS[:]...)
	if _, err := conn.Write(chal); err != nil {
		return peerHello{}, fmt.Errorf("sending the challenge: %w", err)
	}
	// hello: magic, role, rank u32, size u32, param u64, nonceC, mac
	buf := make([]byte, len(authMagic)+1+4+4+8+32+32)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return peerHello{}, fmt.Errorf("reading the hello (not an earl rank?): %w", err)
	}
	if string(buf[:len(authMagic)]) != authMagic {
		return peerHello{}, fmt.Errorf("not an earl rank: bad hello %q", buf[:len(authMagic)])
	}
	b := buf[len(authMagic):]
	if role(b[0]) != r {
		return peerHello{}, fmt.Errorf("a %s connection reached the %s port", role(b[0]), r)
	}
	h := peerHello{
		rank:  int(binary.LittleEndian.Uint32(b[1:])),
		size:  int(binary.LittleEndian.Uint32(b[5:])),
		param: binary.LittleEndian.Uint64(b[9:]),
	}
	nonceC, mac := b[17:49], b[49:81]
	want := authMAC(token, "client", nonceS[:], r, uint64(h.rank), uint64(h.size), h.param)
	status, msg := byte(verdictOK), ""
	var refusal error
	if !hmac.Equal(mac, want) {
		status = verdictRefused
		msg = "authentication failed: this rank's EARL_JOB_TOKEN differs from the job's"
		refusal = fmt.Errorf("claiming rank %d: authentication failed (wrong EARL_JOB_TOKEN)", h.rank)
	} else if err := check(h); err != nil {
		status = verdictRefused
		msg = err.Error()
		refusal = fmt.Errorf("claiming rank %d: %w", h.rank, err)
	}
	v := []byte{status}
	v = binary.LittleEndian.AppendUint32(v, uint32(myRank))
	v = binary.LittleEndian.AppendUint32(v, uint32(size))
	v = binary.LittleEndian.AppendUint64(v, param)
	v = binary.LittleEndian.AppendUint16(v, uint16(len(msg)))
	v = append(v, msg...)
	v = append(v, authMAC(token, "server"+msg, nonceC, r, uint64(status), uint64(myRank), uint64(size), param)...)
	if _, err := conn.Write(v); err != nil {
		return peerHello{}, fmt.Errorf("sending the verdict: %w", err)
	}
	if refusal != nil {
		return peerHello{}, refusal
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != verdictOK {
		return peerHello{}, fmt.Errorf("rank %d did not accept this rank's proof of EARL_JOB_TOKEN", h.rank)
	}
	return h, nil
}

// clientHandshake proves the token to the server on conn and checks the
// server's proof. wantRank >= 0 is the rank the server must be.
func clientHandshake(conn net.Conn, token []byte, r role, myRank, size int, param uint64, wantRank int, deadline time.Time) error {
	conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{})
	chal := make([]byte, len(authMagic)+1+32)
	if _, err := io.ReadFull(conn, chal); err != nil {
		return fmt.Errorf("reading the challenge (not an earl %s?): %w", r, err)
	}
	if string(chal[:len(authMagic)]) != authMagic || role(chal[len(authMagic)]) != r {
		return fmt.Errorf("%w: the server is not an earl %s (bad challenge)", errRefused, r)
	}
	nonceS := chal[len(authMagic)+1:]
	var nonceC [32]byte
	if _, err := rand.Read(nonceC[:]); err != nil {
		return err
	}
	hello := append([]byte(authMagic), byte(r))
	hello = binary.LittleEndian.AppendUint32(hello, uint32(myRank))
	hello = binary.LittleEndian.AppendUint32(hello, uint32(size))
	hello = binary.LittleEndian.AppendUint64(hello, param)
	hello = append(hello, nonceC[:]...)
	hello = append(hello, authMAC(token, "client", nonceS, r, uint64(myRank), uint64(size), param)...)
	if _, err := conn.Write(hello); err != nil {
		return fmt.Errorf("sending the hello: %w", err)
	}
	var v [1 + 4 + 4 + 8 + 2]byte
	if _, err := io.ReadFull(conn, v[:]); err != nil {
		return fmt.Errorf("reading the verdict: %w", err)
	}
	status := v[0]
	srank := int(binary.LittleEndian.Uint32(v[1:]))
	ssize := int(binary.LittleEndian.Uint32(v[5:]))
	sparam := binary.LittleEndian.Uint64(v[9:])
	msg := make([]byte, binary.LittleEndian.Uint16(v[17:]))
	mac := make([]byte, 32)
	if _, err := io.ReadFull(conn, msg); err != nil {
		return fmt.Errorf("reading the verdict: %w", err)
	}
	if _, err := io.ReadFull(conn, mac); err != nil {
		return fmt.Errorf("reading the verdict: %w", err)
	}
	authentic := hmac.Equal(mac, authMAC(token, "server"+string(msg), nonceC[:], r, uint64(status), uint64(srank), uint64(ssize), sparam))
	if status != verdictOK {
		if authentic {
			return fmt.Errorf("%w by rank %d: %s", errRefused, srank, msg)
		}
		return fmt.Errorf("%w: %s", errRefused, msg)
	}
	fail := func(format string, a ...any) error {
		conn.Write([]byte{verdictRefused})
		return fmt.Errorf("%w: "+format, append([]any{errRefused}, a...)...)
	}
	if !authentic {
		return fail("the server did not prove knowledge of EARL_JOB_TOKEN (a stranger, or another job on this port)")
	}
	if ssize != size {
		return fail("the server is rank %d of a job of world size %d, this rank's world size is %d", srank, ssize, size)
	}
	if wantRank >= 0 && srank != wantRank {
		return fail("the server is rank %d, expected rank %d (stale address in the store?)", srank, wantRank)
	}
	if _, err := conn.Write([]byte{verdictOK}); err != nil {
		return fmt.Errorf("sending the ack: %w", err)
	}
	return nil
}
