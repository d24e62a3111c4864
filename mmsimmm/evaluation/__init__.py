# Copyright (c) mmsimmm contributors. All rights reserved.
from .metrics import *  # noqa: F401,F403
from .retrieval_map import RetrievalMAP  # noqa: F401
