# Copyright (c) mmsimmm contributors. All rights reserved.
from .byol_adapt_head import BYOLAdaptHead
from .byol_mlp import BYOLMLP
from .darken_head import DarkenHead

__all__ = ['BYOLAdaptHead', 'BYOLMLP', 'DarkenHead']
