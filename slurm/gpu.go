package slurm

import (
	"fmt"
	"strings"
)

// GPU is the device one rank drives.
type GPU struct {
	// Ordinal is the CUDA device ordinal to open (cuDeviceGet), counted
	// among the devices this process sees: CUDA renumbers the devices of
	// CUDA_VISIBLE_DEVICES from 0.
	Ordinal int
	// ID is the CUDA_VISIBLE_DEVICES entry of that device (an index, a
	// GPU-… UUID or a MIG-… id), for logs; the ordinal as text when the
	// variable is unset.
	ID string
	// Visible is how many devices CUDA_VISIBLE_DEVICES lists, 0 when it is
	// unset (every device of the node is visible).
	Visible int
}

// GPUForRank picks the GPU of a rank from CUDA_VISIBLE_DEVICES (read
// through getenv) and env.LocalRank (LOCAL_RANK, or SLURM_LOCALID under
// srun):
//
//   - one device listed: Slurm (or the site) already bound one GPU per task
//     (`--gpus-per-task=1`, or `--gpu-bind`): that device, ordinal 0,
//     whatever the local rank;
//   - several listed (`--gres=gpu:G`: every task sees the node's G GPUs):
//     the entry at the local rank, ordinal LocalRank; an error when the
//     local rank is past the list;
//   - unset (or empty: getenv cannot tell them apart): every device is
//     visible; ordinal LocalRank;
//   - "-1" or "NoDevFiles" (what Slurm sets when a task has no GPU): an
//     error saying how to request GPUs.
func GPUForRank(env Env, getenv func(string) string) (GPU, error) {
	v := strings.TrimSpace(getenv("CUDA_VISIBLE_DEVICES"))
	if v == "" {
		return GPU{Ordinal: env.LocalRank, ID: fmt.Sprint(env.LocalRank)}, nil
	}
	if v == "-1" || v == "NoDevFiles" {
		return GPU{}, fmt.Errorf("rank %d: no GPU is visible (CUDA_VISIBLE_DEVICES=%q): request GPUs with sbatch --gpus-per-task=1 or --gres=gpu:N", env.Rank, v)
	}
	ids := strings.Split(v, ",")
	for i := range ids {
		ids[i] = strings.TrimSpace(ids[i])
	}
	if len(ids) == 1 {
		return GPU{Ordinal: 0, ID: ids[0], Visible: 1}, nil
	}
	if env.LocalRank >= len(ids) {
		return GPU{}, fmt.Errorf("rank %d: local rank %d but only %d GPUs are visible (CUDA_VISIBLE_DEVICES=%s): start at most one rank per GPU on a node",
			env.Rank, env.LocalRank, len(ids), v)
	}
	return GPU{Ordinal: env.LocalRank, ID: ids[env.LocalRank], Visible: len(ids)}, nil
}
