# Copyright (c) mmsimmm contributors. All rights reserved.
import pytest


@pytest.fixture(autouse=True)
def single_thread(one_thread):
    """Every test here runs with one intra-op thread (tests/conftest.py)."""
