package slurm

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
)

// Where an Env came from (Env.Source).
const (
	SourceSlurm    = "slurm"    // a task of srun (SLURM_PROCID, ...)
	SourceTorchrun = "torchrun" // launcher run, torchrun or a hand-set RANK / WORLD_SIZE
	SourceSingle   = "single"   // neither: one rank alone
)

// DefaultPort is the rendezvous port when neither MASTER_PORT nor a Slurm
// job id gives one (torchrun's default).
const DefaultPort = 29500

// Env is one rank's view of its job: who it is, who its peers are and
// where they meet. FromEnv reads it from the environment a launcher set.
type Env struct {
	Rank, Size           int    // this rank among all ranks, 0 <= Rank < Size
	LocalRank, LocalSize int    // this rank among the ranks on its node
	Node                 string // this node's name
	Nodes                []string
	MasterAddr           string // host of rank 0's rendezvous store
	MasterPort           int
	Token                string // EARL_JOB_TOKEN, shared secret of the job's ranks ("" when unset)
	JobID                string // SLURM_JOB_ID, "" outside Slurm
	Source               string // SourceSlurm, SourceTorchrun or SourceSingle
}

// String is a one-line description for logs.
func (e Env) String() string {
	return fmt.Sprintf("rank %d/%d (local %d/%d on %s), master %s:%d, source %s",
		e.Rank, e.Size, e.LocalRank, e.LocalSize, e.Node, e.MasterAddr, e.MasterPort, e.Source)
}

// FromEnv reads a rank's job environment through getenv (os.Getenv, or a
// map in tests). It understands three launch styles, tried in this order:
//
//  1. torchrun style, when RANK or WORLD_SIZE is set (launcher run,
//     torchrun, or by hand): RANK and WORLD_SIZE are required; LOCAL_RANK
//     and LOCAL_WORLD_SIZE default to 0 and 1 when both are unset;
//     MASTER_ADDR is required when WORLD_SIZE > 1; MASTER_PORT defaults
//     to DefaultPort. It wins over Slurm's variables, which a launcher run
//     inside a Slurm allocation inherits.
//  2. Slurm, when SLURM_PROCID is set (a task of srun): SLURM_PROCID,
//     SLURM_NTASKS (or SLURM_NPROCS) and SLURM_LOCALID are required; the
//     node list is SLURM_STEP_NODELIST, SLURM_NODELIST or
//     SLURM_JOB_NODELIST (the first set), the tasks per node
//     SLURM_STEP_TASKS_PER_NODE, SLURM_TASKS_PER_NODE (`2(x3),1`) or
//     SLURM_NTASKS_PER_NODE, the node SLURMD_NODENAME. MASTER_ADDR wins
//     when set; otherwise it is the first host of the node list, where
//     rank 0 runs. MASTER_PORT wins when set; otherwise it is
//     JobPort(SLURM_JOB_ID), the same on every rank.
//  3. Otherwise a single rank: 0 of 1, MASTER_ADDR or 127.0.0.1,
//     MASTER_PORT or DefaultPort.
//
// EARL_JOB_TOKEN is read in every style. Missing, malformed or
// inconsistent values (a rank not below the size, tasks per node that do
// not add up to the size, ...) are errors naming the variable.
func FromEnv(getenv func(string) string) (Env, error) {
	var e Env
	var err error
	switch {
	case getenv("RANK") != "" || getenv("WORLD_SIZE") != "":
		e, err = torchrunEnv(getenv)
	case getenv("SLURM_PROCID") != "":
		e, err = slurmEnv(getenv)
	default:
		e = Env{Size: 1, LocalSize: 1, Source: SourceSingle, MasterAddr: "127.0.0.1", MasterPort: DefaultPort}
		e.Node = hostname(getenv)
		if a := getenv("MASTER_ADDR"); a != "" {
			e.MasterAddr = a
		}
		if getenv("MASTER_PORT") != "" {
			e.MasterPort, err = port(getenv, "MASTER_PORT")
		}
	}
	if err != nil {
		return Env{}, err
	}
	e.Token = getenv("EARL_JOB_TOKEN")
	if e.JobID == "" {
		e.JobID = getenv("SLURM_JOB_ID")
	}
	return e, nil
}

func torchrunEnv(getenv func(string) string) (Env, error) {
	e := Env{Source: SourceTorchrun, Node: hostname(getenv), MasterPort: DefaultPort}
	var err error
	if e.Size, err = intVar(getenv, "WORLD_SIZE", 1); err != nil {
		return e, err
	}
	if e.Rank, err = intVar(getenv, "RANK", 0); err != nil {
		return e, err
	}
	if e.Rank >= e.Size {
		return e, fmt.Errorf("RANK=%d is not below WORLD_SIZE=%d: the launcher set an inconsistent environment", e.Rank, e.Size)
	}
	lr, lws := getenv("LOCAL_RANK"), getenv("LOCAL_WORLD_SIZE")
	switch {
	case lr == "" && lws == "":
		e.LocalRank, e.LocalSize = 0, 1
	case lr == "":
		return e, fmt.Errorf("LOCAL_WORLD_SIZE is set but LOCAL_RANK is not: set both or neither")
	case lws == "":
		return e, fmt.Errorf("LOCAL_RANK is set but LOCAL_WORLD_SIZE is not: set both or neither")
	default:
		if e.LocalSize, err = intVar(getenv, "LOCAL_WORLD_SIZE", 1); err != nil {
			return e, err
		}
		if e.LocalRank, err = intVar(getenv, "LOCAL_RANK", 0); err != nil {
			return e, err
		}
	}
	if e.LocalRank >= e.LocalSize {
		return e, fmt.Errorf("LOCAL_RANK=%d is not below LOCAL_WORLD_SIZE=%d: the launcher set an inconsistent environment", e.LocalRank, e.LocalSize)
	}
	if e.LocalSize > e.Size {
		return e, fmt.Errorf("LOCAL_WORLD_SIZE=%d exceeds WORLD_SIZE=%d: the launcher set an inconsistent environment", e.LocalSize, e.Size)
	}
	e.MasterAddr = getenv("MASTER_ADDR")
	if e.MasterAddr == "" {
		if e.Size > 1 {
			return e, fmt.Errorf("MASTER_ADDR is not set: with WORLD_SIZE=%d set it to the host of rank 0 (launcher run sets it)", e.Size)
		}
		e.MasterAddr = "127.0.0.1"
	}
	if getenv("MASTER_PORT") != "" {
		if e.MasterPort, err = port(getenv, "MASTER_PORT"); err != nil {
			return e, err
		}
	}
	return e, nil
}

func slurmEnv(getenv func(string) string) (Env, error) {
	e := Env{Source: SourceSlurm, JobID: getenv("SLURM_JOB_ID")}
	var err error
	sizeVar := "SLURM_NTASKS"
	if getenv(sizeVar) == "" && getenv("SLURM_NPROCS") != "" {
		sizeVar = "SLURM_NPROCS"
	}
	if e.Size, err = intVar(getenv, sizeVar, 1); err != nil {
		return e, fmt.Errorf("%w (run the workers with srun inside the job)", err)
	}
	if e.Rank, err = intVar(getenv, "SLURM_PROCID", 0); err != nil {
		return e, err
	}
	if e.Rank >= e.Size {
		return e, fmt.Errorf("SLURM_PROCID=%d is not below %s=%d: run the workers with srun, which sets both for its tasks", e.Rank, sizeVar, e.Size)
	}
	if e.LocalRank, err = intVar(getenv, "SLURM_LOCALID", 0); err != nil {
		return e, fmt.Errorf("%w (run the workers with srun inside the job)", err)
	}
	e.Node = getenv("SLURMD_NODENAME")
	if e.Node == "" {
		e.Node = hostname(getenv)
	}

	listVar := firstSet(getenv, "SLURM_STEP_NODELIST", "SLURM_NODELIST", "SLURM_JOB_NODELIST")
	if listVar == "" {
		return e, fmt.Errorf("none of SLURM_STEP_NODELIST, SLURM_NODELIST, SLURM_JOB_NODELIST is set: run the workers with srun inside the job")
	}
	if e.Nodes, err = ExpandHostlist(getenv(listVar)); err != nil {
		return e, fmt.Errorf("%s: %w", listVar, err)
	}
	if len(e.Nodes) == 0 {
		return e, fmt.Errorf("%s is empty: run the workers with srun inside the job", listVar)
	}

	if e.LocalSize, err = localSize(getenv, e); err != nil {
		return e, err
	}
	if e.LocalRank >= e.LocalSize {
		return e, fmt.Errorf("SLURM_LOCALID=%d is not below the %d tasks on node %s: the task environment is inconsistent", e.LocalRank, e.LocalSize, e.Node)
	}

	e.MasterAddr = getenv("MASTER_ADDR")
	if e.MasterAddr == "" {
		e.MasterAddr = e.Nodes[0]
	}
	if getenv("MASTER_PORT") != "" {
		if e.MasterPort, err = port(getenv, "MASTER_PORT"); err != nil {
			return e, err
		}
	} else {
		if e.JobID == "" {
			return e, fmt.Errorf("neither MASTER_PORT nor SLURM_JOB_ID is set: set MASTER_PORT to a free port on %s", e.MasterAddr)
		}
		e.MasterPort = JobPort(e.JobID)
	}
	return e, nil
}

// localSize finds how many tasks run on e.Node from the tasks-per-node
// variables and checks them against the size and node list.
func localSize(getenv func(string) string, e Env) (int, error) {
	if v := firstSet(getenv, "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"); v != "" {
		counts, err := ParseTasksPerNode(getenv(v))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", v, err)
		}
		if len(counts) != len(e.Nodes) {
			return 0, fmt.Errorf("%s=%q gives %d nodes but the node list has %d (%s): the task environment is inconsistent",
				v, getenv(v), len(counts), len(e.Nodes), strings.Join(e.Nodes, ","))
		}
		total := 0
		for _, c := range counts {
			total += c
		}
		if total != e.Size {
			return 0, fmt.Errorf("%s=%q adds up to %d tasks but there are %d: the task environment is inconsistent", v, getenv(v), total, e.Size)
		}
		for i, n := range e.Nodes {
			if n == e.Node {
				return counts[i], nil
			}
		}
		// SLURMD_NODENAME absent or not in the list (NodeName aliases):
		// uniform counts still answer.
		if uniform(counts) {
			return counts[0], nil
		}
		return 0, fmt.Errorf("node %q (SLURMD_NODENAME) is not in the node list %s and %s=%q is not uniform: cannot tell how many tasks share this node",
			e.Node, strings.Join(e.Nodes, ","), v, getenv(v))
	}
	if getenv("SLURM_NTASKS_PER_NODE") != "" {
		n, err := intVar(getenv, "SLURM_NTASKS_PER_NODE", 1)
		if err != nil {
			return 0, err
		}
		if n > e.Size {
			return 0, fmt.Errorf("SLURM_NTASKS_PER_NODE=%d exceeds the %d tasks of the job: the task environment is inconsistent", n, e.Size)
		}
		return n, nil
	}
	if len(e.Nodes) == 1 {
		return e.Size, nil
	}
	return 0, fmt.Errorf("none of SLURM_STEP_TASKS_PER_NODE, SLURM_TASKS_PER_NODE, SLURM_NTASKS_PER_NODE is set: run the workers with srun inside the job")
}

func uniform(c []int) bool {
	for _, v := range c {
		if v != c[0] {
			return false
		}
	}
	return true
}

// ParseTasksPerNode expands Slurm's tasks-per-node syntax
// (SLURM_TASKS_PER_NODE): comma-separated counts, each optionally repeated
// with `(xN)`, so "2(x3),1" is [2 2 2 1].
func ParseTasksPerNode(s string) ([]int, error) {
	if s == "" {
		return nil, fmt.Errorf("empty tasks-per-node list")
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		count, rep := part, "1"
		if i := strings.IndexByte(part, '('); i >= 0 {
			if !strings.HasPrefix(part[i:], "(x") || !strings.HasSuffix(part, ")") {
				return nil, fmt.Errorf("tasks per node %q: %q is not COUNT or COUNT(xREPEAT)", s, part)
			}
			count, rep = part[:i], part[i+2:len(part)-1]
		}
		c, err1 := strconv.Atoi(count)
		r, err2 := strconv.Atoi(rep)
		if err1 != nil || err2 != nil || c < 0 || r < 1 {
			return nil, fmt.Errorf("tasks per node %q: %q is not COUNT or COUNT(xREPEAT)", s, part)
		}
		if len(out)+r > MaxHosts {
			return nil, fmt.Errorf("tasks per node %q: more than %d nodes", s, MaxHosts)
		}
		for range r {
			out = append(out, c)
		}
	}
	return out, nil
}

// JobPort is the rendezvous port of a Slurm job when MASTER_PORT is not
// set: 20000 + (job id mod 10000), in 20000-29999, above the registered
// service ports most sites use and below Linux's ephemeral range
// (32768-60999), so outgoing connections never hold it. Every rank and a
// requeued run of the same job compute the same port; the sbatch script
// exports the same value. A non-numeric id is hashed (FNV-1a) instead.
func JobPort(jobID string) int {
	id, err := strconv.ParseUint(jobID, 10, 64)
	if err != nil {
		h := fnv.New64a()
		h.Write([]byte(jobID))
		id = h.Sum64()
	}
	return 20000 + int(id%10000)
}

// NewToken returns a fresh job token: 16 random bytes from crypto/rand as
// 32 hex digits. The ranks of a job share it (EARL_JOB_TOKEN) and the
// collectives refuse peers that do not present it.
func NewToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("job token: reading random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func intVar(getenv func(string) string, name string, min int) (int, error) {
	v := getenv(name)
	if v == "" {
		return 0, fmt.Errorf("%s is not set", name)
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not an integer", name, v)
	}
	if n < min {
		return 0, fmt.Errorf("%s=%d: must be at least %d", name, n, min)
	}
	return n, nil
}

func port(getenv func(string) string, name string) (int, error) {
	p, err := intVar(getenv, name, 1)
	if err != nil {
		return 0, err
	}
	if p > 65535 {
		return 0, fmt.Errorf("%s=%d is not a TCP port (1-65535)", name, p)
	}
	return p, nil
}

func firstSet(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if getenv(n) != "" {
			return n
		}
	}
	return ""
}

// hostname is this machine's name: HOSTNAME when the environment has it
// (tests), else the kernel's.
func hostname(getenv func(string) string) string {
	if h := getenv("HOSTNAME"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}
