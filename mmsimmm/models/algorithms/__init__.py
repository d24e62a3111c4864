# Copyright (c) mmsimmm contributors. All rights reserved.
from .simminmax import SimMinMax
from .simminmax_retrieval import SimMinMaxRetrieval

__all__ = ['SimMinMax', 'SimMinMaxRetrieval']
