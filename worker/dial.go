package main

import (
	"context"

	"earl/collective"
	"earl/slurm"
)

// dial connects this rank to its job's collectives over TCP: rank 0 hosts
// the rendezvous at MASTER_ADDR:MASTER_PORT and every rank proves the job
// token (EARL_JOB_TOKEN) to its peers.
func dial(ctx context.Context, env slurm.Env, opt collective.Options) (collective.Comm, error) {
	return collective.Dial(ctx, env.Rank, env.Size, env.MasterAddr, env.MasterPort, env.Token, opt)
}
