# Copyright (c) mmsimmm contributors. All rights reserved.
import pytest

from utils.retrieval import (
    SFM_CLUSTERS,
    SFM_PIDXS,
    SFM_QIDXS,
    make_sfm,
    make_tokyo,
)


@pytest.fixture
def sfm_root(tmp_path) -> str:
    """data_root with the 9-image, 3-cluster SfM fixture."""
    make_sfm(str(tmp_path), SFM_CLUSTERS, SFM_QIDXS, SFM_PIDXS,
             sizes={1: (32, 40), 4: (24, 36)})
    return str(tmp_path)


@pytest.fixture
def tokyo_root(tmp_path) -> str:
    """data_root with the 6-image Tokyo fixture."""
    make_tokyo(str(tmp_path))
    return str(tmp_path)
