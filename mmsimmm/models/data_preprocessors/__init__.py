# Copyright (c) mmsimmm contributors. All rights reserved.
from .retrieval_data_preprocessor import RetrievalDataPreprocessor
from .two_view_data_preprocessor import TwoViewDataPreprocessor

__all__ = ['RetrievalDataPreprocessor', 'TwoViewDataPreprocessor']
