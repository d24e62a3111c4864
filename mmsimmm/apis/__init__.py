# Copyright (c) mmsimmm contributors. All rights reserved.
from .cli import (
    add_darkener_checkpoint_argument,
    add_exposure_arguments,
    check_exposure_arguments,
)
from .darkener import convert_zsda_darkener, load_darkener

__all__ = [
    'add_darkener_checkpoint_argument', 'add_exposure_arguments',
    'check_exposure_arguments',
    'convert_zsda_darkener', 'load_darkener'
]
