#!/usr/bin/env bash
# Copyright (c) mmsimmm contributors. All rights reserved.
# Install mmsimmm and the OpenMMLab stack it needs into the CURRENT Python
# (activate a virtualenv first). One `pip install` cannot do it: mmcv 2.1.0
# is a source distribution whose compiled ops only build against an
# installed torch with --no-build-isolation. So, in stages:
#   1. torch + build tools            (requirements/build.txt)
#   2. the full mmcv, built from source (requirements/mmcv.txt; skipped when
#      mmcv 2.1.0 with mmcv._ext is already importable; pip caches the built
#      wheel, so a rebuild on the same machine is quick)
#   3. mmsimmm in editable mode with the tested pins as constraints
#      (requirements/runtime.txt)
#   4. openmim (the `mim` command) without its dataset-download chain
#      (requirements/mim.txt)
#   5. an import check
# Environment: PYTHON (default: python), MAX_JOBS (mmcv build jobs, default
# 2), FORCE_CUDA (default 0; mmcv still builds CUDA ops when torch sees CUDA).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
PYTHON=${PYTHON:-python}

step() { printf '\n==> %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

step "Python: $(command -v "$PYTHON") ($("$PYTHON" -V 2>&1))"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ]; then
    echo "WARNING: no virtualenv is active; installing into" \
        "$("$PYTHON" -c 'import sys; print(sys.prefix)')"
fi
"$PYTHON" - <<'EOF'
import sys
if sys.version_info < (3, 10):
    sys.exit(f'mmsimmm needs Python >= 3.10 (torch 2.9), got {sys.version}')
EOF

step "1/5 torch and build tools (requirements/build.txt)"
run "$PYTHON" -m pip install -r requirements/build.txt -c requirements/runtime.txt

full_mmcv_installed() {
    "$PYTHON" - <<'EOF' 2>/dev/null
import torch  # noqa: F401  (mmcv._ext links against libtorch)
import mmcv
import mmcv._ext  # noqa: F401
assert mmcv.__version__ == '2.1.0', mmcv.__version__
EOF
}

step "2/5 mmcv 2.1.0 with compiled ops (requirements/mmcv.txt)"
if full_mmcv_installed; then
    echo "mmcv 2.1.0 with mmcv._ext is already installed: nothing to build"
else
    if "$PYTHON" -m pip show -q mmcv mmcv-lite >/dev/null 2>&1; then
        echo "an mmcv without compiled ops (or another version) is" \
            "installed: replacing it"
        run "$PYTHON" -m pip uninstall -y mmcv mmcv-lite
    fi
    echo "building mmcv from source if pip has no cached wheel" \
        "(about 5-10 min on 2 cores)"
    export MMCV_WITH_OPS=1
    export FORCE_CUDA=${FORCE_CUDA:-0}
    export MAX_JOBS=${MAX_JOBS:-2}
    run "$PYTHON" -m pip install --no-build-isolation \
        -r requirements/mmcv.txt -c requirements/runtime.txt
    if ! full_mmcv_installed; then
        echo "ERROR: mmcv installed, but 'import mmcv._ext' fails: the" \
            "compiled ops are missing (see the pip output above)" >&2
        exit 1
    fi
fi

step "3/5 mmsimmm (editable) with the tested pins (requirements/runtime.txt)"
run "$PYTHON" -m pip install -e . \
    -c requirements/runtime.txt -c requirements/build.txt

step "4/5 openmim for mim train/test (requirements/mim.txt)"
# openmim 0.3.9 depends on opendatalab -> openxlab, which pin setuptools 60,
# requests 2.28, rich 13.4 and tqdm 4.65 and serve only `mim download` of
# datasets; mim's train/test/run commands import none of them. So openmim
# itself goes in without dependencies and requirements/mim.txt installs
# exactly the packages its commands import.
run "$PYTHON" -m pip install --no-deps -r requirements/openmim.txt \
    -c requirements/runtime.txt
run "$PYTHON" -m pip install -r requirements/mim.txt -c requirements/runtime.txt

step "5/5 import check"
(cd / && "$PYTHON" -c "
import mmsimmm, mmseg.models, mmaction.models, mmpretrain.models
import mim.commands  # noqa: F401  (mim train/test)
import mmcv, mmengine, mmseg, mmaction, mmpretrain, torch
print('OK: mmsimmm', mmsimmm.__version__, '| torch', torch.__version__,
      '| mmengine', mmengine.__version__, '| mmcv', mmcv.__version__,
      '| mmpretrain', mmpretrain.__version__, '| mmseg', mmseg.__version__,
      '| mmaction2', mmaction.__version__)
")
