# Copyright (c) mmsimmm contributors. All rights reserved.
# Sourced by tools/dist_train.sh and tools/dist_test.sh (not run alone):
#   dist_run TOOL NPROC [TOOL args]
# runs tools/TOOL under torchrun, one process per GPU (or, on a machine
# without a GPU, per CPU worker: gloo, see mmsimmm/utils/dist.py), with
# this checkout first on PYTHONPATH. Multi-node: set NNODES, NODE_RANK,
# MASTER_ADDR and PORT on every node.

# usage_check MIN USAGE "$@": exit 2 with USAGE if fewer than MIN arguments
usage_check() {
    local min=$1 usage=$2
    shift 2
    if [ "$#" -lt "$min" ]; then
        echo "usage: $usage" >&2
        exit 2
    fi
}

dist_run() {
    local tool=$1 nproc=$2
    local tools_dir
    tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    shift 2
    PYTHONPATH="$tools_dir/..${PYTHONPATH:+:$PYTHONPATH}" \
    python -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$nproc" \
        --master_port="${PORT:-29500}" \
        "$tools_dir/$tool" "$@"
}
