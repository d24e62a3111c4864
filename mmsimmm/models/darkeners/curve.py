# Copyright (c) mmsimmm contributors. All rights reserved.
"""The pixel-wise mapping of the darkening module."""
import torch
from torch import Tensor


def apply_curve(image: Tensor,
                curve_map: Tensor,
                down_scale_map: Tensor,
                rounds: int = 8) -> Tensor:
    """Apply the down-scaled, iterated quadratic curve.

    ``y = x * S``; ``rounds`` times ``y = y + A * (y^2 - y)``;
    ``out = y / S``. The output is not clamped. Without autograd the loop
    runs in place in two buffers, with the same operations in the same
    order (bit-identical results).

    Args:
        image (Tensor): Images ``x`` in [0, 1].
        curve_map (Tensor): Curve map ``A``, broadcastable to ``image``.
        down_scale_map (Tensor): Down-scale map ``S``, broadcastable to
            ``image``.
        rounds (int): Number of curve iterations. Defaults to 8.

    Returns:
        Tensor: The mapped images.
    """
    if int(rounds) != rounds or rounds < 0:
        raise ValueError(f'rounds must be a non-negative integer, '
                         f'got {rounds!r}')
    y = image * down_scale_map
    if torch.is_grad_enabled() and any(
            t.requires_grad for t in (image, curve_map, down_scale_map)):
        for _ in range(rounds):
            y = y + curve_map * (y * y - y)
        return y / down_scale_map
    step = torch.empty_like(y)
    for _ in range(rounds):
        torch.mul(y, y, out=step)
        y.add_(step.sub_(y).mul_(curve_map))
    return y.div_(down_scale_map)
