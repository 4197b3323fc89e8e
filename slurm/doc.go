// Package slurm is earl's side of the job launchers: it reads a rank's job
// environment (FromEnv: Slurm's task variables, torchrun-style RANK /
// WORLD_SIZE as launcher run sets them, or a lone process), expands Slurm
// host lists (ExpandHostlist, `gpu[001-004,010]`), picks each rank's GPU
// (GPUForRank), and writes the sbatch scripts of launcher sbatch (Script):
// one srun task per GPU, a fresh job token, and a USR1 trap that lets the
// workers checkpoint and requeues the job before the time limit or a
// preemption. docs/slurm.md describes the contract and the scripts.
//
// This directory also holds the generated scripts (grpo_8xh100.sh) and
// the integration test that runs them on a real one-node Slurm cluster.
package slurm
