# Copyright (c) mmsimmm contributors. All rights reserved.
from .algorithms import *  # noqa: F401,F403
from .darkeners import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .decode_heads import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .retrievers import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
