package slurm

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func mapEnv(kv ...string) func(string) string {
	m := map[string]string{"HOSTNAME": "thishost"}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// srunTask is the environment srun gave task 5 of a 3-node, 8-task step
// (3+3+2 tasks) in job 4242, as Slurm 22.05 sets it.
var srunTask = []string{
	"SLURM_JOB_ID=4242", "SLURM_PROCID=5", "SLURM_LOCALID=2", "SLURM_NTASKS=8", "SLURM_NPROCS=8",
	"SLURM_JOB_NODELIST=gpu[001-003]", "SLURM_NODELIST=gpu[001-003]", "SLURM_STEP_NODELIST=gpu[001-003]",
	"SLURM_TASKS_PER_NODE=3(x2),2", "SLURM_STEP_TASKS_PER_NODE=3(x2),2", "SLURMD_NODENAME=gpu002",
	"EARL_JOB_TOKEN=feedface",
}

func TestFromEnvSlurm(t *testing.T) {
	e, err := FromEnv(mapEnv(srunTask...))
	if err != nil {
		t.Fatal(err)
	}
	want := Env{Rank: 5, Size: 8, LocalRank: 2, LocalSize: 3, Node: "gpu002", Nodes: []string{"gpu001", "gpu002", "gpu003"},
		MasterAddr: "gpu001", MasterPort: 20000 + 4242, Token: "feedface", JobID: "4242", Source: SourceSlurm}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("FromEnv:\n got %+v\nwant %+v", e, want)
	}
	// The last node holds 2 tasks.
	e, err = FromEnv(mapEnv(append(slices.Clone(srunTask), "SLURMD_NODENAME=gpu003", "SLURM_PROCID=7", "SLURM_LOCALID=1")...))
	if err != nil || e.LocalSize != 2 {
		t.Errorf("gpu003: local size %d, %v", e.LocalSize, err)
	}
	// An explicit MASTER_ADDR / MASTER_PORT wins.
	e, err = FromEnv(mapEnv(append(slices.Clone(srunTask), "MASTER_ADDR=10.0.0.7", "MASTER_PORT=31337")...))
	if err != nil || e.MasterAddr != "10.0.0.7" || e.MasterPort != 31337 {
		t.Errorf("explicit master: %s:%d, %v", e.MasterAddr, e.MasterPort, err)
	}
	// Only the job's variables (no step ones), SLURM_NTASKS_PER_NODE.
	e, err = FromEnv(mapEnv("SLURM_JOB_ID=7", "SLURM_PROCID=1", "SLURM_LOCALID=1", "SLURM_NTASKS=2",
		"SLURM_JOB_NODELIST=vm", "SLURM_NTASKS_PER_NODE=2"))
	if err != nil || e.LocalSize != 2 || e.MasterAddr != "vm" || e.Node != "thishost" || e.MasterPort != 20007 {
		t.Errorf("job variables only: %+v, %v", e, err)
	}
	// One node, nothing about tasks per node: all tasks are local.
	e, err = FromEnv(mapEnv("SLURM_JOB_ID=7", "SLURM_PROCID=1", "SLURM_LOCALID=1", "SLURM_NTASKS=2", "SLURM_NODELIST=vm"))
	if err != nil || e.LocalSize != 2 {
		t.Errorf("one node: %+v, %v", e, err)
	}
	// A node name that is not in the list, uniform counts.
	e, err = FromEnv(mapEnv("SLURM_JOB_ID=7", "SLURM_PROCID=3", "SLURM_LOCALID=1", "SLURM_NTASKS=4",
		"SLURM_NODELIST=n[1-2]", "SLURM_TASKS_PER_NODE=2(x2)", "SLURMD_NODENAME=alias"))
	if err != nil || e.LocalSize != 2 {
		t.Errorf("alias node: %+v, %v", e, err)
	}
}

func TestFromEnvTorchrun(t *testing.T) {
	e, err := FromEnv(mapEnv("RANK=3", "WORLD_SIZE=4", "LOCAL_RANK=1", "LOCAL_WORLD_SIZE=2",
		"MASTER_ADDR=127.0.0.1", "MASTER_PORT=40000", "EARL_JOB_TOKEN=abc"))
	want := Env{Rank: 3, Size: 4, LocalRank: 1, LocalSize: 2, Node: "thishost", MasterAddr: "127.0.0.1", MasterPort: 40000, Token: "abc", Source: SourceTorchrun}
	if err != nil || !reflect.DeepEqual(e, want) {
		t.Errorf("FromEnv = %+v, %v\nwant %+v", e, err, want)
	}
	// torchrun's variables win over Slurm's (launcher run inside a batch
	// script, whose shell has SLURM_PROCID=0).
	e, err = FromEnv(mapEnv(append(slices.Clone(srunTask), "RANK=1", "WORLD_SIZE=2", "LOCAL_RANK=1", "LOCAL_WORLD_SIZE=2", "MASTER_ADDR=localhost")...))
	if err != nil || e.Source != SourceTorchrun || e.Rank != 1 || e.MasterPort != DefaultPort || e.JobID != "4242" {
		t.Errorf("torchrun inside Slurm: %+v, %v", e, err)
	}
	// By hand, one rank: no local variables, no master needed.
	e, err = FromEnv(mapEnv("RANK=0", "WORLD_SIZE=1"))
	if err != nil || e.LocalSize != 1 || e.MasterAddr != "127.0.0.1" {
		t.Errorf("by hand: %+v, %v", e, err)
	}
}

func TestFromEnvSingle(t *testing.T) {
	e, err := FromEnv(mapEnv())
	want := Env{Size: 1, LocalSize: 1, Node: "thishost", MasterAddr: "127.0.0.1", MasterPort: DefaultPort, Source: SourceSingle}
	if err != nil || !reflect.DeepEqual(e, want) {
		t.Errorf("FromEnv = %+v, %v", e, err)
	}
}

func TestFromEnvErrors(t *testing.T) {
	base := slices.Clone(srunTask)
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"RANK=2", "WORLD_SIZE=2", "MASTER_ADDR=h"}, "RANK=2 is not below WORLD_SIZE=2"},
		{[]string{"RANK=0"}, "WORLD_SIZE is not set"},
		{[]string{"WORLD_SIZE=2", "MASTER_ADDR=h"}, "RANK is not set"},
		{[]string{"RANK=x", "WORLD_SIZE=2"}, `RANK="x" is not an integer`},
		{[]string{"RANK=-1", "WORLD_SIZE=2"}, "RANK=-1: must be at least 0"},
		{[]string{"RANK=0", "WORLD_SIZE=0"}, "WORLD_SIZE=0: must be at least 1"},
		{[]string{"RANK=0", "WORLD_SIZE=2"}, "MASTER_ADDR is not set"},
		{[]string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=h", "LOCAL_RANK=0"}, "LOCAL_WORLD_SIZE is not"},
		{[]string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=h", "LOCAL_WORLD_SIZE=2"}, "LOCAL_RANK is not"},
		{[]string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=h", "LOCAL_RANK=2", "LOCAL_WORLD_SIZE=2"}, "LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2"},
		{[]string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=h", "LOCAL_RANK=0", "LOCAL_WORLD_SIZE=3"}, "LOCAL_WORLD_SIZE=3 exceeds WORLD_SIZE=2"},
		{[]string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=h", "MASTER_PORT=70000"}, "MASTER_PORT=70000 is not a TCP port"},
		{[]string{"MASTER_PORT=abc"}, `MASTER_PORT="abc" is not an integer`},
		{append(slices.Clone(base), "SLURM_PROCID=8"), "SLURM_PROCID=8 is not below SLURM_NTASKS=8"},
		{append(slices.Clone(base), "SLURM_NTASKS=", "SLURM_NPROCS="), "SLURM_NTASKS is not set"},
		{append(slices.Clone(base), "SLURM_LOCALID="), "SLURM_LOCALID is not set"},
		{append(slices.Clone(base), "SLURM_LOCALID=3"), "SLURM_LOCALID=3 is not below the 3 tasks on node gpu002"},
		{append(slices.Clone(base), "SLURM_STEP_TASKS_PER_NODE=3(x2)"), "gives 2 nodes but the node list has 3"},
		{append(slices.Clone(base), "SLURM_STEP_TASKS_PER_NODE=3(x3)"), "adds up to 9 tasks but there are 8"},
		{append(slices.Clone(base), "SLURM_STEP_TASKS_PER_NODE=3(y2),2"), "is not COUNT or COUNT(xREPEAT)"},
		{append(slices.Clone(base), "SLURM_STEP_NODELIST=gpu[003-001]"), "SLURM_STEP_NODELIST: host list"},
		{append(slices.Clone(base), "SLURM_STEP_NODELIST=", "SLURM_NODELIST=", "SLURM_JOB_NODELIST="), "none of SLURM_STEP_NODELIST"},
		{append(slices.Clone(base), "SLURMD_NODENAME=other", "SLURM_STEP_TASKS_PER_NODE=3(x2),2"), `node "other" (SLURMD_NODENAME) is not in the node list`},
		{append(slices.Clone(base), "SLURM_JOB_ID="), "neither MASTER_PORT nor SLURM_JOB_ID"},
		{[]string{"SLURM_PROCID=0", "SLURM_LOCALID=0", "SLURM_NTASKS=4", "SLURM_NODELIST=n[1-2]", "SLURM_JOB_ID=1"}, "none of SLURM_STEP_TASKS_PER_NODE"},
		{[]string{"SLURM_PROCID=0", "SLURM_LOCALID=0", "SLURM_NTASKS=2", "SLURM_NODELIST=n1", "SLURM_JOB_ID=1", "SLURM_NTASKS_PER_NODE=4"}, "SLURM_NTASKS_PER_NODE=4 exceeds"},
	} {
		_, err := FromEnv(mapEnv(c.env...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromEnv(%q): %v; want an error mentioning %q", c.env, err, c.want)
		}
	}
}

func TestParseTasksPerNode(t *testing.T) {
	for in, want := range map[string][]int{"2(x3),1": {2, 2, 2, 1}, "8": {8}, "4(x2)": {4, 4}, "1,2,3": {1, 2, 3}} {
		if got, err := ParseTasksPerNode(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseTasksPerNode(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "2(x0)", "a", "2(3)", "2(x3", "-1", "2(x3),"} {
		if got, err := ParseTasksPerNode(in); err == nil {
			t.Errorf("ParseTasksPerNode(%q) = %v, want an error", in, got)
		}
	}
}

func TestJobPort(t *testing.T) {
	for id, want := range map[string]int{"0": 20000, "1": 20001, "4242": 24242, "123456": 23456, "9999": 29999, "10000": 20000} {
		if got := JobPort(id); got != want {
			t.Errorf("JobPort(%q) = %d, want %d", id, got, want)
		}
	}
	if p := JobPort("not-a-number"); p < 20000 || p > 29999 || p != JobPort("not-a-number") {
		t.Errorf("JobPort of a non-numeric id: %d", p)
	}
}

func TestNewToken(t *testing.T) {
	a, err1 := NewToken()
	b, err2 := NewToken()
	if err1 != nil || err2 != nil || len(a) != 32 || a == b || !hexToken.MatchString(a) {
		t.Errorf("NewToken: %q %q %v %v", a, b, err1, err2)
	}
}

func TestGPUForRank(t *testing.T) {
	env := Env{Rank: 5, LocalRank: 2}
	for _, c := range []struct {
		cvd  string
		want GPU
		err  string
	}{
		{"", GPU{Ordinal: 2, ID: "2"}, ""},
		{"3", GPU{Ordinal: 0, ID: "3", Visible: 1}, ""},                                       // --gpus-per-task=1
		{"GPU-8f1c", GPU{Ordinal: 0, ID: "GPU-8f1c", Visible: 1}, ""},                         // a UUID
		{"0,1,2,3", GPU{Ordinal: 2, ID: "2", Visible: 4}, ""},                                 // --gres=gpu:4
		{"4, 5, 6", GPU{Ordinal: 2, ID: "6", Visible: 3}, ""},                                 // a site's subset
		{"MIG-a,MIG-b,MIG-c", GPU{Ordinal: 2, ID: "MIG-c", Visible: 3}, ""},                   // MIG slices
		{"0,1", GPU{}, "local rank 2 but only 2 GPUs are visible (CUDA_VISIBLE_DEVICES=0,1)"}, // too few
		{"NoDevFiles", GPU{}, "no GPU is visible"},
		{"-1", GPU{}, "no GPU is visible"},
	} {
		g, err := GPUForRank(env, mapEnv("CUDA_VISIBLE_DEVICES="+c.cvd))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("CUDA_VISIBLE_DEVICES=%q: %+v, %v; want an error mentioning %q", c.cvd, g, err, c.err)
			}
			continue
		}
		if err != nil || g != c.want {
			t.Errorf("CUDA_VISIBLE_DEVICES=%q: %+v, %v; want %+v", c.cvd, g, err, c.want)
		}
	}
}
