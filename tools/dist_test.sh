#!/usr/bin/env bash
# Copyright (c) mmsimmm contributors. All rights reserved.
# Distributed testing with torchrun: one process per GPU (or, on a machine
# without a GPU, per CPU worker: gloo, see mmsimmm/utils/dist.py).
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -euo pipefail
source "$(dirname "$0")/dist_common.sh"

usage_check 3 "$0 CONFIG CHECKPOINT GPUS [tools/test.py args]" "$@"
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
dist_run test.py "$GPUS" "$CONFIG" "$CHECKPOINT" --launcher pytorch \
    "${@:4}"
