# Copyright (c) mmsimmm contributors. All rights reserved.
from .arid import ARIDVideoDataset  # noqa: F401
from .codan import CODaNDataset  # noqa: F401
from .domain_concat import DomainConcatDataset  # noqa: F401
from .retrieval_sfm120k import (  # noqa: F401
    RetrievalSfM120kTuples,
    SfM120kWhitenDataset,
)
from .synthetic_shapes import SyntheticDayNightShapes  # noqa: F401
from .tokyo247 import Tokyo247Dataset  # noqa: F401
from .transforms import *  # noqa: F401,F403
