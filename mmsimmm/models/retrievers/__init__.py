# Copyright (c) mmsimmm contributors. All rights reserved.
from .gem_retriever import GeMRetriever

__all__ = ['GeMRetriever']
