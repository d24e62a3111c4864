# Copyright (c) mmsimmm contributors. All rights reserved.
"""Suite-wide set-up.

``import mmsimmm`` runs before any test module, so its compat patches (the
placeholder for mmaction2's missing ``localizers.drn``, the editable-install
``.mim`` lookup) are in place before a test imports ``mmaction.models`` or
parses an ``'mmsimmm::'`` config.
"""
import os.path as osp

import pytest

import mmsimmm  # noqa: F401

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root() -> str:
    """The repository root (the folder with setup.py)."""
    return REPO_ROOT
