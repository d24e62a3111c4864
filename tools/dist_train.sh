#!/usr/bin/env bash
# Copyright (c) mmsimmm contributors. All rights reserved.
# Distributed training with torchrun: one process per GPU (or, on a machine
# without a GPU, per CPU worker: gloo, see mmsimmm/utils/dist.py).
#   bash tools/dist_train.sh CONFIG GPUS [tools/train.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -euo pipefail
source "$(dirname "$0")/dist_common.sh"

usage_check 2 "$0 CONFIG GPUS [tools/train.py args]" "$@"
CONFIG=$1
GPUS=$2
dist_run train.py "$GPUS" "$CONFIG" --launcher pytorch "${@:3}"
