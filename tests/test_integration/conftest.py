# Copyright (c) mmsimmm contributors. All rights reserved.
"""End-to-end tests that belong to no single module.

What goes here: runs that exercise several modules, tools and installed
toolkits together, e.g. determinism of whole runs, exact resume after a
SIGKILL, DDP (two gloo processes) vs one process, bad inputs stopping
``tools/train.py`` before training, the toolkits' OWN tools and
``dist_train.sh`` on mmsimmm configs, a user config outside the
repository, the built wheel, ``setup.py`` and the README quick start.

What does not: a test of one module goes to the mirrored path
``tests/test_<subpackage>/.../test_<module>.py`` (tests/test_layout.py
checks it), a test of one tool to ``tests/test_tools/``, of one config
family to ``tests/test_configs/``. Shared helpers live in tests/utils/.

Most tests here start processes or train for long: they carry the
``slow`` marker, so ``pytest -m 'not slow'`` skips them.
"""
import pytest


@pytest.fixture(autouse=True)
def single_thread(one_thread):
    """Every test here runs with one intra-op thread (tests/conftest.py)."""
