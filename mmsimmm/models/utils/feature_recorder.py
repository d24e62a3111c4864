# Copyright (c) mmsimmm contributors. All rights reserved.
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
import torch.nn as nn


class _FeaturesRecorded(Exception):
    """Raised by a hook to stop a forward pass once every feature is in."""


def _as_tensor_list(output) -> List[torch.Tensor]:
    """Flatten a module output (tensor, or nested tuple/list) to tensors."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        tensors = []
        for item in output:
            tensors.extend(_as_tensor_list(item))
        return tensors
    raise TypeError(f'cannot record a module output of type {type(output)}')


class FeatureRecorder:
    """Record the outputs of named sub-modules of a model with forward hooks.

    Works for any task model (mmpretrain ``ImageClassifier``, mmseg
    ``EncoderDecoder``, mmaction2 ``Recognizer3D``...): the features are
    collected while the model's own forward runs, so no toolkit-specific
    ``extract_feat`` signature is needed. A module that returns a tuple of
    levels (e.g. a ResNet with several ``out_indices``) yields one tensor per
    level; ``indices`` picks levels from the concatenated list.

    Args:
        model (nn.Module): The model whose sub-modules are recorded.
        modules (Sequence[str]): Dotted names of the sub-modules, e.g.
            ``['backbone']`` or ``['neck']``.
        indices (Sequence[int], optional): Which of the recorded tensors to
            keep, in order. Defaults to None (all of them).

    Raises:
        ValueError: If a module name does not exist in ``model``.
    """

    def __init__(self,
                 model: nn.Module,
                 modules: Sequence[str],
                 indices: Optional[Sequence[int]] = None) -> None:
        module_names = [modules] if isinstance(modules, str) else modules
        if not module_names:
            raise ValueError('FeatureRecorder needs at least one module name')
        named = dict(model.named_modules())
        missing = [name for name in module_names if name not in named]
        if missing:
            available = sorted(n for n in named if n and '.' not in n)
            raise ValueError(
                f'feature module(s) {missing} not found in '
                f'{type(model).__name__}; its top-level modules are '
                f'{available}')
        self.model = model
        self.module_names = list(module_names)
        self.indices = None if indices is None else list(indices)
        self._outputs: Dict[str, List[torch.Tensor]] = {}
        self._stop_early = False

    def _make_hook(self, name: str) -> Callable:

        def hook(module, args, output):
            self._outputs[name] = _as_tensor_list(output)
            if self._stop_early and len(self._outputs) == len(
                    self.module_names):
                raise _FeaturesRecorded

        return hook

    @contextmanager
    def recording(self, stop_early: bool = False) -> Iterator[None]:
        """Record while the body of the ``with`` block runs the model.

        Args:
            stop_early (bool): Abort the forward pass (silently) as soon as
                every module has produced its output, which saves the rest
                of the computation. Defaults to False.
        """
        self._outputs = {}
        self._stop_early = stop_early
        modules = dict(self.model.named_modules())
        handles = [
            modules[name].register_forward_hook(self._make_hook(name))
            for name in self.module_names
        ]
        try:
            yield
        except _FeaturesRecorded:
            pass
        finally:
            for handle in handles:
                handle.remove()

    def features(self) -> List[torch.Tensor]:
        """Return the recorded tensors of the last recording.

        Raises:
            RuntimeError: If a module did not run during the recording.
        """
        missing = [n for n in self.module_names if n not in self._outputs]
        if missing:
            raise RuntimeError(
                f'feature module(s) {missing} did not run in the forward '
                'pass; choose modules on the path from the input to the '
                'task loss')
        tensors = []
        for name in self.module_names:
            tensors.extend(self._outputs[name])
        if self.indices is None:
            return tensors
        try:
            return [tensors[i] for i in self.indices]
        except IndexError:
            raise IndexError(
                f'feature indices {self.indices} out of range: modules '
                f'{self.module_names} produced {len(tensors)} tensors'
            ) from None

    def run(self, forward: Callable[[], object]) -> List[torch.Tensor]:
        """Run ``forward`` until all features are recorded and return them."""
        with self.recording(stop_early=True):
            forward()
        return self.features()
