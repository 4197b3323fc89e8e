// Package slurm will hold Slurm environment parsing, hostlist expansion and
// sbatch templates. Nothing is implemented yet; see README: Status.
package slurm
