# Copyright (c) mmsimmm contributors. All rights reserved.
"""mmsimmm's registry nodes, each a child of the MMEngine root registry.

Every node lists ``locations`` so that a config naming ``type='mmsimmm.X'``
imports the package that registers ``X`` on first use. More details:
https://mmengine.readthedocs.io/en/latest/advanced_tutorials/registry.html
"""
from typing import List

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import (
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
)
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry

__all__ = [
    'RUNNERS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS', 'OPTIMIZERS',
    'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS',
    'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
    'TASK_UTILS', 'METRICS', 'EVALUATOR', 'VISUALIZERS', 'VISBACKENDS'
]

_ENGINE = ['mmsimmm.engine']
_MODELS = ['mmsimmm.models']
_DATASETS = ['mmsimmm.datasets']
_EVALUATION = ['mmsimmm.evaluation']


def _child(parent: Registry, locations: List[str]) -> Registry:
    """A child of an MMEngine root registry, named as the root, that imports
    ``locations`` when it is first searched."""
    return Registry(parent.name, parent=parent, locations=locations)


# engine
RUNNERS = _child(MMENGINE_RUNNERS, _ENGINE)
LOOPS = _child(MMENGINE_LOOPS, _ENGINE)
HOOKS = _child(MMENGINE_HOOKS, _ENGINE)
LOG_PROCESSORS = _child(MMENGINE_LOG_PROCESSORS, _ENGINE)
OPTIMIZERS = _child(MMENGINE_OPTIMIZERS, _ENGINE)
OPTIM_WRAPPERS = _child(MMENGINE_OPTIM_WRAPPERS, _ENGINE)
OPTIM_WRAPPER_CONSTRUCTORS = _child(MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                    _ENGINE)
PARAM_SCHEDULERS = _child(MMENGINE_PARAM_SCHEDULERS, _ENGINE)

# datasets
DATASETS = _child(MMENGINE_DATASETS, _DATASETS)
DATA_SAMPLERS = _child(MMENGINE_DATA_SAMPLERS, _DATASETS)
TRANSFORMS = _child(MMENGINE_TRANSFORMS, _DATASETS)

# models
MODELS = _child(MMENGINE_MODELS, _MODELS)
MODEL_WRAPPERS = _child(MMENGINE_MODEL_WRAPPERS, _MODELS)
TASK_UTILS = _child(MMENGINE_TASK_UTILS, _MODELS)

# evaluation
METRICS = _child(MMENGINE_METRICS, _EVALUATION)
EVALUATOR = _child(MMENGINE_EVALUATOR, _EVALUATION)

# visualization
VISUALIZERS = _child(MMENGINE_VISUALIZERS, _ENGINE)
VISBACKENDS = _child(MMENGINE_VISBACKENDS, _ENGINE)
