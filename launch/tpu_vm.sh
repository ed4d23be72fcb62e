#!/usr/bin/env bash
# Cloud TPU VM (single host or pod slice): run the same command on every worker over ssh.
#
#   TPU=my-tpu ZONE=us-central2-b launch/tpu_vm.sh configs/lm_seq2seq_low.py /mnt/shared/runs/NAME/lm \
#       --config.data.data_dir=/mnt/shared/tfds [--config.a.b=v ...]
#
# Every worker needs the repository at REPO (default: jdrum in the worker's home) with
# `make install` done, e.g. once: gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" \
# --worker=all --command "git clone URL jdrum && cd jdrum && make install &&
# .venv/bin/pip install 'jax[tpu]'". PROJECT optionally names the gcloud project.
# The data and the workdir must be local paths that every worker reads and writes (a shared
# disk, e.g. Filestore, or a bucket mounted with gcsfuse): every process writes its part of
# each checkpoint. jax.distributed.initialize finds the workers itself on TPU VMs; logs of every
# worker stream back here (prefixed by gcloud with the worker index).
set -euo pipefail
if [[ $# -lt 2 || -z ${TPU:-} || -z ${ZONE:-} ]]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
config=$1 workdir=$2
shift 2
REPO=${REPO:-jdrum}
args=$(printf ' %q' --config "$config" --workdir "$workdir" "$@")
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" ${PROJECT:+--project "$PROJECT"} \
  --worker=all \
  --command "cd $REPO && .venv/bin/python -m jdrum.train --distributed$args"
