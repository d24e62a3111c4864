# Copyright (c) mmsimmm contributors. All rights reserved.
import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread: tiny ops on a shared CPU run faster serially."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
