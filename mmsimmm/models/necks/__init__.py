# Copyright (c) mmsimmm contributors. All rights reserved.
from .gem_pooling import GeMPooling

__all__ = ['GeMPooling']
