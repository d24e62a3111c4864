# Copyright (c) mmsimmm contributors. All rights reserved.
from .tuple_mining_hook import TupleMiningHook

__all__ = ['TupleMiningHook']
