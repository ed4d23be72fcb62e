#!/usr/bin/env bash
# One host, several GPUs: one process drives every visible GPU; config.mesh lays them out.
#
#   launch/local_gpus.sh configs/vqvae_drums.py runs/NAME/vqvae_drums [--config.a.b=v ...]
#   CUDA_VISIBLE_DEVICES=0,1 launch/local_gpus.sh configs/lm_seq2seq_low.py runs/NAME/lm --config.mesh.fsdp=2
#
# config.data.batch_size is the global batch; it must divide evenly over the GPUs. With one
# process no --distributed is needed; for one process per GPU use launch/slurm.sh or start
# `python -m jdrum.train --distributed --coordinator_address=localhost:PORT --num_processes=N
# --process_id=I` yourself with CUDA_VISIBLE_DEVICES=I in each.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
config=$1 workdir=$2
shift 2
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
# Let XLA take most of each GPU's memory up front (its default is 75 %).
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
exec "$PYTHON" -m jdrum.train --config "$config" --workdir "$workdir" "$@"
