# Copyright (c) mmsimmm contributors. All rights reserved.
from .darkener import convert_zsda_darkener, load_darkener

__all__ = ['convert_zsda_darkener', 'load_darkener']
