package slurm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/BurntSushi/toml"
)

// GPU request forms (Script.GPUFlag): sites accept one or the other.
const (
	// GPUPerTask asks for `--gpus-per-task=1`: Slurm binds one GPU to each
	// task (CUDA_VISIBLE_DEVICES lists one device per task).
	GPUPerTask = "per-task"
	// GPUGres asks for `--gres=gpu:G` per node: every task of a node sees
	// the node's G GPUs and picks its own by local rank (GPUForRank).
	GPUGres = "gres"
)

// SignalLead is how many seconds before the time limit Slurm sends USR1 to
// the batch script (`--signal=B:USR1@120`): the time the workers have to
// write a checkpoint before the job is killed.
const SignalLead = 120

// Script is an sbatch script for one earl job: GPUsPerNode tasks on each of
// Nodes nodes, one GPU and one rank per task. Render writes it.
type Script struct {
	// Config is the job config as the workers open it: relative to the
	// directory sbatch is run from (the repository root), or absolute.
	Config string
	// Command is each task's command line, shell syntax, on one line;
	// "" means `worker train --config <Config>`.
	Command     string
	JobName     string // default: Config's base name without extension
	Nodes       int    // at least 1
	GPUsPerNode int    // tasks per node, at least 1
	GPUFlag     string // GPUPerTask (default) or GPUGres
	CPUsPerTask int    // default 1
	Time        string // time limit in a Slurm form (minutes, HH:MM:SS, D-HH:MM, ...); "" leaves the partition's default
	Partition   string // "" for the site's default
	Account     string // "" for the user's default
	QoS         string // "" for the default
	// LogDir is where Slurm writes the job's output, %x-%j.out (job name,
	// job id); "" for the submit directory. It must exist at submission.
	LogDir string
	// Token is the job token (EARL_JOB_TOKEN), fresh for every generated
	// script; see NewToken.
	Token string
	// Generator is the command line that made the script, shown in its
	// header so that it can be regenerated.
	Generator string
	// Path is where the script is written, for the submission hint in its
	// header; WriteFile fills it.
	Path string
	// Tasks, when set, make the script a job array (--array=0-(n-1)): array
	// task i runs Tasks[i].Command instead of Command, on the same ranks.
	Tasks []ArrayTask
	// MaxParallel caps how many array tasks run at once (--array=...%N);
	// 0 leaves it to the scheduler.
	MaxParallel int
}

// ArrayTask is one task of a job array.
type ArrayTask struct {
	// Command is the task's command line, shell syntax, on one line.
	Command string
	// Done, when set, is a file whose existence means the task's work is
	// already complete (an evaluation's score table): the task then exits
	// 0 at once, so a resubmitted or requeued array redoes only the rest.
	Done string
}

var (
	slurmTime = regexp.MustCompile(`^([0-9]+|[0-9]+:[0-9]{1,2}|[0-9]+:[0-9]{1,2}:[0-9]{1,2}|[0-9]+-[0-9]+|[0-9]+-[0-9]+:[0-9]{1,2}|[0-9]+-[0-9]+:[0-9]{1,2}:[0-9]{1,2})$`)
	plainWord = regexp.MustCompile(`^[A-Za-z0-9._+@%:/=-]+$`)
	hexToken  = regexp.MustCompile(`^[0-9a-f]{16,}$`)
)

// withDefaults fills the defaults and checks every field, with errors that
// name the flag to fix.
func (s Script) withDefaults() (Script, error) {
	if s.Config == "" {
		return s, errors.New("no job config: pass --config FILE")
	}
	if s.JobName == "" {
		s.JobName = strings.TrimSuffix(filepath.Base(s.Config), filepath.Ext(s.Config))
	}
	if s.GPUFlag == "" {
		s.GPUFlag = GPUPerTask
	}
	if s.CPUsPerTask == 0 {
		s.CPUsPerTask = 1
	}
	if len(s.Tasks) > 0 {
		if s.Command != "" {
			return s, errors.New("a job array takes its commands from Tasks: leave Command empty")
		}
		for i, t := range s.Tasks {
			if strings.TrimSpace(t.Command) == "" || strings.ContainsAny(t.Command+t.Done, "\n\r") {
				return s, fmt.Errorf("array task %d: command %q and done file %q must be one non-empty line", i, t.Command, t.Done)
			}
		}
		if s.MaxParallel < 0 {
			return s, fmt.Errorf("array: at most %d tasks at once: want 0 (no cap) or more", s.MaxParallel)
		}
	} else if s.Command == "" {
		s.Command = "worker train --config " + ShellQuote(s.Config)
	}
	switch {
	case s.Nodes < 1:
		return s, fmt.Errorf("--nodes %d: need at least 1 node", s.Nodes)
	case s.GPUsPerNode < 1:
		return s, fmt.Errorf("--gpus-per-node %d: need at least 1 GPU (one rank) per node", s.GPUsPerNode)
	case s.CPUsPerTask < 1:
		return s, fmt.Errorf("--cpus-per-task %d: need at least 1", s.CPUsPerTask)
	case s.GPUFlag != GPUPerTask && s.GPUFlag != GPUGres:
		return s, fmt.Errorf("--gpu-flag %q: want %q (--gpus-per-task=1) or %q (--gres=gpu:N), whichever your site documents", s.GPUFlag, GPUPerTask, GPUGres)
	case s.Time != "" && !slurmTime.MatchString(s.Time):
		return s, fmt.Errorf("--time %q: want minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS", s.Time)
	case !hexToken.MatchString(s.Token):
		return s, fmt.Errorf("job token %q: want at least 16 lower-case hex digits (slurm.NewToken)", s.Token)
	case strings.ContainsAny(s.Command, "\n\r"):
		return s, fmt.Errorf("--command %q: must be one line", s.Command)
	case strings.ContainsAny(s.Generator+s.Path+s.Config, "\n\r"):
		return s, fmt.Errorf("generator %q, path %q or config %q: must be one line", s.Generator, s.Path, s.Config)
	}
	for _, f := range []struct{ flag, v string }{
		{"--job-name", s.JobName}, {"--partition", s.Partition}, {"--account", s.Account}, {"--qos", s.QoS}, {"--log-dir", s.LogDir},
	} {
		if f.v != "" && !plainWord.MatchString(f.v) {
			return s, fmt.Errorf("%s %q: use letters, digits and . _ + @ %% : / = - only (it goes on an #SBATCH line)", f.flag, f.v)
		}
	}
	return s, nil
}

// Render writes the script: #SBATCH options, the rendezvous and NCCL
// environment, srun in the background and the USR1 trap of the preemption
// flow (docs/slurm.md). The same Script always renders the same bytes; a
// regeneration differs only in the `export EARL_JOB_TOKEN=` line.
func (s Script) Render() ([]byte, error) {
	s, err := s.withDefaults()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := scriptTemplate.Execute(&b, struct {
		Script
		SignalLead int
	}{s, SignalLead}); err != nil {
		return nil, fmt.Errorf("sbatch template: %w", err)
	}
	return b.Bytes(), nil
}

// WriteFile renders the script and writes it to path through a temporary
// file renamed into place, so a failure never leaves half a script; the
// file is readable by its owner only, as it holds the job token.
func (s Script) WriteFile(path string) error {
	if s.Path == "" {
		s.Path = path
	}
	b, err := s.Render()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write sbatch script: %w (does the directory of %s exist?)", err, path)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write sbatch script %s: %w", path, err)
	}
	if err := tmp.Chmod(0o700); err != nil {
		tmp.Close()
		return fmt.Errorf("write sbatch script %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write sbatch script %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write sbatch script %s: %w", path, err)
	}
	return nil
}

// ShellQuote quotes s for a POSIX shell when it holds anything but plain
// word characters.
func ShellQuote(s string) string {
	if s != "" && plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Defaults are the optional [slurm] table of a job config: defaults for
// launcher sbatch's flags, which win when given.
//
//	[slurm]
//	nodes = 1
//	gpus_per_node = 8
//	gpu_flag = "per-task"   # or "gres"
//	cpus_per_task = 12
//	time = "24:00:00"
//	partition = "gpu"
//	account = ""
//	qos = ""
//	job_name = "grpo_omni7b"
//	log_dir = "logs"
type Defaults struct {
	Nodes       int    `toml:"nodes"`
	GPUsPerNode int    `toml:"gpus_per_node"`
	GPUFlag     string `toml:"gpu_flag"`
	CPUsPerTask int    `toml:"cpus_per_task"`
	Time        string `toml:"time"`
	Partition   string `toml:"partition"`
	Account     string `toml:"account"`
	QoS         string `toml:"qos"`
	JobName     string `toml:"job_name"`
	LogDir      string `toml:"log_dir"`
}

// ReadDefaults checks that the job config at path exists and is valid TOML
// and returns its [slurm] table (zero when absent). Keys of [slurm] it does
// not know are errors; the rest of the file belongs to the worker.
func ReadDefaults(path string) (Defaults, error) {
	var doc struct {
		Slurm Defaults `toml:"slurm"`
	}
	md, err := toml.DecodeFile(path, &doc)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Defaults{}, fmt.Errorf("job config %s does not exist: pass --config with the path of a TOML job config (configs/*.toml)", path)
		}
		return Defaults{}, fmt.Errorf("job config %s: %w", path, err)
	}
	for _, k := range md.Undecoded() {
		if len(k) >= 2 && k[0] == "slurm" {
			return Defaults{}, fmt.Errorf("job config %s: unknown key %q in [slurm]: known keys are nodes, gpus_per_node, gpu_flag, cpus_per_task, time, partition, account, qos, job_name, log_dir", path, k.String())
		}
	}
	return doc.Slurm, nil
}

var scriptTemplate = template.Must(template.New("sbatch").Funcs(template.FuncMap{"q": ShellQuote, "last": func(t []ArrayTask) int { return len(t) - 1 }}).Parse(scriptText))

const scriptText = `#!/bin/bash
# earl job {{.JobName}}: {{.Nodes}} node(s) x {{.GPUsPerNode}} GPU(s), one rank per GPU{{if .Tasks}};
# a job array of {{len .Tasks}} tasks, each on its own allocation of that size{{end}}.
# Generated by launcher sbatch; regenerate rather than edit:
#   {{.Generator}}
# Submit from the repository root, where the workers find {{.Config}}:
#   sbatch {{if .Path}}{{.Path}}{{else}}THIS_FILE{{end}}
#SBATCH --job-name={{.JobName}}
#SBATCH --nodes={{.Nodes}}
#SBATCH --ntasks-per-node={{.GPUsPerNode}}
{{- if eq .GPUFlag "gres"}}
#SBATCH --gres=gpu:{{.GPUsPerNode}}
{{- else}}
#SBATCH --gpus-per-task=1
{{- end}}
#SBATCH --cpus-per-task={{.CPUsPerTask}}
{{- if .Time}}
#SBATCH --time={{.Time}}
{{- end}}
{{- if .Partition}}
#SBATCH --partition={{.Partition}}
{{- end}}
{{- if .Account}}
#SBATCH --account={{.Account}}
{{- end}}
{{- if .QoS}}
#SBATCH --qos={{.QoS}}
{{- end}}
{{- if .Tasks}}
#SBATCH --array=0-{{last .Tasks}}{{if .MaxParallel}}%{{.MaxParallel}}{{end}}
#SBATCH --output={{with .LogDir}}{{.}}/{{end}}%x-%A_%a.out
{{- else}}
#SBATCH --output={{with .LogDir}}{{.}}/{{end}}%x-%j.out
{{- end}}
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@{{.SignalLead}}
#SBATCH --requeue

set -euo pipefail

# Preemption and the time limit. Slurm sends USR1 to this script {{.SignalLead}} s
# before the limit (--signal=B:USR1@{{.SignalLead}}); an operator can send it any
# time with: scancel --signal=USR1 --batch JOBID. The trap forwards it to
# srun, which forwards it to every task; the workers write a checkpoint
# and exit 0; then the script requeues the job (--requeue), which resumes
# from that checkpoint.
srun_pid=
requeue=0
forwarded=0
interrupted=0
on_usr1() {
  interrupted=1
  requeue=1
  echo "$(date '+%F %T') earl: USR1: asking the workers to checkpoint and exit; the job will be requeued" >&2
  if [ -n "$srun_pid" ]; then
    forwarded=1
    kill -USR1 "$srun_pid" 2>/dev/null || true
  fi
}
trap on_usr1 USR1

# Rendezvous. Rank 0 runs on the first node of the job; the port is
# 20000 + (job id mod 10000), the formula of earl/slurm.JobPort, so a
# requeued run of the job meets on the same port.
nodes=$(scontrol show hostnames "$SLURM_JOB_NODELIST")
export MASTER_ADDR="${nodes%%$'\n'*}"
export MASTER_PORT=$((20000 + SLURM_JOB_ID % 10000))
# The job token: ranks refuse peers without it. Fresh in every generated script.
export EARL_JOB_TOKEN={{.Token}}

# Torchrun-style variables exported from the submitting shell would
# override Slurm's task variables in the workers (earl/slurm.FromEnv).
unset RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE

# Threads per rank: the CPUs Slurm gives each task.
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"
export GOMAXPROCS="${SLURM_CPUS_PER_TASK:-1}"

# NCCL. Warnings only, and errors on a failed peer instead of a hang.
export NCCL_DEBUG="${NCCL_DEBUG:-WARN}"
export NCCL_ASYNC_ERROR_HANDLING=1
# InfiniBand (NCCL_IB_HCA, NCCL_IB_GID_INDEX, NCCL_IB_TIMEOUT, ...) is left
# to NCCL's detection and the site's environment modules; set it here if
# your cluster's documentation says so.
# The interface for NCCL's bootstrap and socket traffic, when NCCL picks a
# wrong one (docker0, a management network):
# export NCCL_SOCKET_IFNAME=ib0

# The workers: bin/ of the submit directory (make build) comes first.
export PATH="${SLURM_SUBMIT_DIR:-$PWD}/bin:$PATH"

{{if .Tasks}}# The array's tasks: array task i runs tasks[i], unless done_files[i] exists.
tasks=(
{{- range .Tasks}}
  {{q .Command}}
{{- end}}
)
done_files=(
{{- range .Tasks}}
  {{q .Done}}
{{- end}}
)
i="${SLURM_ARRAY_TASK_ID:?not an array task: submit this script with sbatch}"
if [ -n "${done_files[$i]}" ] && [ -e "${done_files[$i]}" ]; then
  echo "$(date '+%F %T') earl: array task $i: ${done_files[$i]} exists; nothing to do" >&2
  exit 0
fi
eval "set -- ${tasks[$i]}"
echo "$(date '+%F %T') earl: job $SLURM_JOB_ID, array task $i of {{len .Tasks}} (restart ${SLURM_RESTART_COUNT:-0}): $SLURM_NTASKS ranks on $SLURM_JOB_NODELIST, master $MASTER_ADDR:$MASTER_PORT: $*" >&2
srun --kill-on-bad-exit=1 --cpu-bind=cores --cpus-per-task="${SLURM_CPUS_PER_TASK:-1}" \
  "$@" &
{{else}}echo "$(date '+%F %T') earl: job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}): $SLURM_NTASKS ranks on $SLURM_JOB_NODELIST, master $MASTER_ADDR:$MASTER_PORT" >&2
srun --kill-on-bad-exit=1 --cpu-bind=cores --cpus-per-task="${SLURM_CPUS_PER_TASK:-1}" \
  {{.Command}} &
{{end}}srun_pid=$!
if [ "$requeue" = 1 ] && [ "$forwarded" = 0 ]; then # USR1 came before srun started
  forwarded=1
  kill -USR1 "$srun_pid" 2>/dev/null || true
fi

# wait returns early when the trap runs; wait again until srun itself ends.
while :; do
  interrupted=0
  rc=0
  wait "$srun_pid" || rc=$?
  [ "$interrupted" = 1 ] || break
done

if [ "$requeue" = 1 ]; then
  if [ "$rc" != 0 ]; then
    echo "$(date '+%F %T') earl: the workers exited with status $rc after USR1: not requeueing" >&2
    exit "$rc"
  fi
  echo "$(date '+%F %T') earl: the workers checkpointed and exited; requeueing job $SLURM_JOB_ID" >&2
  scontrol requeue "$SLURM_JOB_ID"
  exit 0
fi
exit "$rc"
`
