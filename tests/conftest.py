# Copyright (c) mmsimmm contributors. All rights reserved.
"""Suite-wide set-up.

``import mmsimmm`` runs before any test module, so its compat patches (the
placeholder for mmaction2's missing ``localizers.drn``, the editable-install
``.mim`` lookup) are in place before a test imports ``mmaction.models`` or
parses an ``'mmsimmm::'`` config.

The fixtures that several test folders use live here: ``one_thread``
(folders make it autouse in their own conftest) and ``tiny_cls_images``,
plus those of the helper modules in tests/utils/ (``pytest_plugins``).
Test files import those helpers as ``utils.<module>``: this file puts
``tests/`` on ``sys.path``.
"""
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

import mmsimmm  # noqa: F401

TESTS_DIR = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.dirname(TESTS_DIR)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

pytest_plugins = [
    'utils.demo',
    'utils.retrieval_roots',
    'utils.simmm_runs',
    'utils.tiny_cls',
    'utils.upstream',
]


@pytest.fixture(scope='session')
def repo_root() -> str:
    """The repository root (the folder with setup.py)."""
    return REPO_ROOT


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny ops on a shared CPU run faster serially.

    A folder whose tests all want it makes it autouse in its conftest.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def tiny_cls_images(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two class folders (``day``, ``night``) of four 32x32 PNGs each.

    Day pixels are drawn from [150, 255), night pixels from [0, 80).
    """
    root = tmp_path_factory.mktemp('tiny_cls_images')
    rng = np.random.default_rng(0)
    for name, (low, high) in (('day', (150, 255)), ('night', (0, 80))):
        (root / name).mkdir()
        for index in range(4):
            image = rng.integers(low, high, (32, 32, 3), dtype=np.uint8)
            assert cv2.imwrite(str(root / name / f'{index}.png'), image)
    return str(root)
