# Copyright (c) mmsimmm contributors. All rights reserved.
"""Suite-wide set-up.

``import mmsimmm`` runs before any test module, so its compat patches (the
placeholder for mmaction2's missing ``localizers.drn``, the editable-install
``.mim`` lookup) are in place before a test imports ``mmaction.models`` or
parses an ``'mmsimmm::'`` config.

The fixtures that several test folders use live here: ``one_thread``
(folders make it autouse in their own conftest) and ``tiny_cls_images``.
"""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

import mmsimmm  # noqa: F401

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


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
