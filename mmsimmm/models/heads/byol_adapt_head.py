# Copyright (c) mmsimmm contributors. All rights reserved.
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

import torch
import torch.nn as nn

from mmsimmm.registry import MODELS

from ..utils import FeatureRecorder

TARGET_UPDATES = ('before_use', 'after_use')


@MODELS.register_module()
class BYOLAdaptHead(nn.Module):
    """Adaptation-stage similarity: BYOL between the day and dark views.

    The online network is the task model (recorded at ``features``) plus
    ``projector``; ``predictor`` maps its embeddings onto the other view's
    embeddings by the target network, an EMA copy of the online network
    (:class:`~mmsimmm.models.utils.ema.FusedExponentialMovingAverage`) made
    by :meth:`bind`. The target copies the online weights at its first
    update, i.e. after ``load_from`` and the darkening stage.

    Args:
        projector (dict): ``mmsimmm.BYOLMLP`` config of the projector.
        predictor (dict): ``mmsimmm.BYOLMLP`` config of the predictor.
        features (dict): Task-model features: ``modules`` and optional
            ``indices`` (see ``FeatureRecorder``). Defaults to
            ``dict(modules=['neck'])``.
        loss (dict): Pair loss of a prediction and a target embedding.
            Defaults to ``dict(type='mmsimmm.CosineSimilarityLoss')``
            (2 - 2cos).
        loss_weight (float): Weight per direction (day->dark, dark->day).
            Defaults to 0.05.
        momentum (float): Online weight of the EMA update (0.01 = the
            paper's m = 0.99). Defaults to 0.01.
        target_update (str): ``'before_use'`` (EMA-update the target, then
            use it) or ``'after_use'`` (use it, then update: a one-step
            lag). Defaults to 'before_use'.
    """

    def __init__(self,
                 projector: dict,
                 predictor: dict,
                 features: dict = dict(modules=['neck']),
                 loss: dict = dict(type='mmsimmm.CosineSimilarityLoss'),
                 loss_weight: float = 0.05,
                 momentum: float = 0.01,
                 target_update: str = 'before_use') -> None:
        super().__init__()
        if target_update not in TARGET_UPDATES:
            raise ValueError(f'target_update must be one of '
                             f'{TARGET_UPDATES}, got {target_update!r}')
        if not 0 < momentum < 1:
            raise ValueError(f'momentum must be in (0, 1), got {momentum} '
                             "(0.01 = the paper's m = 0.99)")
        self.features = dict(features)
        self.projector = MODELS.build(projector)
        self.predictor = MODELS.build(predictor)
        self.loss_fn = MODELS.build(loss)
        self.loss_weight = loss_weight
        self.momentum = momentum
        self.target_update = target_update
        self.recorder: Optional[FeatureRecorder] = None
        self._task_model: List[nn.Module] = []  # not a child: no state

    def bind(self, task_model: nn.Module) -> None:
        """Build the feature recorders and the EMA target of the online
        network ``{encoder: task_model, projector}``.

        Args:
            task_model (nn.Module): The task model.
        """
        self._task_model = [task_model]
        self.recorder = FeatureRecorder(task_model, **self.features)
        self.target = MODELS.build(
            dict(
                type='mmsimmm.FusedExponentialMovingAverage',
                model=self.online_network(),
                momentum=self.momentum))
        self.target_recorder = FeatureRecorder(self.target.module.encoder,
                                               self.recorder.module_names,
                                               self.recorder.indices)

    def online_network(self) -> nn.ModuleDict:
        """The online network: the bound task model and the projector."""
        return nn.ModuleDict(
            dict(encoder=self._task_model[0], projector=self.projector))

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Record the task features while the body runs the task model."""
        with self.recorder.recording():
            yield

    def predict(self) -> List[torch.Tensor]:
        """Online predictions of the features of the last recording."""
        return self.predictor(self.projector(self.recorder.features()))

    def _target_embeddings(self, images: torch.Tensor) -> List[torch.Tensor]:
        target = self.target.module
        feats = self.target_recorder.run(
            lambda: target.encoder(images, mode='tensor'))
        return target.projector(feats)

    def loss(self, online: Dict[str, List[torch.Tensor]], day: torch.Tensor,
             dark: torch.Tensor) -> torch.Tensor:
        """Symmetric BYOL loss, EMA-updating the target as configured.

        Args:
            online (dict): ``day`` / ``dark`` -> online predictions per
                feature level (from :meth:`predict`).
            day (Tensor): The day view the predictions came from.
            dark (Tensor): The dark view.

        Returns:
            Tensor: ``loss_weight`` x the sum of both directions, each the
            mean over feature levels.
        """
        update_first = self.target_update == 'before_use'
        online_network = self.online_network()
        with torch.no_grad():
            if update_first:
                self.target.update_parameters(online_network)
            else:  # the first use sees the online weights (copied once)
                self.target.copy_if_first(online_network)
            target = {
                view: self._target_embeddings(images)
                for view, images in (('day', day), ('dark', dark))
            }
            if not update_first:
                self.target.update_parameters(online_network)
        total = 0.
        for pred, other in (('day', 'dark'), ('dark', 'day')):
            pairs = list(zip(online[pred], target[other]))
            total = total + sum(self.loss_fn(p, z)
                                for p, z in pairs) / len(pairs)
        return self.loss_weight * total
