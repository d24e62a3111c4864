# Copyright (c) mmsimmm contributors. All rights reserved.
from .contrastive_loss import ContrastiveLoss
from .data_preprocessor import RetrievalDataPreprocessor
from .gem_retriever import GeMRetriever
from .whitening import (
    apply_whitening,
    learn_whitening,
    load_whitening,
    regularized_cholesky,
    save_whitening,
)

__all__ = [
    'ContrastiveLoss', 'RetrievalDataPreprocessor', 'GeMRetriever',
    'apply_whitening', 'learn_whitening', 'load_whitening',
    'regularized_cholesky', 'save_whitening'
]
