# Copyright (c) mmsimmm contributors. All rights reserved.
import math
from functools import partial
from typing import Callable, Iterator, List, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmsimmm.registry import MODELS

from .curve import apply_curve
from .exposure import check_encode_dim, encode_exposure

ExposureType = Union[float, Tensor]

# conv5..conv7 read the channel concatenation of two earlier outputs:
# conv{i} <- concat[x{a}, x{b}]
SKIP_INPUTS = ((5, 3, 4), (6, 2, 5), (7, 1, 6))
NUM_CONVS = 8
# The longest path has 8 3x3 convolutions, so a tile whose border is 8
# pixels away from the part it keeps computes that part exactly.
TILE_HALO = NUM_CONVS
_DIRECT_ONEDNN = (hasattr(torch, 'mkldnn_convolution')
                  and torch.backends.mkldnn.is_available())


def pointwise_conv(x: Tensor,
                   weight: Tensor,
                   bias: Optional[Tensor] = None,
                   inference: bool = False) -> Tensor:
    """1x1 convolution; calls oneDNN directly for CPU inference.

    PyTorch routes single-threaded CPU 1x1 convs of batches below 16
    through a slow fallback that makes NCHW copies of channels_last
    inputs; without autograd, float32 channels_last CPU inputs go straight
    to oneDNN (same kernel as the multi-threaded case).

    Args:
        x (Tensor): Input ``(N, C, H, W)``.
        weight (Tensor): Conv weight ``(C_out, C, 1, 1)``.
        bias (Tensor, optional): Conv bias. Defaults to None.
        inference (bool): No autograd is recorded. Defaults to False.

    Returns:
        Tensor: ``(N, C_out, H, W)``.
    """
    if (inference and _DIRECT_ONEDNN and x.device.type == 'cpu'
            and x.dtype == weight.dtype == torch.float32
            and x.is_contiguous(memory_format=torch.channels_last)):
        return torch.mkldnn_convolution(x, weight, bias, (0, 0), (1, 1),
                                        (1, 1), 1)
    return F.conv2d(x, weight, bias)


class DepthwiseSeparableConv(nn.Module):
    """Depthwise 3x3 conv followed by a pointwise 1x1 conv, both biased.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, padding=1, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor, inference: bool = False) -> Tensor:
        """Apply the block; ``inference``: no autograd is recorded."""
        return pointwise_conv(
            self.depthwise(x), self.pointwise.weight, self.pointwise.bias,
            inference)

    def forward_concat(self,
                       first: Tensor,
                       second: Tensor,
                       inference: bool = False) -> Tensor:
        """``forward(concat[first, second])`` without the concatenation.

        The depthwise conv acts per channel and the pointwise conv is
        linear, so both split over the two channel groups.

        Args:
            first (Tensor): The leading channels of the concatenation.
            second (Tensor): The trailing channels.
            inference (bool): No autograd is recorded (the halves are
                summed in place). Defaults to False.
        """
        split = first.shape[1]
        dw_weight, dw_bias = self.depthwise.weight, self.depthwise.bias
        pw_weight = self.pointwise.weight
        halves = []
        for x, part, bias in ((first, slice(None, split),
                               self.pointwise.bias),
                              (second, slice(split, None), None)):
            depthwise = F.conv2d(
                x, dw_weight[part], dw_bias[part], padding=1,
                groups=x.shape[1])
            halves.append(
                pointwise_conv(depthwise, pw_weight[:, part], bias,
                               inference))
        if inference:
            return halves[0].add_(halves[1])
        return halves[0] + halves[1]


@MODELS.register_module()
class DarkeningModule(BaseModule):
    """The darkening module D of Similarity Min-Max (official "v2" net).

    A Zero-DCE++ style network of depthwise-separable convolutions
    predicts a curve map ``A = tanh(.)`` and a down-scale map
    ``S = s0 + (1 - s0) sigmoid(.)`` from the image and an exposure map;
    the image is darkened pixel-wise by ``y = x S``, ``curve_rounds`` times
    ``y = y + A (y^2 - y)``, ``out = y / S`` (not clamped). See
    `Similarity Min-Max <https://arxiv.org/abs/2307.08779>`_.

    Layout (``DSConv`` = depthwise 3x3 + pointwise 1x1, no norm)::

        x0 = relu(conv0([x, e]));  x1..x4 = relu(conv1..4(previous))
        x5 = relu(conv5([x3, x4])); x6 = relu(conv6([x2, x5]))
        x7 = conv7([x1, x6]);       A, S from x7[:, :3], x7[:, 3:6]

    Without autograd the network runs in ``channels_last`` with in-place
    activations and, on the CPU, on overlapping tiles that stay in cache;
    the outputs equal those of the plain layout up to float rounding. When
    training with ``tiled_training``, the forward pass is that fast path
    and the backward pass recomputes and back-propagates one tile at a
    time (tile-wise gradient checkpointing): exact gradients, activations
    of one tile instead of the whole batch, and about 1.7x faster on CPU.

    Args:
        num_features (int): Channels of the hidden layers. Defaults to 64.
        encode_dim (int): Exposure input channels: 1 for the raw level,
            an even number for the sinusoidal code. Defaults to 1.
        curve_rounds (int): Curve iterations. Defaults to 8.
        down_scale_floor (float): Lower bound ``s0`` of the down-scale map.
            Defaults to 0.95.
        map_downsample (int): 1, 2 or 4. With ``k > 1`` the maps are
            predicted from the bilinearly ``k``-times down-sampled image
            and exposure, and both are bilinearly up-sampled to full size
            (Zero-DCE++ style; faster, not the official setting). Defaults
            to 1.
        tiled_training (bool, optional): Train with the tile-wise
            recomputing backward pass described above. None: on CPU
            inputs only (on GPUs the plain autograd path is faster but
            stores every activation). Defaults to None.
        compile (bool): Run the CPU inference tiles (the adaptation
            stage's darkening, and the forward pass of ``tiled_training``)
            through ``torch.compile`` (Inductor fuses the activations and
            sums around the oneDNN convolutions). The first call compiles
            (about a minute per distinct tile shape, at most two for one
            input size); outputs equal the eager ones up to float
            rounding. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None (PyTorch's default Conv2d init).
    """

    #: Pixels per CPU inference tile (without the halo); None: 2^14 for
    #: one intra-op thread (tiles stay in L2), else 2^16 (fewer, larger
    #: ops: each one synchronises the threads).
    tile_pixels: Optional[int] = None
    #: Widest CPU inference tile (without the halo).
    max_tile_width: int = 256
    #: Pixels per tile of the tiled backward pass (without the halo).
    train_tile_pixels: int = 1 << 14
    #: Widest tile of the tiled backward pass (without the halo).
    train_max_tile_width: int = 128
    #: The tiled backward pass of float32 CPU training calls the gradient
    #: kernels directly (:func:`_trunk_backward`) instead of autograd.
    direct_backward: bool = True

    def __init__(self,
                 num_features: int = 64,
                 encode_dim: int = 1,
                 curve_rounds: int = 8,
                 down_scale_floor: float = 0.95,
                 map_downsample: int = 1,
                 tiled_training: Optional[bool] = None,
                 compile: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_encode_dim(encode_dim)
        if int(num_features) != num_features or num_features < 1:
            raise ValueError(f'num_features must be a positive integer, '
                             f'got {num_features!r}')
        if int(curve_rounds) != curve_rounds or curve_rounds < 0:
            raise ValueError(f'curve_rounds must be a non-negative integer, '
                             f'got {curve_rounds!r}')
        if not 0 < down_scale_floor <= 1:
            raise ValueError(f'down_scale_floor must be in (0, 1], '
                             f'got {down_scale_floor!r}')
        if map_downsample not in (1, 2, 4):
            raise ValueError(f'map_downsample must be 1, 2 or 4, '
                             f'got {map_downsample!r}')
        self.num_features = int(num_features)
        self.curve_rounds = int(curve_rounds)
        self.down_scale_floor = float(down_scale_floor)
        self.map_downsample = map_downsample
        self.tiled_training = tiled_training
        if not isinstance(compile, bool):
            raise ValueError(f'compile must be a bool, got {compile!r}')
        self.compile = compile
        self._compiled_trunk = None
        # buffers of the official network (its checkpoints carry them)
        self.register_buffer('down_scale', torch.tensor(down_scale_floor))
        self.register_buffer('curve_round', torch.tensor(self.curve_rounds))
        self.register_buffer('encode_dim', torch.tensor(encode_dim))

        channels = [3 + encode_dim] + [num_features] * 4
        for i in range(5):
            self.add_module(f'conv{i}',
                            DepthwiseSeparableConv(channels[i], num_features))
        for i, *_ in SKIP_INPUTS:
            out = 6 if i == NUM_CONVS - 1 else num_features
            self.add_module(f'conv{i}',
                            DepthwiseSeparableConv(2 * num_features, out))

    @property
    def exposure_channels(self) -> int:
        """Number of exposure channels at the network input."""
        return self.conv0.depthwise.in_channels - 3

    def forward(self,
                img: Tensor,
                exposure: ExposureType,
                return_maps: bool = False
                ) -> Union[Tensor, Tuple[Tensor, Tensor, Tensor]]:
        """Darken images or video clips.

        Args:
            img (Tensor): Values in [0, 1]: images ``(N, 3, H, W)``, clips
                ``(N, 3, T, H, W)`` or ``(N, K, 3, T, H, W)``.
            exposure (float | Tensor): One level for all, levels shaped
                like the batch dims (``(N,)``; ``(N,)`` or ``(N, K)`` for
                6D, one per clip), or a map ``batch dims + (1, H, W)``
                (constant over the frames of a clip).
            return_maps (bool): Also return the curve and down-scale maps.
                Defaults to False.

        Returns:
            Tensor | Tuple[Tensor, Tensor, Tensor]: The darkened input, or
            ``(darkened, curve_map, down_scale_map)``; all in the layout
            and dtype of ``img``.
        """
        frames, frame_exposure, restore = _to_frames(img, exposure)
        curve_map, down_scale_map = self.predict_maps(frames, frame_exposure)
        darkened = apply_curve(frames, curve_map, down_scale_map,
                               self.curve_rounds)
        if return_maps:
            return (restore(darkened), restore(curve_map),
                    restore(down_scale_map))
        return restore(darkened)

    def predict_maps(self, frames: Tensor,
                     exposure: Tensor) -> Tuple[Tensor, Tensor]:
        """Predict the curve and down-scale maps of frames.

        Args:
            frames (Tensor): Images ``(B, 3, H, W)``.
            exposure (Tensor): Levels ``(B,)`` or a map ``(B, 1, H, W)``.

        Returns:
            Tuple[Tensor, Tensor]: ``A`` and ``S``, each ``(B, 3, H, W)``.
        """
        param = self.conv0.pointwise.weight
        needs_grad = self._needs_grad(frames, exposure)
        height, width = frames.shape[-2:]
        x = frames.to(param.dtype)
        exposure = exposure.to(param.dtype)
        if self.map_downsample > 1:
            size = (max(1, height // self.map_downsample),
                    max(1, width // self.map_downsample))
            x = F.interpolate(
                x, size=size, mode='bilinear', align_corners=False)
            if exposure.dim() == 4:
                exposure = F.interpolate(
                    exposure, size=size, mode='bilinear', align_corners=False)
        net_input = self._net_input(x, exposure)
        if needs_grad:
            tiled = self.tiled_training
            if tiled is None:
                tiled = net_input.device.type == 'cpu'
            if tiled:
                x7 = _TiledTrunk.apply(self, net_input, *self.parameters())
            else:
                x7 = self._trunk(net_input, inference=False)
            maps = torch.cat(
                [torch.tanh(x7[:, :3]),
                 self._down_scale(torch.sigmoid(x7[:, 3:]))], 1)
        else:
            if net_input.device.type == 'cpu':
                maps = self._trunk_tiled(net_input)
            else:
                maps = self._trunk(net_input, inference=True).contiguous()
            maps[:, :3].tanh_()
            self._down_scale(maps[:, 3:].sigmoid_(), inplace=True)
        if self.map_downsample > 1:
            maps = F.interpolate(
                maps, size=(height, width), mode='bilinear',
                align_corners=False)
        maps = maps.to(frames.dtype)
        return maps[:, :3], maps[:, 3:]

    def _needs_grad(self, *inputs: Tensor) -> bool:
        """Whether autograd records the forward pass."""
        return torch.is_grad_enabled() and (
            any(t.requires_grad for t in inputs)
            or any(p.requires_grad for p in self.parameters()))

    def _down_scale(self, gate: Tensor, inplace: bool = False) -> Tensor:
        floor = self.down_scale_floor
        if inplace:
            return gate.mul_(1 - floor).add_(floor)
        return gate * (1 - floor) + floor

    def _net_input(self, x: Tensor, exposure: Tensor) -> Tensor:
        """``concat[x, code(e)]`` in channels_last memory format."""
        batch, _, height, width = x.shape
        if exposure.dim() == 1:
            exposure = exposure.view(batch, 1, 1, 1)
        code = encode_exposure(exposure, self.exposure_channels)
        net_input = torch.cat([x, code.expand(-1, -1, height, width)], 1)
        return net_input.contiguous(memory_format=torch.channels_last)

    def _trunk(self, net_input: Tensor, inference: bool) -> Tensor:
        """conv0..conv7 on the network input; returns ``x7`` (pre-act).

        ``inference`` (no autograd recorded) allows in-place activations
        and sums and direct oneDNN calls.
        """
        relu = F.relu_ if inference else F.relu
        feats = [relu(self.conv0(net_input, inference))]
        for i in range(1, 5):
            feats.append(
                relu(getattr(self, f'conv{i}')(feats[-1], inference)))
        for i, first, second in SKIP_INPUTS:
            out = getattr(self, f'conv{i}').forward_concat(
                feats[first], feats[second], inference)
            feats.append(out if i == NUM_CONVS - 1 else relu(out))
        return feats[-1]

    @torch.no_grad()
    def _trunk_tiled(self, net_input: Tensor) -> Tensor:
        """:meth:`_trunk` on overlapping tiles (CPU inference).

        Tiles of about :attr:`tile_pixels` pixels (parts of one image, or
        several whole small images) keep every activation in cache and
        spare the allocator page faults on large buffers; each tile is
        padded by :data:`TILE_HALO` pixels of context, so the kept part is
        exact.

        Returns:
            Tensor: ``x7`` as a contiguous ``(B, 6, H, W)`` tensor.
        """
        out = net_input.new_empty((net_input.shape[0], 6) +
                                  net_input.shape[2:])
        tile_pixels = self.tile_pixels or (
            1 << 14 if torch.get_num_threads() == 1 else 1 << 16)
        trunk = self._inference_trunk()
        for tile in _tiles(net_input.shape, tile_pixels, self.max_tile_width):
            x7 = trunk(tile.read(net_input))
            out[tile.kept_out] = x7[tile.kept_in]
        return out

    def _inference_trunk(self) -> Callable[[Tensor], Tensor]:
        """The trunk of one inference tile: eager, or compiled once."""
        if not self.compile:
            return partial(self._trunk, inference=True)
        if self._compiled_trunk is None:
            # the out-of-place graph: Inductor does its own buffer reuse
            self._compiled_trunk = torch.compile(
                partial(self._trunk, inference=False))
        return self._compiled_trunk

    def __getstate__(self) -> dict:
        """Pickle/deepcopy without the compiled trunk (rebuilt lazily)."""
        state = super().__getstate__() if hasattr(
            super(), '__getstate__') else self.__dict__.copy()
        state = dict(state)
        state['_compiled_trunk'] = None
        return state

    def _load_from_state_dict(self, state_dict: dict, prefix: str,
                              local_metadata: dict, strict: bool,
                              missing_keys: List[str],
                              unexpected_keys: List[str],
                              error_msgs: List[str]) -> None:
        """Also report official buffers that disagree with the config."""
        expected = dict(
            down_scale=self.down_scale_floor,
            curve_round=self.curve_rounds,
            encode_dim=self.exposure_channels)
        for name, value in expected.items():
            stored = state_dict.get(prefix + name)
            if (isinstance(stored, Tensor) and stored.numel() == 1
                    and not math.isclose(float(stored), value, rel_tol=1e-6)):
                error_msgs.append(
                    f'{prefix + name} is {float(stored)} in the checkpoint '
                    f'but {value} in this DarkeningModule; build it with '
                    'the matching config')
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)


def _even_spans(length: int, max_span: int) -> List[Tuple[int, int]]:
    """Split ``range(length)`` into near-equal ``(start, size)`` spans."""
    count = math.ceil(length / max(1, max_span))
    size = math.ceil(length / count)
    return [(start, min(size, length - start))
            for start in range(0, length, size)]


class _Tile(NamedTuple):
    """One tile: the padded input window and the part of it that is kept."""

    window: Tuple[slice, ...]
    kept_in: Tuple[slice, ...]
    kept_out: Tuple[slice, ...]

    def read(self, tensor: Tensor) -> Tensor:
        """The window of ``tensor`` as a ``channels_last`` tensor."""
        return tensor[self.window].contiguous(
            memory_format=torch.channels_last)


def _tiles(shape: torch.Size, tile_pixels: int,
           max_width: int) -> Iterator[_Tile]:
    """Cover ``(B, C, H, W)`` with tiles of about ``tile_pixels`` pixels.

    A tile is part of one image or, for small images, several whole
    images; its window adds :data:`TILE_HALO` pixels of context on every
    side that has any, so the network computes the kept part exactly.
    """
    batch, _, height, width = shape
    col_spans = _even_spans(width, max_width)
    tile_height = max(TILE_HALO, tile_pixels // col_spans[0][1])
    row_spans = _even_spans(height, tile_height)
    per_tile = 1
    if len(row_spans) == len(col_spans) == 1:
        per_tile = max(1, tile_pixels // (height * width))
    every = slice(None)
    for n in range(0, batch, per_tile):
        samples = slice(n, n + per_tile)
        for top, rows in row_spans:
            for left, cols in col_spans:
                y0, x0 = max(0, top - TILE_HALO), max(0, left - TILE_HALO)
                y1 = min(height, top + rows + TILE_HALO)
                x1 = min(width, left + cols + TILE_HALO)
                yield _Tile(
                    window=(samples, every, slice(y0, y1), slice(x0, x1)),
                    kept_in=(every, every,
                             slice(top - y0, top - y0 + rows),
                             slice(left - x0, left - x0 + cols)),
                    kept_out=(samples, every, slice(top, top + rows),
                              slice(left, left + cols)))


class _TiledTrunk(torch.autograd.Function):
    """:meth:`DarkeningModule._trunk` with a tile-wise recomputing backward.

    The forward pass is the fast tiled inference path and keeps only the
    network input. The backward pass recomputes each tile with autograd
    and back-propagates the gradient of its kept part, so the activations
    of one tile stay in cache; parameter and input gradients are summed
    over the tiles (exact: the halo holds every pixel a kept output reads).
    """

    @staticmethod
    def forward(ctx, module: 'DarkeningModule', net_input: Tensor,
                *params: Tensor) -> Tensor:
        ctx.module = module
        device = net_input.device.type
        # the recomputation runs under the forward pass's autocast state
        ctx.autocast = dict(
            device_type=device,
            enabled=torch.is_autocast_enabled(device),
            dtype=torch.get_autocast_dtype(device))
        ctx.save_for_backward(net_input)
        return module._trunk_tiled(net_input)

    @staticmethod
    def backward(ctx, grad_x7: Tensor) -> tuple:
        net_input, = ctx.saved_tensors
        module = ctx.module
        wanted = ctx.needs_input_grad[2:]
        params = [p for p, want in zip(module.parameters(), wanted) if want]
        param_grads = [torch.zeros_like(p) for p in params]
        want_input = ctx.needs_input_grad[1]
        input_grad = torch.zeros_like(net_input) if want_input else None
        direct = (module.direct_backward and _DIRECT_ONEDNN
                  and not ctx.autocast['enabled']
                  and net_input.device.type == 'cpu'
                  and net_input.dtype == torch.float32
                  and all(p.dtype == torch.float32
                          for p in module.parameters()))
        slots = {id(p): i for i, p in enumerate(params)}
        for tile in _tiles(net_input.shape, module.train_tile_pixels,
                           module.train_max_tile_width):
            if direct:
                window = tile.read(net_input)
                grad_window = window.new_zeros(
                    (window.shape[0], 6) + window.shape[2:]).contiguous(
                        memory_format=torch.channels_last)
                grad_window[tile.kept_in] = grad_x7[tile.kept_out]
                grad_in = _trunk_backward(module, window, grad_window,
                                          want_input, slots, param_grads)
                if want_input:
                    input_grad[tile.window] += grad_in
                continue
            window = tile.read(net_input).detach().requires_grad_(want_input)
            with torch.enable_grad(), torch.autocast(**ctx.autocast):
                kept = module._trunk(window, inference=False)[tile.kept_in]
                grads = torch.autograd.grad(
                    kept, ([window] if want_input else []) + params,
                    grad_x7[tile.kept_out])
            if want_input:
                input_grad[tile.window] += grads[0]
                grads = grads[1:]
            for total, grad in zip(param_grads, grads):
                total += grad
        param_grads = iter(param_grads)
        return (None, input_grad) + tuple(
            next(param_grads) if want else None for want in wanted)



def _conv_transposed_1x1(grad: Tensor, weight: Tensor) -> Tensor:
    """Input gradient of a 1x1 conv: ``grad`` through ``weight^T``."""
    transposed = weight.flatten(1).t().contiguous()[..., None, None]
    return torch.mkldnn_convolution(grad, transposed, None, (0, 0), (1, 1),
                                    (1, 1), 1)


def _rows(x: Tensor) -> Tensor:
    """A channels_last ``(N, C, H, W)`` tensor as ``(N H W, C)`` rows."""
    return x.contiguous(memory_format=torch.channels_last).permute(
        0, 2, 3, 1).reshape(-1, x.shape[1])


def _trunk_backward(module: 'DarkeningModule', window: Tensor,
                    grad_x7: Tensor, want_input: bool, slots: dict,
                    param_grads: List[Tensor]) -> Optional[Tensor]:
    """Recompute one tile's trunk and back-propagate by hand (CPU fp32).

    The forward pass keeps every activation of the tile (oneDNN kernels,
    in-place activations); the backward pass calls the gradient kernels
    directly: for the 1x1 convs a 1x1 conv with the transposed weight and
    one matrix product, for the depthwise convs a conv with the flipped
    kernel and the weight-only conv backward. The same maths as autograd
    of :meth:`DarkeningModule._trunk`, without its ``slow_conv2d``
    fallback (batch-1 single-threaded 1x1 convs) and zero-filled buffers.
    Gradients are added to ``param_grads`` (the slots of the parameters
    that want one, keyed by ``id``).

    Returns:
        Tensor | None: The gradient of ``window`` if ``want_input``.
    """
    aten = torch.ops.aten
    # --- forward, keeping (block input(s), depthwise outputs, output)
    records = []
    feats = []
    with torch.no_grad():
        inputs = [window]
        for i in range(NUM_CONVS):
            block = getattr(module, f'conv{i}')
            if i >= 5:
                _, first, second = SKIP_INPUTS[i - 5]
                inputs = [feats[first], feats[second]]
            elif i > 0:
                inputs = [feats[-1]]
            dw_weight, dw_bias = block.depthwise.weight, block.depthwise.bias
            pw_weight, pw_bias = block.pointwise.weight, block.pointwise.bias
            start, parts, out = 0, [], None
            for x in inputs:
                part = slice(start, start + x.shape[1])
                start += x.shape[1]
                depthwise = torch.mkldnn_convolution(
                    x, dw_weight[part].contiguous(),
                    dw_bias[part].contiguous(), (1, 1), (1, 1), (1, 1),
                    x.shape[1])
                pointwise = torch.mkldnn_convolution(
                    depthwise, pw_weight[:, part].contiguous(),
                    pw_bias if out is None else None, (0, 0), (1, 1),
                    (1, 1), 1)
                out = pointwise if out is None else out.add_(pointwise)
                parts.append((x, part, depthwise))
            if i < NUM_CONVS - 1:
                out.relu_()
            feats.append(out)
            records.append(parts)
        # --- backward
        grads = [None] * NUM_CONVS
        grads[-1] = grad_x7
        grad_input = None

        def add_grad(param: Tensor, part, value: Tensor) -> None:
            slot = slots.get(id(param))
            if slot is not None:
                param_grads[slot][part] += value

        def accumulate(index: int, value: Tensor) -> None:
            if grads[index] is None:
                grads[index] = value
            else:
                grads[index].add_(value)

        for i in reversed(range(NUM_CONVS)):
            block = getattr(module, f'conv{i}')
            grad = grads[i]
            grads[i] = None
            if i < NUM_CONVS - 1:
                grad = aten.threshold_backward(grad, feats[i], 0)
            feats[i] = None
            dw_weight = block.depthwise.weight
            pw_weight = block.pointwise.weight
            add_grad(block.pointwise.bias, slice(None),
                     _rows(grad).sum(0))
            sources = ([None] if i == 0 else [i - 1]) if i < 5 else list(
                SKIP_INPUTS[i - 5][1:])
            for (x, part, depthwise), source in zip(records[i], sources):
                add_grad(pw_weight, (slice(None), part),
                         (_rows(grad).t() @ _rows(depthwise))[..., None,
                                                               None])
                grad_dw = _conv_transposed_1x1(
                    grad, pw_weight[:, part].contiguous())
                _, weight_grad, bias_grad = aten.convolution_backward(
                    grad_dw, x, dw_weight[part], [x.shape[1]], (1, 1),
                    (1, 1), (1, 1), False, (0, 0), x.shape[1],
                    [False, True, True])
                add_grad(dw_weight, part, weight_grad)
                add_grad(block.depthwise.bias, part, bias_grad)
                if source is None and not want_input:
                    continue
                grad_x = torch.mkldnn_convolution(
                    grad_dw,
                    dw_weight[part].flip(2, 3).contiguous(), None, (1, 1),
                    (1, 1), (1, 1), x.shape[1])
                if source is None:
                    grad_input = grad_x
                else:
                    accumulate(source, grad_x)
            records[i] = None
    return grad_input


def to_frames(x: Tensor) -> Tensor:
    """Images ``(N, C, H, W)`` or clips ``(..., C, T, H, W)`` as frames.

    Returns:
        Tensor: ``(B, C, H, W)``; clips in the order of their batch dims,
        then time.
    """
    if x.dim() == 4:
        return x
    clips = x.movedim(-3, -4)  # (..., T, C, H, W)
    return clips.reshape(-1, *clips.shape[-3:])


def _to_frames(img: Tensor, exposure: ExposureType
               ) -> Tuple[Tensor, Tensor, Callable[[Tensor], Tensor]]:
    """Flatten images/clips to frames with one exposure per frame.

    Returns:
        Tuple: frames ``(B, 3, H, W)``, the frame exposure (levels ``(B,)``
        or a map ``(B, 1, H, W)``) and a function restoring the input
        layout of a ``(B, C, H, W)`` tensor.
    """
    if not isinstance(img, Tensor) or img.dim() not in (4, 5, 6):
        shape = tuple(img.shape) if isinstance(img, Tensor) else type(img)
        raise ValueError('img must be (N, 3, H, W), (N, 3, T, H, W) or '
                         f'(N, K, 3, T, H, W), got {shape}')
    channel_dim = 1 if img.dim() < 6 else 2
    if img.shape[channel_dim] != 3:
        raise ValueError(f'img must have 3 (RGB) channels at dim '
                         f'{channel_dim}, got shape {tuple(img.shape)}')
    height, width = img.shape[-2:]
    batch_dims = tuple(img.shape[:channel_dim])
    frames_per_clip = 1 if img.dim() == 4 else img.shape[-3]
    levels = _exposure_levels(exposure, img, batch_dims)
    if levels.dim() <= len(batch_dims):  # levels
        levels = levels.expand(batch_dims).reshape(-1, 1)
        frame_exposure = levels.expand(-1, frames_per_clip).reshape(-1)
    else:  # maps (..., 1, H, W), constant over the frames of a clip
        maps = levels.expand(batch_dims + (1, height, width))
        maps = maps.reshape(-1, 1, 1, height, width)
        frame_exposure = maps.expand(-1, frames_per_clip, -1, -1,
                                     -1).reshape(-1, 1, height, width)
    if img.dim() == 4:
        return img, frame_exposure, lambda x: x
    clip_dims = img.shape[:-4] + (frames_per_clip, )

    def restore(x: Tensor) -> Tensor:
        return x.reshape(*clip_dims, *x.shape[1:]).movedim(-4, -3)

    return to_frames(img), frame_exposure, restore


def _exposure_levels(exposure: ExposureType, img: Tensor,
                     batch_dims: Tuple[int, ...]) -> Tensor:
    """Check ``exposure`` against the batch and return it as a tensor."""
    options = dict(device=img.device)
    if not isinstance(exposure, Tensor):
        if not isinstance(exposure, (int, float)):
            raise ValueError(f'exposure must be a float or a tensor, got '
                             f'{type(exposure).__name__}')
        return torch.full(batch_dims, float(exposure), **options)
    exposure = exposure.to(**options)
    if exposure.dim() == 0:
        return exposure.expand(batch_dims)
    map_dims = (1, ) + tuple(img.shape[-2:])
    accepted = [batch_dims, batch_dims + map_dims]
    if len(batch_dims) == 2:  # one level or map per sample, for all clips
        accepted += [batch_dims[:1], batch_dims[:1] + map_dims]
    shape = tuple(exposure.shape)
    if shape not in accepted:
        raise ValueError(
            f'exposure must have one of the shapes {accepted} for img of '
            f'shape {tuple(img.shape)}, got {shape}')
    if len(batch_dims) == 2 and shape in accepted[2:]:
        exposure = exposure.unsqueeze(1)
    return exposure
