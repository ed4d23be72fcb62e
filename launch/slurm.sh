#!/usr/bin/env bash
# Multi-node SLURM: the same `python -m jdrum.train --distributed` in every task (srun).
#
#   sbatch --nodes=2 --gpus-per-node=8 launch/slurm.sh configs/lm_seq2seq_low.py runs/NAME/lm [--config...]
#   PER=node sbatch --nodes=4 --gpus-per-node=8 launch/slurm.sh configs/lm_seq2seq_low.py runs/NAME/lm
#
# Submit from the repository root (the job starts in the submit directory).
# PER=gpu (default): one task per GPU; JAX gives each task the GPU of its SLURM_LOCALID.
# PER=node: one task per node driving all of that node's GPUs.
# The coordinator (process 0) is the first node of the job, port PORT (default 12355 + job id
# modulo 1000); jax.distributed.initialize reads it from JAX_COORDINATOR_ADDRESS and takes the
# process count and id from SLURM_NTASKS / SLURM_PROCID. The workdir must be on a file system
# every node sees (every process writes its part of each checkpoint there).
#SBATCH --job-name=jdrum
#SBATCH --nodes=2
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-gpu=8
#SBATCH --time=48:00:00
#SBATCH --output=slurm-%j.out
set -euo pipefail
if [[ $# -lt 2 ]]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
config=$1 workdir=$2
shift 2
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
PYTHON=${PYTHON:-.venv/bin/python}
PER=${PER:-gpu}
GPUS_PER_NODE=${SLURM_GPUS_ON_NODE:-${SLURM_GPUS_PER_NODE:-8}}
GPUS_PER_NODE=${GPUS_PER_NODE##*:} # "a100:8" -> "8"

head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export JAX_COORDINATOR_ADDRESS="$head_node:${PORT:-$((12355 + SLURM_JOB_ID % 1000))}"
case "$PER" in
  gpu)
    tasks=(--ntasks-per-node="$GPUS_PER_NODE")
    ;;
  node)
    tasks=(--ntasks-per-node=1)
    # Without this JAX gives each SLURM task one GPU (its local task id).
    JAX_LOCAL_DEVICE_IDS=$(seq -s, 0 $((GPUS_PER_NODE - 1)))
    export JAX_LOCAL_DEVICE_IDS
    ;;
  *)
    echo "PER must be gpu or node, got '$PER'" >&2
    exit 2
    ;;
esac
echo "coordinator $JAX_COORDINATOR_ADDRESS, $SLURM_JOB_NUM_NODES nodes, one task per $PER"
srun --nodes="$SLURM_JOB_NUM_NODES" "${tasks[@]}" --kill-on-bad-exit=1 \
  "$PYTHON" -m jdrum.train --distributed --config "$config" --workdir "$workdir" "$@"
