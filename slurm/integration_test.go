package slurm

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSlurmIntegration runs earl's sbatch scripts on a real single-node
// Slurm cluster that it starts itself, as root, from Debian's packages
// (make deps installs munge, slurmctld, slurmd and slurm-client): munged,
// slurmctld and slurmd with every file under one temporary directory, four
// fake GPUs (character devices made with mknod) as gres, and free ports.
// It then submits scripts made by `launcher sbatch`:
//
//  1. worker selftest on 2 ranks (--gpus-per-task=1) and on 4 ranks
//     (--gres=gpu:4): every rank's every collective line, one GPU each;
//  2. a job whose rank 1 exits 3: the step is killed, the job FAILED;
//  3. worker selftest --hold on 2 ranks, sent USR1 with
//     `scancel --signal=USR1 --batch`: the script's trap forwards it, each
//     rank writes its marker and exits 0, and the script requeues the job;
//  4. worker train (SFT on a tiny model) on 2 ranks, sent USR1 mid-run:
//     the ranks checkpoint and exit 0, the job is requeued, and the
//     requeued run resumes from that checkpoint and finishes;
//  5. launcher eval --script on that run: a job array, one task per
//     checkpoint, each worker eval on 2 ranks writing its tables; made
//     again, the script has nothing left to do.
//
// It cancels what is left and stops exactly the daemons it started (by
// their pid files). When Slurm cannot start it fails, with the reason and
// the tails of the daemons' logs; it never skips.
func TestSlurmIntegration(t *testing.T) {
	start := time.Now()
	c := newCluster(t)
	bins := make(chan error, 1)
	go func() { bins <- c.buildBinaries() }()
	c.start()
	if err := <-bins; err != nil {
		c.fatalf("%v", err)
	}
	t.Logf("cluster up and binaries built in %v", time.Since(start).Round(time.Millisecond))

	for _, job := range []struct {
		ranks   int
		gpuFlag string
	}{{2, GPUPerTask}, {4, GPUGres}} {
		t0 := time.Now()
		name := fmt.Sprintf("selftest%d", job.ranks)
		id := c.submit(name, job.ranks, job.gpuFlag, "worker selftest --size-elements 20011 --iters 2 --timeout 30s")
		info := c.waitDone(id, 60*time.Second)
		out := c.jobOutput(name, id)
		if info["JobState"] != "COMPLETED" || info["ExitCode"] != "0:0" {
			c.fatalf("job %s (%d ranks): JobState=%s ExitCode=%s Reason=%s\n%s", id, job.ranks, info["JobState"], info["ExitCode"], info["Reason"], out)
		}
		c.checkSelftest(out, id, job.ranks)
		t.Logf("job %s: %d ranks (%s) completed and checked in %v", id, job.ranks, job.gpuFlag, time.Since(t0).Round(time.Millisecond))
	}

	// A failing rank: --kill-on-bad-exit ends the others (rank 0 would
	// otherwise wait in the rendezvous), and the script exits with srun's
	// status, so the job fails.
	t0 := time.Now()
	id := c.submit("fail", 2, GPUPerTask, `sh -c 'if [ "$SLURM_PROCID" = 1 ]; then echo "rank 1 fails"; exit 3; fi; exec worker selftest --hold 300'`)
	info := c.waitDone(id, 60*time.Second)
	out := c.jobOutput("fail", id)
	if info["JobState"] != "FAILED" || info["ExitCode"] == "0:0" || !strings.Contains(out, "task 1: Exited with exit code 3") {
		c.fatalf("job %s with a failing rank: JobState=%s ExitCode=%s\n%s", id, info["JobState"], info["ExitCode"], out)
	}
	t.Logf("job %s: rank 1 exited 3 -> job FAILED, ExitCode=%s in %v", id, info["ExitCode"], time.Since(t0).Round(time.Millisecond))

	// Preemption: USR1 to the batch shell, forwarded to the workers, which
	// write their markers and exit 0; then the script requeues the job.
	t0 = time.Now()
	markers := filepath.Join(c.dir, "markers")
	if err := os.MkdirAll(markers, 0o755); err != nil {
		t.Fatal(err)
	}
	id = c.submit("hold", 2, GPUPerTask, "worker selftest --size-elements 1000 --iters 1 --hold 300 --marker-dir "+markers)
	c.waitFor(60*time.Second, "both ranks of job "+id+" holding", func() bool {
		return strings.Count(c.jobOutput("hold", id), ": holding for 300 s") == 2
	})
	c.slurm("scancel", "--signal=USR1", "--batch", id)
	c.waitFor(30*time.Second, "the markers of job "+id, func() bool {
		for r := range 2 {
			if _, err := os.Stat(filepath.Join(markers, fmt.Sprintf("usr1-rank%d", r))); err != nil {
				return false
			}
		}
		return true
	})
	for r := range 2 {
		b, _ := os.ReadFile(filepath.Join(markers, fmt.Sprintf("usr1-rank%d", r)))
		if want := fmt.Sprintf("rank %d of 2, job %q", r, id); !strings.Contains(string(b), want) {
			t.Errorf("marker of rank %d: %q, want %q", r, b, want)
		}
	}
	c.waitFor(30*time.Second, "job "+id+" requeued", func() bool {
		info = c.showJob(id)
		return info["Restarts"] == "1"
	})
	if s := info["JobState"]; s != "PENDING" && s != "REQUEUED" && s != "RUNNING" && s != "CONFIGURING" {
		t.Errorf("requeued job %s: JobState=%s", id, s)
	}
	out = c.jobOutput("hold", id)
	for _, want := range []string{
		"earl: USR1: asking the workers to checkpoint and exit",
		"rank 0/2: SIGUSR1: wrote " + filepath.Join(markers, "usr1-rank0"),
		"rank 1/2: SIGUSR1: wrote " + filepath.Join(markers, "usr1-rank1"),
		"earl: the workers checkpointed and exited; requeueing job " + id,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("job %s output lacks %q", id, want)
		}
	}
	if t.Failed() {
		c.fatalf("preemption job %s:\n%s", id, out)
	}
	t.Logf("job %s: USR1 -> markers -> requeue (Restarts=1, %s) in %v", id, info["JobState"], time.Since(t0).Round(time.Millisecond))
	c.slurm("scancel", id) // the requeued selftest would hold for 300 s

	c.trainAndEval()
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// trainAndEval is steps 4 and 5: a preempted training job that resumes,
// then an eval job array over its checkpoints.
func (c *cluster) trainAndEval() {
	t := c.t
	t0 := time.Now()
	bin := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(c.path("bin", name), args...).CombinedOutput()
		if err != nil {
			c.fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	bin("tools", "synth", "--task", "sweep", "--format", "jsonl", "-n", "16", "--seed", "1", "--out", c.path("data", "src"), "--duration", "1:1.5")
	bin("launcher", "shard", "--in", "jsonl", "--src", c.path("data", "src", "synth.jsonl"), "--out", c.path("data", "shards"), "--family", "qwen2.5-omni")
	bin("tools", "init-model", "--family", "qwen2.5-omni", "--preset", "tiny", "--seed", "1", "--dtype", "f32", "--out", c.path("data", "model"))
	run := c.path("run")
	cfg := c.path("train.toml")
	const steps = 400
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`mode = "sft"
run_dir = %q
[model]
path = %q
freeze_audio = false
[data]
train = %q
[train]
learning_rate = 1e-3
max_steps = %d
prompts_per_rank = 2
save_steps = 0
save_total_limit = 5
log_steps = 50
[eval]
shards = %q
max_completion_length = 8
limit = 6
`, run, c.path("data", "model"), c.path("data", "shards"), steps, c.path("data", "shards"))), 0o644); err != nil {
		t.Fatal(err)
	}

	// 4. Preempted mid-run, requeued, resumed, finished.
	id := c.submit("train", 2, GPUPerTask, "worker train --config "+cfg)
	metrics := filepath.Join(run, "metrics.jsonl")
	c.waitFor(60*time.Second, "20 training steps of job "+id, func() bool {
		b, _ := os.ReadFile(metrics)
		return strings.Count(string(b), "\n") >= 20
	})
	c.slurm("scancel", "--signal=USR1", "--batch", id)
	// slurmctld makes a requeued batch job wait before it is eligible again
	// (Reason=BeginTime, about two minutes in Slurm 22.05): once it is
	// pending again, release it.
	var info map[string]string
	c.waitFor(60*time.Second, "job "+id+" requeued and pending", func() bool {
		info = c.showJob(id)
		return info["Restarts"] == "1" && (info["JobState"] == "PENDING" || info["JobState"] == "RUNNING" || info["JobState"] == "COMPLETED")
	})
	t.Logf("job %s requeued: JobState=%s Reason=%s StartTime=%s", id, info["JobState"], info["Reason"], info["StartTime"])
	if info["JobState"] == "PENDING" {
		c.slurm("scontrol", "update", "JobId="+id, "StartTime=now")
	}
	info = c.waitDone(id, 180*time.Second)
	out := c.jobOutput("train", id)
	if info["JobState"] != "COMPLETED" || info["ExitCode"] != "0:0" || info["Restarts"] != "1" {
		c.fatalf("training job %s: JobState=%s ExitCode=%s Restarts=%s\n%s", id, info["JobState"], info["ExitCode"], info["Restarts"], out)
	}
	ckpts, _ := filepath.Glob(filepath.Join(run, "checkpoints", "step-*"))
	if len(ckpts) != 2 || !strings.HasSuffix(ckpts[1], fmt.Sprintf("step-%08d", steps)) {
		c.fatalf("training job %s: checkpoints %v, want the one written on USR1 and step %d\n%s", id, ckpts, steps, out)
	}
	stopped := strings.TrimPrefix(filepath.Base(ckpts[0]), "step-")
	for _, want := range []string{
		"earl: USR1: asking the workers to checkpoint and exit",
		"earl: the workers checkpointed and exited; requeueing job " + id,
		"(restart 1)",
		"resum",
		fmt.Sprintf("done: %d steps", steps),
	} {
		if !strings.Contains(out, want) {
			c.fatalf("training job %s output lacks %q (stopped at step %s)\n%s", id, want, stopped, out)
		}
	}
	t.Logf("job %s: worker train on 2 ranks, USR1 -> checkpoint %s -> requeue -> resumed to step %d in %v", id, stopped, steps, time.Since(t0).Round(time.Millisecond))

	// 5. An eval job array over the run's two checkpoints.
	t0 = time.Now()
	script := c.path("eval.sh")
	cmd := exec.Command(c.path("bin", "launcher"), "eval", "--config", cfg, "--ckpt", run, "--bench", "sweep="+c.path("data", "shards"),
		"--script", script, "--nodes", "1", "--gpus-per-node", "2", "--partition", "debug", "--cpus-per-task", "1", "--time", "10",
		"--job-name", "evalarray", "--log-dir", c.path("out"))
	cmd.Dir = c.dir
	if b, err := cmd.CombinedOutput(); err != nil {
		c.fatalf("launcher eval: %v\n%s", err, b)
	}
	sub := strings.TrimSpace(c.slurm("sbatch", "--parsable", script))
	arrayID, _, _ := strings.Cut(sub, ";")
	c.jobs = append(c.jobs, arrayID)
	tables := make([]string, len(ckpts))
	for i, ck := range ckpts {
		tables[i] = filepath.Join(run, "eval", "sweep", filepath.Base(ck)+".json")
	}
	c.waitFor(120*time.Second, "the tables of eval array "+arrayID, func() bool {
		for _, p := range tables {
			if _, err := os.Stat(p); err != nil {
				return false
			}
		}
		return true
	})
	// The tables come before worker eval's last line: wait for the tasks'
	// output to be complete.
	for i := range ckpts {
		var o []byte
		name := c.path("out", fmt.Sprintf("evalarray-%s_%d.out", arrayID, i))
		c.waitFor(30*time.Second, "the output of eval array task "+name, func() bool {
			o, _ = os.ReadFile(name)
			return strings.Contains(string(o), "predictions: ")
		})
		if !strings.Contains(string(o), fmt.Sprintf("array task %d of 2", i)) {
			c.fatalf("eval array %s task %d output:\n%s", arrayID, i, o)
		}
	}
	cmd = exec.Command(c.path("bin", "launcher"), "eval", "--config", cfg, "--ckpt", run, "--bench", "sweep="+c.path("data", "shards"),
		"--script", script, "--gpus-per-node", "2")
	cmd.Dir = c.dir
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "nothing to submit") {
		c.fatalf("launcher eval again: %v\n%s", err, b)
	}
	t.Logf("job %s: eval array of 2 tasks x 2 ranks, tables written, in %v", arrayID, time.Since(t0).Round(time.Millisecond))
}

// cluster is a one-node Slurm cluster living in dir.
type cluster struct {
	t       *testing.T
	dir     string
	conf    string
	node    string // NodeName
	env     []string
	daemons []*daemon
	jobs    []string
}

// daemon is a started munged, slurmctld or slurmd, in the foreground.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	pidFile string
	logs    []string
	exited  chan struct{}
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, dir: t.TempDir()}
	for _, d := range []string{"bin", "munge", "state", "spool", "log", "run", "dev", "out"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Slurm commands and the jobs (sbatch exports its environment) get a
	// clean environment: our slurm.conf, none of an enclosing job's or
	// launcher's variables.
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "SLURM_"), strings.HasPrefix(k, "SBATCH_"), strings.HasPrefix(k, "SRUN_"):
		case k == "RANK", k == "WORLD_SIZE", k == "LOCAL_RANK", k == "LOCAL_WORLD_SIZE", k == "MASTER_ADDR",
			k == "MASTER_PORT", k == "EARL_JOB_TOKEN", k == "CUDA_VISIBLE_DEVICES":
		default:
			c.env = append(c.env, kv)
		}
	}
	c.conf = filepath.Join(c.dir, "slurm.conf")
	c.env = append(c.env, "SLURM_CONF="+c.conf)
	t.Cleanup(c.stop)
	return c
}

func (c *cluster) path(p ...string) string { return filepath.Join(append([]string{c.dir}, p...)...) }

// fatalf fails the test with the tails of the daemons' logs.
func (c *cluster) fatalf(format string, args ...any) {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, format, args...)
	seen := map[string]bool{}
	for _, d := range c.daemons {
		for _, l := range d.logs {
			if _, err := os.Stat(l); err == nil && !seen[l] {
				seen[l] = true
				fmt.Fprintf(&b, "\n--- %s (last 25 lines):\n%s", l, tail(l, 25))
			}
		}
	}
	c.t.Fatal(b.String())
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *cluster) buildBinaries() error {
	out, err := exec.Command("go", "build", "-o", c.path("bin")+"/", "earl/worker", "earl/launcher", "earl/tools").CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build earl/worker earl/launcher earl/tools: %v\n%s", err, out)
	}
	return nil
}

// start writes the configuration and starts munged, slurmctld and slurmd,
// then waits until the node is idle.
func (c *cluster) start() {
	t := c.t
	for _, bin := range []string{"munged", "munge", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "sinfo", "squeue", "srun"} {
		if _, err := exec.LookPath(bin); err != nil {
			// Debian puts the daemons in /usr/sbin, which a user's PATH
			// may lack.
			if _, err2 := os.Stat("/usr/sbin/" + bin); err2 != nil {
				t.Fatalf("%s not found (%v): run make deps, which installs Debian's munge, slurmctld, slurmd and slurm-client", bin, err)
			}
		}
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatalf("hostname: %v", err)
	}
	host, _, _ = strings.Cut(host, ".")
	// The workers meet at the first host of the node list, so the node's
	// name must resolve; localhost stands in for a hostname that does not.
	c.node = host
	if _, err := net.LookupHost(host); err != nil {
		t.Logf("hostname %q does not resolve (%v): the node is called localhost", host, err)
		c.node = "localhost"
	}

	// Four fake GPUs.
	for i := range 4 {
		dev := c.path("dev", fmt.Sprintf("nvidia%d", i))
		if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, int(195<<8|i)); err != nil {
			t.Fatalf("mknod %s: %v (the test runs as root, as CI does)", dev, err)
		}
	}

	// munge: a fresh key, everything under munge/.
	key := make([]byte, 1024)
	rand.Read(key)
	if err := os.WriteFile(c.path("munge", "munge.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := c.path("munge", "munge.socket")
	c.startDaemon("munged", c.path("munge", "munged.pid"), []string{c.path("munge", "munged.log")},
		"munged", "--foreground", "--force", "--key-file="+c.path("munge", "munge.key"), "--socket="+sock,
		"--pid-file="+c.path("munge", "munged.pid"), "--log-file="+c.path("munge", "munged.log"),
		"--seed-file="+c.path("munge", "munged.seed"))
	c.waitFor(20*time.Second, "munged", func() bool {
		return exec.Command("munge", "--socket="+sock, "--no-input", "--output=/dev/null").Run() == nil
	})

	ctldPort, slurmdPort := freeTCPPort(t), freeTCPPort(t)
	for slurmdPort == ctldPort {
		slurmdPort = freeTCPPort(t)
	}
	firstJob := firstJobID(t)
	user := "root"
	if os.Getuid() != 0 {
		user = strconv.Itoa(os.Getuid())
		t.Logf("not root (uid %d): Slurm is started as this user and may refuse to", os.Getuid())
	}
	// Slurm 22.05's options. The node claims 4 CPUs (config_overrides:
	// whatever the machine has) so that 4 tasks of 1 CPU fit on a 2-core
	// box; task/none because task/affinity cannot bind to CPUs the machine
	// lacks; proctrack/linuxproc because there is no cgroup / systemd.
	conf := fmt.Sprintf(`# earl integration test: one node, everything under %[1]s
ClusterName=earltest
SlurmctldHost=%[2]s(127.0.0.1)
SlurmctldPort=%[3]d
SlurmdPort=%[4]d
SlurmUser=%[5]s
SlurmdUser=%[5]s
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=%[6]s
StateSaveLocation=%[1]s/state
SlurmdSpoolDir=%[1]s/spool/slurmd-%%n
SlurmctldPidFile=%[1]s/run/slurmctld.pid
SlurmdPidFile=%[1]s/run/slurmd.pid
SlurmctldLogFile=%[1]s/log/slurmctld.log
SlurmdLogFile=%[1]s/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
FirstJobId=%[7]d
MinJobAge=600
KillWait=5
SlurmdTimeout=60
InactiveLimit=0
Waittime=0
MailProg=/bin/true
JobRequeue=1
NodeName=%[8]s NodeHostname=%[2]s NodeAddr=127.0.0.1 CPUs=4 Gres=gpu:4 State=UNKNOWN
PartitionName=debug Nodes=%[8]s Default=YES MaxTime=INFINITE State=UP
`, c.dir, host, ctldPort, slurmdPort, user, sock, firstJob, c.node)
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	gres := fmt.Sprintf("AutoDetect=off\nNodeName=%s Name=gpu File=%s\n", c.node, c.path("dev", "nvidia[0-3]"))
	if err := os.WriteFile(c.path("gres.conf"), []byte(gres), 0o644); err != nil {
		t.Fatal(err)
	}

	c.startDaemon("slurmctld", c.path("run", "slurmctld.pid"), []string{c.path("log", "slurmctld.log")}, "slurmctld", "-D", "-i")
	c.startDaemon("slurmd", c.path("run", "slurmd.pid"), []string{c.path("log", "slurmd.log")}, "slurmd", "-D", "-N", c.node)
	c.waitFor(45*time.Second, "node "+c.node+" idle in sinfo", func() bool {
		out, _ := c.run("sinfo", "-h", "-N", "-n", c.node, "-o", "%t")
		return strings.TrimSpace(out) == "idle"
	})
}

// startDaemon starts a daemon in the foreground, its output in log/.
func (c *cluster) startDaemon(name, pidFile string, logs []string, argv ...string) {
	bin := argv[0]
	if p, err := exec.LookPath(bin); err == nil {
		bin = p
	} else {
		bin = "/usr/sbin/" + bin
	}
	cmd := exec.Command(bin, argv[1:]...)
	cmd.Env = c.env
	stderr := c.path("log", name+".stderr")
	f, err := os.Create(stderr)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d := &daemon{name: name, cmd: cmd, pidFile: pidFile, logs: append(logs, stderr), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		c.fatalf("start %s: %v", name, err)
	}
	c.daemons = append(c.daemons, d)
	go func() { cmd.Wait(); close(d.exited) }()
}

// waitFor polls cond every 100 ms; it fails the test, with the logs, when
// timeout passes or a daemon exits.
func (c *cluster) waitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		for _, d := range c.daemons {
			select {
			case <-d.exited:
				c.fatalf("waiting for %s: %s exited (%v)", what, d.name, d.cmd.ProcessState)
			default:
			}
		}
		if time.Now().After(deadline) {
			c.fatalf("no %s after %v", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs a Slurm command with the cluster's environment.
func (c *cluster) run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = c.env
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// slurm runs a Slurm command that must succeed.
func (c *cluster) slurm(name string, args ...string) string {
	c.t.Helper()
	out, err := c.run(name, args...)
	if err != nil {
		c.fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// submit writes a script with launcher sbatch, from the committed config
// with flags for this cluster, and submits it from the cluster directory
// (whose bin/ the script puts first on PATH).
func (c *cluster) submit(name string, ranks int, gpuFlag, command string) string {
	c.t.Helper()
	script := c.path(name + ".sh")
	cfg, err := filepath.Abs("../configs/grpo_omni7b.toml")
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.path("bin", "launcher"), "sbatch", "--config", cfg, "--nodes", "1", "--gpus-per-node", strconv.Itoa(ranks),
		"--gpu-flag", gpuFlag, "--partition", "debug", "--cpus-per-task", "1", "--time", "10", "--job-name", name,
		"--log-dir", c.path("out"), "--command", command, "--out", script)
	cmd.Dir = c.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		c.fatalf("launcher sbatch: %v\n%s", err, out)
	}
	out := strings.TrimSpace(c.slurm("sbatch", "--parsable", script))
	id, _, _ := strings.Cut(out, ";")
	if _, err := strconv.Atoi(id); err != nil {
		c.fatalf("sbatch --parsable printed %q", out)
	}
	c.jobs = append(c.jobs, id)
	return id
}

var jobField = regexp.MustCompile(`(\w+)=(\S*)`)

// showJob returns the fields of `scontrol show job -o ID`.
func (c *cluster) showJob(id string) map[string]string {
	out, _ := c.run("scontrol", "show", "job", "-o", id)
	m := map[string]string{}
	for _, f := range jobField.FindAllStringSubmatch(out, -1) {
		if _, dup := m[f[1]]; !dup {
			m[f[1]] = f[2]
		}
	}
	return m
}

// waitDone waits for the job to reach a final state.
func (c *cluster) waitDone(id string, timeout time.Duration) map[string]string {
	c.t.Helper()
	var info map[string]string
	c.waitFor(timeout, "end of job "+id, func() bool {
		info = c.showJob(id)
		switch info["JobState"] {
		case "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED":
			return true
		}
		return false
	})
	return info
}

func (c *cluster) jobOutput(name, id string) string {
	b, _ := os.ReadFile(c.path("out", name+"-"+id+".out"))
	return string(b)
}

var opLine = regexp.MustCompile(`(?m)^rank (\d+)/(\d+): ([a-z0-9 ]+?) ok (\d+) elements x (\d+) iters \S+ checksum ([0-9a-f]{16})$`)

// checkSelftest checks every rank's lines in a selftest job's output.
func (c *cluster) checkSelftest(out, id string, n int) {
	c.t.Helper()
	ops := []string{"allreduce sum", "allreduce avg", "allreduce max", "reducescatter sum", "allgather", "broadcast", "barrier", "allreduce64 sum", "allreduce64 max"}
	sums := map[string]map[string]bool{}
	seen := map[string]bool{}
	for _, m := range opLine.FindAllStringSubmatch(out, -1) {
		if m[2] != strconv.Itoa(n) {
			c.t.Errorf("line %q: world size %s, want %d", m[0], m[2], n)
		}
		seen[m[1]+" "+m[3]] = true
		if sums[m[3]] == nil {
			sums[m[3]] = map[string]bool{}
		}
		sums[m[3]][m[6]] = true
	}
	gpus := map[string]bool{}
	port := JobPort(id)
	for r := range n {
		for _, op := range ops {
			if !seen[fmt.Sprintf("%d %s", r, op)] {
				c.t.Errorf("job %s: no %q line of rank %d", id, op, r)
			}
		}
		env := fmt.Sprintf("rank %d/%d: env slurm node %s local %d/%d master %s:%d job %q token set", r, n, c.node, r, n, c.node, port, id)
		if !strings.Contains(out, env+"\n") {
			c.t.Errorf("job %s: no line %q", id, env)
		}
		if !strings.Contains(out, fmt.Sprintf("rank %d/%d: selftest ok\n", r, n)) {
			c.t.Errorf("job %s: rank %d did not finish", id, r)
		}
		m := regexp.MustCompile(fmt.Sprintf(`(?m)^rank %d/%d: gpu (\d) ordinal \d visible \d$`, r, n)).FindStringSubmatch(out)
		if m == nil {
			c.t.Errorf("job %s: no gpu line of rank %d", id, r)
		} else {
			gpus[m[1]] = true
		}
	}
	if len(gpus) != n {
		c.t.Errorf("job %s: %d ranks drove GPUs %v: want one each", id, n, gpus)
	}
	for _, op := range []string{"allreduce sum", "allreduce avg", "allreduce max", "allgather", "broadcast"} {
		if len(sums[op]) != 1 {
			c.t.Errorf("job %s: %s: ranks report different checksums %v", id, op, sums[op])
		}
	}
	if c.t.Failed() {
		c.fatalf("job %s output:\n%s", id, out)
	}
}

// stop cancels the jobs, waits for them to go, and stops the daemons this
// test started, newest first: SIGTERM to the pid in each pid file (or to
// the process itself when it never wrote one), SIGKILL after 10 s.
func (c *cluster) stop() {
	if len(c.jobs) > 0 {
		c.run("scancel", c.jobs...)
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			out, err := c.run("squeue", "-h", "-t", "all", "-o", "%i %T")
			if err != nil || !strings.Contains(out, "RUNNING") && !strings.Contains(out, "COMPLETING") {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for i := len(c.daemons) - 1; i >= 0; i-- {
		d := c.daemons[i]
		select {
		case <-d.exited:
			continue
		default:
		}
		pid := d.cmd.Process.Pid
		if b, err := os.ReadFile(d.pidFile); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 1 {
				if p != pid {
					c.t.Logf("%s: pid file %s says %d, the started process is %d: stopping both", d.name, d.pidFile, p, pid)
					syscall.Kill(p, syscall.SIGTERM)
				}
			}
		}
		syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			c.t.Logf("%s (pid %d) still running 10 s after SIGTERM: SIGKILL", d.name, pid)
			syscall.Kill(pid, syscall.SIGKILL)
			<-d.exited
		}
	}
}

// freeTCPPort asks the kernel for a port nobody listens on.
func freeTCPPort(t *testing.T) int {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// firstJobID picks the cluster's first job id so that the rendezvous
// ports of its jobs (JobPort: 20000 + id mod 10000) are free here.
func firstJobID(t *testing.T) int {
	for range 50 {
		n, _ := rand.Int(rand.Reader, big.NewInt(9000))
		id := 1000 + int(n.Int64())
		free := true
		for k := range 4 {
			l, err := net.Listen("tcp", fmt.Sprintf(":%d", JobPort(strconv.Itoa(id+k))))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return id
		}
	}
	t.Fatal("no free run of 4 ports in 21000-29999 for the jobs' rendezvous")
	return 0
}
