# Copyright (c) mmsimmm contributors. All rights reserved.
from .byol_mlp import BYOLMLP

__all__ = ['BYOLMLP']
