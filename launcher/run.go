package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"earl/slurm"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "start N local ranks of a command, torchrun style (no Slurm needed)",
		UsageText: "launcher run --nproc N [--master-addr A] [--master-port P] [--grace D] -- CMD [ARGS...]",
		Description: "Starts N copies of CMD with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,\n" +
			"MASTER_ADDR, MASTER_PORT and a fresh EARL_JOB_TOKEN, and OMP_NUM_THREADS and GOMAXPROCS\n" +
			"set to the machine's CPUs / N (at least 1) unless already set. Each line a rank prints\n" +
			"is prefixed with [rank i]. SIGINT, SIGTERM and SIGUSR1 are forwarded to every rank.\n" +
			"When a rank fails the others get SIGTERM, then SIGKILL after --grace, and launcher\n" +
			"exits with the failed rank's status (128+N for signal N); 0 when every rank succeeds.\n" +
			"Put CMD after -- when it has flags of its own.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nproc", Usage: "ranks to start", Required: true, DefaultText: "required"},
			&cli.StringFlag{Name: "master-addr", Value: "127.0.0.1", Usage: "address of rank 0's rendezvous store"},
			&cli.IntFlag{Name: "master-port", Usage: "rendezvous port", DefaultText: "a free port, picked now"},
			&cli.DurationFlag{Name: "grace", Value: 10 * time.Second, Usage: "after a failure or SIGINT / SIGTERM, how long ranks get to exit before SIGKILL"},
		},
		Action: runRun,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return cli.Exit(fmt.Sprintf("run: %v (a command with flags of its own goes after --: launcher run --nproc N -- CMD ARGS...)", err), 2)
		},
	}
}

// rankProc is one started rank.
type rankProc struct {
	rank  int
	cmd   *exec.Cmd
	pipes sync.WaitGroup // the stdout / stderr copiers

	mu     sync.Mutex
	exited bool // reaped: its process group may no longer exist
}

// signal sends sig to the rank's process group (the rank and anything it
// started), unless the rank has already been reaped.
func (p *rankProc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exited {
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

type rankExit struct {
	rank int
	code int    // exit status, 128+N for signal N
	how  string // "exited with status 3", "was killed by signal 9 (killed)"
}

func runRun(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) == 0 {
		return cli.Exit("run: no command: launcher run --nproc N -- CMD [ARGS...]", 2)
	}
	n := c.Int("nproc")
	if n < 1 {
		return cli.Exit(fmt.Sprintf("run: --nproc %d: need at least 1 rank", n), 2)
	}
	addr, port := c.String("master-addr"), c.Int("master-port")
	if port < 0 || port > 65535 {
		return cli.Exit(fmt.Sprintf("run: --master-port %d is not a TCP port", port), 2)
	}
	if port == 0 {
		var err error
		if port, err = freePort(addr); err != nil {
			return err
		}
	}
	token, err := slurm.NewToken()
	if err != nil {
		return err
	}
	env := rankBaseEnv(os.Environ(), n, runtime.NumCPU())

	// Catch the signals before any rank starts, so none is lost.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	fmt.Fprintf(os.Stderr, "launcher run: %d ranks of %s, master %s:%d\n", n, quoteArgs(args), addr, port)
	var outMu, errMu sync.Mutex
	procs := make([]*rankProc, 0, n)
	for i := range n {
		p, err := startRank(i, args, append(slices.Clip(env),
			fmt.Sprintf("RANK=%d", i), fmt.Sprintf("WORLD_SIZE=%d", n),
			fmt.Sprintf("LOCAL_RANK=%d", i), fmt.Sprintf("LOCAL_WORLD_SIZE=%d", n),
			"MASTER_ADDR="+addr, fmt.Sprintf("MASTER_PORT=%d", port), "EARL_JOB_TOKEN="+token,
		), &outMu, &errMu)
		if err != nil {
			for _, q := range procs {
				q.signal(syscall.SIGKILL)
				q.cmd.Wait()
			}
			return cli.Exit(fmt.Sprintf("run: start rank %d: %v", i, err), 127)
		}
		procs = append(procs, p)
	}

	exits := make(chan rankExit, n)
	for _, p := range procs {
		go func() {
			p.cmd.Wait()
			p.mu.Lock()
			p.exited = true
			p.mu.Unlock()
			// Output still in the pipes comes first; a grandchild that
			// keeps them open does not hold the launcher forever.
			done := make(chan struct{})
			go func() { p.pipes.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
			}
			exits <- exitOf(p.rank, p.cmd.ProcessState)
		}()
	}

	grace := c.Duration("grace")
	var killTimer <-chan time.Time
	stopAll := func(sig syscall.Signal) {
		for _, p := range procs {
			p.signal(sig)
		}
	}
	var failed *rankExit
	for running := n; running > 0; {
		select {
		case e := <-exits:
			running--
			if e.code != 0 && failed == nil {
				failed = &e
				if running > 0 {
					fmt.Fprintf(os.Stderr, "launcher run: rank %d %s; stopping the other %d ranks (SIGTERM, SIGKILL after %v)\n", e.rank, e.how, running, grace)
					stopAll(syscall.SIGTERM)
					if killTimer == nil {
						killTimer = time.After(grace)
					}
				}
			}
		case s := <-sigs:
			sig := s.(syscall.Signal)
			fmt.Fprintf(os.Stderr, "launcher run: forwarding %v to %d ranks\n", sig, running)
			stopAll(sig)
			if sig != syscall.SIGUSR1 && killTimer == nil {
				killTimer = time.After(grace)
			}
		case <-killTimer:
			fmt.Fprintf(os.Stderr, "launcher run: %d ranks still running after %v: SIGKILL\n", running, grace)
			stopAll(syscall.SIGKILL)
			killTimer = nil
		}
	}
	if failed != nil {
		return cli.Exit(fmt.Sprintf("run: rank %d %s", failed.rank, failed.how), failed.code)
	}
	return nil
}

// rankBaseEnv is the environment every rank shares: the launcher's own,
// plus OMP_NUM_THREADS and GOMAXPROCS of cpus/n (at least 1) where unset,
// so that n ranks do not each start a thread per core.
func rankBaseEnv(environ []string, n, cpus int) []string {
	env := append([]string{}, environ...)
	threads := max(1, cpus/n)
	for _, k := range []string{"OMP_NUM_THREADS", "GOMAXPROCS"} {
		set := false
		for _, kv := range environ {
			if strings.HasPrefix(kv, k+"=") {
				set = true
			}
		}
		if !set {
			env = append(env, fmt.Sprintf("%s=%d", k, threads))
		}
	}
	return env
}

// startRank starts one rank in its own process group (so that a terminal's
// Ctrl-C reaches it once, through the launcher) with its output copied
// line by line behind a "[rank i] " prefix.
func startRank(i int, args, env []string, outMu, errMu *sync.Mutex) (*rankProc, error) {
	p := &rankProc{rank: i, cmd: exec.Command(args[0], args[1:]...)}
	p.cmd.Env = env
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	p.cmd.Stdout, p.cmd.Stderr = outW, errW
	err = p.cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	prefix := fmt.Sprintf("[rank %d] ", i)
	p.pipes.Add(2)
	go func() { defer p.pipes.Done(); prefixLines(os.Stdout, outMu, outR, prefix) }()
	go func() { defer p.pipes.Done(); prefixLines(os.Stderr, errMu, errR, prefix) }()
	return p, nil
}

// prefixLines copies r to w line by line, each line behind prefix, holding
// mu for each line so that ranks' lines never interleave. A last line
// without a newline gets one.
func prefixLines(w io.Writer, mu *sync.Mutex, r io.ReadCloser, prefix string) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				line = append(line, '\n')
			}
			mu.Lock()
			io.WriteString(w, prefix)
			w.Write(line)
			mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func exitOf(rank int, ps *os.ProcessState) rankExit {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return rankExit{rank, 128 + int(ws.Signal()), fmt.Sprintf("was killed by signal %d (%v)", int(ws.Signal()), ws.Signal())}
	}
	return rankExit{rank, ps.ExitCode(), fmt.Sprintf("exited with status %d", ps.ExitCode())}
}

// freePort asks the kernel for a free TCP port on addr (any address when
// addr is not this machine's). Another program could take it before rank
// 0 listens; pass --master-port to choose one.
func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		var aerr *net.OpError
		if !errors.As(err, &aerr) {
			return 0, fmt.Errorf("pick a free port: %w (pass --master-port)", err)
		}
		if l, err = net.Listen("tcp", ":0"); err != nil {
			return 0, fmt.Errorf("pick a free port: %w (pass --master-port)", err)
		}
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
