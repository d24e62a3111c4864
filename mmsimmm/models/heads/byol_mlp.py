# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from mmsimmm.registry import MODELS

WEIGHT_INITS = ('kaiming_fan_in', 'pytorch')


class _LevelMLP(nn.Module):
    """One level: [conv3x3 -> BN2d -> ReLU] -> GAP -> fc -> BN1d -> ReLU -> fc.

    The convolution exists only when ``conv_channels`` is set (the
    segmentation projector). Inputs with spatial (or spatio-temporal) dims
    are global-average-pooled before the MLP.
    """

    def __init__(self, in_channels: int, hidden_channels: int,
                 out_channels: int, conv_channels: Optional[int],
                 norm_cfg: dict, conv_norm_cfg: dict) -> None:
        super().__init__()
        self.conv = None
        if conv_channels is not None:
            self.conv = nn.Sequential(
                nn.Conv2d(in_channels, conv_channels, 3, padding=1),
                build_norm_layer(conv_norm_cfg, conv_channels)[1],
                nn.ReLU(inplace=True))
            in_channels = conv_channels
        self.fc1 = nn.Linear(in_channels, hidden_channels)
        self.bn = build_norm_layer(norm_cfg, hidden_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden_channels, out_channels)

    def kaiming_fan_in_(self) -> None:
        """Kaiming-normal fan_in weights (gain sqrt(2)) on the fc layers
        and the conv; every bias keeps PyTorch's default init."""
        layers = [self.fc1, self.fc2]
        if self.conv is not None:
            layers.append(self.conv[0])
        for layer in layers:
            nn.init.kaiming_normal_(
                layer.weight, mode='fan_in', nonlinearity='relu')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is not None:
            if x.dim() != 4:
                raise ValueError('the conv projector level needs (N, C, H, W) '
                                 f'features, got shape {tuple(x.shape)}')
            x = self.conv(x)
        if x.dim() > 2:
            x = x.flatten(2).mean(2)
        if self.training and x.shape[0] < 2:
            raise ValueError('BYOL projector/predictor BatchNorm1d needs a '
                             'batch of at least 2 samples per GPU in '
                             f'training, got {x.shape[0]}')
        return self.fc2(self.relu(self.bn(self.fc1(x))))


@MODELS.register_module()
class BYOLMLP(BaseModule):
    """BYOL projector or predictor, one MLP per feature level.

    Per level: Linear -> BatchNorm1d -> ReLU -> Linear, preceded by global
    average pooling for map inputs, and optionally by Conv3x3 -> BN -> ReLU
    (``conv_channels``), the per-level projector of the segmentation recipe.
    Classification: ``in_channels=512, hidden_channels=128,
    out_channels=128``; action: ``2048, 64, 64``; segmentation: four levels
    ``[256, 512, 1024, 2048]`` with ``conv_channels=64``.

    Args:
        in_channels (int | Sequence[int]): Input channels of each level; an
            int means one level.
        hidden_channels (int): Width of the hidden layer. Defaults to 128.
        out_channels (int): Output width. Defaults to 128.
        conv_channels (int, optional): Channels of the optional leading
            3x3 convolution. Defaults to None (no convolution).
        norm_cfg (dict): Norm layer after the hidden Linear layer (built
            with ``mmcv.cnn.build_norm_layer``; ``dict(type='SyncBN')``
            for synchronised statistics). Defaults to ``dict(type='BN1d')``.
        conv_norm_cfg (dict): Norm layer after the optional convolution.
            Defaults to ``dict(type='BN')``.
        weight_init (str): Initialisation applied at construction:
            ``'kaiming_fan_in'`` (Kaiming-normal fan_in weights, gain
            sqrt(2), on the Linear layers and the conv, PyTorch's default
            biases: the official projectors) or ``'pytorch'`` (PyTorch's
            defaults: the official predictors). Defaults to
            'kaiming_fan_in'.
        init_cfg (dict | list[dict], optional): An MMEngine initialisation
            config applied by ``init_weights`` on top of ``weight_init``
            (e.g. ``dict(type='Kaiming', layer='Linear',
            distribution='normal')``: fan_out weights and zero biases, the
            earlier mmsimmm default). Defaults to None.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 hidden_channels: int = 128,
                 out_channels: int = 128,
                 conv_channels: Optional[int] = None,
                 norm_cfg: dict = dict(type='BN1d'),
                 conv_norm_cfg: dict = dict(type='BN'),
                 weight_init: str = 'kaiming_fan_in',
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 ) -> None:
        super().__init__(init_cfg=init_cfg)
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f'weight_init must be one of {WEIGHT_INITS}, '
                             f'got {weight_init!r}')
        if isinstance(in_channels, int):
            in_channels = [in_channels]
        self.levels = nn.ModuleList(
            _LevelMLP(c, hidden_channels, out_channels, conv_channels,
                      norm_cfg, conv_norm_cfg)
            for c in in_channels)
        if weight_init == 'kaiming_fan_in':
            for level in self.levels:
                level.kaiming_fan_in_()

    @property
    def num_levels(self) -> int:
        """Number of feature levels."""
        return len(self.levels)

    def forward(self, feats: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Map each level's features to a (N, out_channels) embedding."""
        if len(feats) != len(self.levels):
            raise ValueError(f'{type(self).__name__} has {len(self.levels)} '
                             f'level(s) but got {len(feats)} feature tensors')
        return [mlp(x) for mlp, x in zip(self.levels, feats)]
