# Copyright (c) mmsimmm contributors. All rights reserved.
"""Light-weight RefineNet decoder as an mmseg decode head.

Written from the layer and data-flow description of the official
Similarity Min-Max segmentation model (RCU and chained residual pooling
blocks on a ResNet); no code of any RefineNet implementation is used.
"""
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor

from mmsimmm.registry import MODELS


def conv3x3(in_channels: int,
            out_channels: int,
            bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with stride 1 and padding 1.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        bias (bool): Whether the conv has a bias. Defaults to False.
    """
    return nn.Conv2d(
        in_channels, out_channels, kernel_size=3, padding=1, bias=bias)


class ResidualConvUnit(nn.Module):
    """Residual conv unit: ReLU, conv (bias), ReLU, conv (no bias), + input.

    The first ReLU is not in place, so the residual is the un-rectified
    input.

    Args:
        channels (int): Input and output channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels, bias=True)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        """Forward function."""
        out = self.conv1(F.relu(x))
        out = self.conv2(F.relu(out))
        return out + x


class ChainedResidualPooling(nn.Module):
    """Chained residual pooling without activations.

    Each stage max-pools the previous stage's output (the input for the
    first stage), convolves it and adds it to a running sum that starts as
    the input.

    Args:
        channels (int): Input and output channels.
        num_stages (int): Number of pool + conv stages. Defaults to 4.
        pool_size (int): Max-pool kernel size (stride 1, same padding).
            Defaults to 5.
    """

    def __init__(self,
                 channels: int,
                 num_stages: int = 4,
                 pool_size: int = 5) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(pool_size, stride=1, padding=pool_size // 2)
        self.convs = nn.ModuleList(
            [conv3x3(channels, channels) for _ in range(num_stages)])

    def forward(self, x: Tensor) -> Tensor:
        """Forward function."""
        out = branch = x
        for conv in self.convs:
            branch = conv(self.pool(branch))
            out = out + branch
        return out


class RefineBlock(nn.Module):
    """One refinement stage of RefineNet for one backbone level.

    in_conv -> adapt units -> [adapt_conv -> + deeper stage] -> ReLU ->
    chained residual pooling -> out units -> [out_conv].

    Args:
        in_channels (int): Channels of the backbone feature.
        channels (int): Working width of this stage.
        out_channels (int, optional): Output width of ``out_conv``; None
            (the shallowest stage) means no ``out_conv``.
        fuse (bool): Whether a deeper stage's output is added; it adds
            ``adapt_conv`` before the sum. Defaults to True.
        num_adapt_units (int): Residual conv units after ``in_conv``.
            Defaults to 2.
        num_out_units (int): Residual conv units after the pooling.
            Defaults to 3.
        num_pool_stages (int): Stages of the chained residual pooling.
            Defaults to 4.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 out_channels: Optional[int],
                 fuse: bool = True,
                 num_adapt_units: int = 2,
                 num_out_units: int = 3,
                 num_pool_stages: int = 4) -> None:
        super().__init__()
        self.in_conv = conv3x3(in_channels, channels)
        self.adapt_units = nn.Sequential(
            *[ResidualConvUnit(channels) for _ in range(num_adapt_units)])
        self.adapt_conv = conv3x3(channels, channels) if fuse else None
        self.crp = ChainedResidualPooling(channels, num_pool_stages)
        self.out_units = nn.Sequential(
            *[ResidualConvUnit(channels) for _ in range(num_out_units)])
        self.out_conv = (
            conv3x3(channels, out_channels)
            if out_channels is not None else None)

    def forward(self, x: Tensor, deeper: Optional[Tensor] = None) -> Tensor:
        """Refine ``x``, adding ``deeper`` (already at ``x``'s size)."""
        x = self.adapt_units(self.in_conv(x))
        if self.adapt_conv is not None:
            x = self.adapt_conv(x)
        if deeper is not None:
            if self.adapt_conv is None:
                raise ValueError('This RefineBlock was built with '
                                 'fuse=False and takes no deeper input.')
            x = x + deeper
        x = self.out_units(self.crp(F.relu(x)))
        if self.out_conv is not None:
            x = self.out_conv(x)
        return x


@MODELS.register_module()
class RefineNetHead(BaseDecodeHead):
    """Light-weight RefineNet decoder (the ZSDA / CIConv segmentation head).

    Stages run from the deepest backbone level to the shallowest. Each
    stage's output is upsampled (bilinear, ``align_corners``) to the next
    level's size and added inside the next stage. The stride-4 result is
    upsampled ``upsample_factor`` times, passed through dropout and
    classified by a 3x3 conv with bias (``conv_seg``), so the logits come
    out at input resolution. Dropout (element-wise, one shared module) is
    also applied to the backbone features listed in
    ``feature_dropout_index`` before their stage.

    ``BaseDecodeHead``'s 1x1 ``conv_seg`` and ``Dropout2d`` are replaced by
    the 3x3 classifier and ``nn.Dropout``; ``loss_by_feat`` and
    ``predict_by_feat`` are inherited unchanged (their resize is then an
    identity for inputs divisible by 4).

    Paper: `Light-Weight RefineNet for Real-Time Semantic Segmentation
    <https://arxiv.org/abs/1810.03272>`_, as used in `Similarity Min-Max
    <https://arxiv.org/abs/2307.08779>`_.

    Args:
        in_channels (Sequence[int]): Channels of the selected backbone
            levels, shallowest first. Defaults to (256, 512, 1024, 2048).
        channels (int): Width of the final (shallowest) stage, input of
            ``conv_seg``. Must equal ``stage_channels[0]``. Defaults to 256.
        stage_channels (Sequence[int]): Width of each stage, ordered like
            ``in_channels``. Defaults to (256, 256, 256, 512).
        num_classes (int): Number of classes. Defaults to 19.
        in_index (Sequence[int]): Backbone outputs to use.
            Defaults to (0, 1, 2, 3).
        feature_dropout_index (Sequence[int]): Positions in ``in_channels``
            whose features get dropout before their stage.
            Defaults to (2, 3).
        upsample_factor (int): Upsampling of the stride-4 map before the
            classifier. Defaults to 4.
        dropout_ratio (float): Dropout probability. Defaults to 0.5.
        align_corners (bool): ``align_corners`` of every upsampling.
            Defaults to True.
        **kwargs: Other arguments of ``BaseDecodeHead`` (e.g.
            ``loss_decode``, ``ignore_index``, ``init_cfg``).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 channels: int = 256,
                 stage_channels: Sequence[int] = (256, 256, 256, 512),
                 num_classes: int = 19,
                 in_index: Sequence[int] = (0, 1, 2, 3),
                 feature_dropout_index: Sequence[int] = (2, 3),
                 upsample_factor: int = 4,
                 dropout_ratio: float = 0.5,
                 align_corners: bool = True,
                 **kwargs) -> None:
        if 'input_transform' in kwargs:
            raise ValueError('RefineNetHead always uses '
                             "input_transform='multiple_select'.")
        super().__init__(
            in_channels=tuple(in_channels),
            channels=channels,
            num_classes=num_classes,
            in_index=tuple(in_index),
            input_transform='multiple_select',
            dropout_ratio=dropout_ratio,
            align_corners=align_corners,
            **kwargs)
        num_levels = len(self.in_channels)
        if len(stage_channels) != num_levels:
            raise ValueError(
                f'stage_channels {tuple(stage_channels)} needs one width '
                f'per entry of in_channels {tuple(self.in_channels)}.')
        if stage_channels[0] != channels:
            raise ValueError(
                f'stage_channels[0]={stage_channels[0]} must equal '
                f'channels={channels} (the input of conv_seg).')
        bad = [i for i in feature_dropout_index if not 0 <= i < num_levels]
        if bad:
            raise ValueError(f'feature_dropout_index {bad} is outside '
                             f'0..{num_levels - 1}.')
        self.stage_channels = tuple(stage_channels)
        self.feature_dropout_index = tuple(feature_dropout_index)
        self.upsample_factor = upsample_factor
        self.refine_blocks = nn.ModuleList([
            RefineBlock(
                self.in_channels[i],
                stage_channels[i],
                out_channels=stage_channels[i - 1] if i > 0 else None,
                fuse=i < num_levels - 1) for i in range(num_levels)
        ])
        # The official head: element-wise dropout and a 3x3 classifier
        # with bias, applied at full resolution.
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else None
        self.conv_seg = nn.Conv2d(
            channels, self.out_channels, kernel_size=3, padding=1)

    def _upsample(self, x: Tensor, size: Tuple[int, int]) -> Tensor:
        return F.interpolate(
            x, size=size, mode='bilinear', align_corners=self.align_corners)

    def _forward_feature(self, inputs: List[Tensor]) -> Tensor:
        """Run the refinement stages.

        Args:
            inputs (list[Tensor]): Multi-level backbone features.

        Returns:
            Tensor: The refined feature of the shallowest level
            (``channels`` wide).
        """
        feats = self._transform_inputs(inputs)
        x = None
        for i in reversed(range(len(feats))):
            feat = feats[i]
            if self.dropout is not None and i in self.feature_dropout_index:
                feat = self.dropout(feat)
            if x is not None:
                x = self._upsample(x, feat.shape[2:])
            x = self.refine_blocks[i](feat, x)
        return x

    def cls_seg(self, feat: Tensor) -> Tensor:
        """Upsample, apply dropout and classify each pixel."""
        height, width = feat.shape[2:]
        feat = self._upsample(
            feat,
            (height * self.upsample_factor, width * self.upsample_factor))
        if self.dropout is not None:
            feat = self.dropout(feat)
        return self.conv_seg(feat)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Forward function: logits at ``upsample_factor`` x the size of the
        shallowest selected feature."""
        return self.cls_seg(self._forward_feature(inputs))
