# Copyright (c) mmsimmm contributors. All rights reserved.
"""A reference RefineNet with the OFFICIAL key layout and data-flow.

Written for the converter tests from the layout description (module names,
shapes and forward order of the official ZSDA segmentation model); it is a
second, independent implementation used to check ``RefineNetHead``. As the
official training code builds it, the classifier has 20 outputs: the 19
Cityscapes classes and a void class 19. :class:`OfficialRefineNetBYOL` adds
the training-only parts of the official BYOL wrapper (``encoder_k``,
``head_q``, ``head_k``, ``pred``) in the official key order.
"""
from typing import List

import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch import Tensor


def _conv(cin: int, cout: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=bias)


class _RCUChain(nn.Module):
    """Units '{i}_conv' (bias) and '{i}_conv_relu_varout_dimred'."""

    def __init__(self, channels: int, num_units: int) -> None:
        super().__init__()
        self.num_units = num_units
        for i in range(1, num_units + 1):
            self.add_module(f'{i}_conv', _conv(channels, channels, True))
            self.add_module(f'{i}_conv_relu_varout_dimred',
                            _conv(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        for i in range(1, self.num_units + 1):
            residual = x
            x = getattr(self, f'{i}_conv')(F.relu(x))
            x = getattr(self, f'{i}_conv_relu_varout_dimred')(F.relu(x))
            x = x + residual
        return x


class _CRPChain(nn.Module):
    """Stages '{j}_outvar_dimred' with max-pool 5x5 stride 1."""

    def __init__(self, channels: int, num_stages: int = 4) -> None:
        super().__init__()
        self.num_stages = num_stages
        for j in range(1, num_stages + 1):
            self.add_module(f'{j}_outvar_dimred', _conv(channels, channels))
        self.maxpool = nn.MaxPool2d(5, 1, 2)

    def forward(self, x: Tensor) -> Tensor:
        top = x
        for j in range(1, self.num_stages + 1):
            top = getattr(self, f'{j}_outvar_dimred')(self.maxpool(top))
            x = x + top
        return x


class _Trunk(nn.Module):
    """torchvision ResNet without fc: returns (l1, l2, l3, l4)."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        tv = getattr(torchvision.models, f'resnet{depth}')(weights=None)
        for name in ('conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2',
                     'layer3', 'layer4'):
            setattr(self, name, getattr(tv, name))

    def forward(self, x: Tensor) -> List[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        l1 = self.layer1(x)
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        l4 = self.layer4(l3)
        return [l1, l2, l3, l4]


class OfficialRefineNet(nn.Module):
    """Official names: resnet, p_ims1d2_outl*, adapt_stage*, mflow_conv_g*,
    clf_conv; dropout ``do``."""

    def __init__(self, num_classes: int = 20, depth: int = 101) -> None:
        super().__init__()
        self.depth = depth
        self.resnet = _Trunk(depth)
        self._add_training_branches()
        self.do = nn.Dropout(p=0.5)
        widths = {1: 512, 2: 256, 3: 256, 4: 256}
        in_channels = {1: 2048, 2: 1024, 3: 512, 4: 256}
        for s in range(1, 5):
            w = widths[s]
            setattr(self, f'p_ims1d2_outl{s}_dimred',
                    _conv(in_channels[s], w))
            setattr(self, f'adapt_stage{s}_b',
                    nn.Sequential(_RCUChain(w, 2)))
            if s > 1:
                setattr(self, f'adapt_stage{s}_b2_joint_varout_dimred',
                        _conv(w, w))
            setattr(self, f'mflow_conv_g{s}_pool',
                    nn.Sequential(_CRPChain(w)))
            setattr(self, f'mflow_conv_g{s}_b',
                    nn.Sequential(_RCUChain(w, 3)))
            if s < 4:
                setattr(self, f'mflow_conv_g{s}_b3_joint_varout_dimred',
                        _conv(w, 256))
        self.clf_conv = nn.Conv2d(256, num_classes, 3, 1, 1, bias=True)

    def _add_training_branches(self) -> None:
        """Modules registered right after ``resnet`` (none here)."""

    @staticmethod
    def _up(x: Tensor, size) -> Tensor:
        return F.interpolate(
            x, size=size, mode='bilinear', align_corners=True)

    def forward(self, x: Tensor) -> Tensor:
        l1, l2, l3, l4 = self.resnet(x)
        l4 = self.do(l4)
        l3 = self.do(l3)
        feats = {1: l4, 2: l3, 3: l2, 4: l1}
        top = None
        for s in range(1, 5):
            y = getattr(self, f'p_ims1d2_outl{s}_dimred')(feats[s])
            y = getattr(self, f'adapt_stage{s}_b')(y)
            if s > 1:
                y = getattr(self, f'adapt_stage{s}_b2_joint_varout_dimred')(y)
                y = y + top
            y = F.relu(y)
            y = getattr(self, f'mflow_conv_g{s}_pool')(y)
            y = getattr(self, f'mflow_conv_g{s}_b')(y)
            if s < 4:
                y = getattr(self, f'mflow_conv_g{s}_b3_joint_varout_dimred')(y)
                y = self._up(y, feats[s + 1].shape[2:])
            top = y
        out = self._up(top, (4 * l1.shape[2], 4 * l1.shape[3]))
        return self.clf_conv(self.do(out))


class _Projector(nn.Module):
    """conv1 3x3 -> bn1 (2D) -> ReLU -> GAP -> fc1 -> bn2 (1D) -> ReLU ->
    fc2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64, 128)
        self.bn2 = nn.BatchNorm1d(128)
        self.fc2 = nn.Linear(128, 128)


class _Predictor(nn.Module):
    """fc1 -> bn1 -> ReLU -> fc2; ``bn2`` exists but is unused."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(128, 128)
        self.bn1 = nn.BatchNorm1d(128)
        self.bn2 = nn.BatchNorm1d(128)
        self.fc2 = nn.Linear(128, 128)


class _PerStage(nn.Module):
    """``MLPs.{0..3}``: one module per backbone stage."""

    def __init__(self, modules: List[nn.Module]) -> None:
        super().__init__()
        self.MLPs = nn.ModuleList(modules)


class OfficialRefineNetBYOL(OfficialRefineNet):
    """The official ``RefineNet_BYOL`` layout (1520 state_dict entries).

    Keys in the official order: ``resnet``, ``encoder_k`` (a copy of the
    backbone), ``head_q`` / ``head_k`` (projectors for l1..l4), ``pred``
    (predictors), then the decoder and ``clf_conv``. The segmentation
    logits come out of the same decoder as the plain model.
    """

    def _add_training_branches(self) -> None:
        # the momentum backbone: other values than `resnet` after training
        self.encoder_k = _Trunk(self.depth)
        widths = (256, 512, 1024, 2048)
        self.head_q = _PerStage([_Projector(c) for c in widths])
        self.head_k = _PerStage([_Projector(c) for c in widths])
        self.pred = _PerStage([_Predictor() for _ in widths])
