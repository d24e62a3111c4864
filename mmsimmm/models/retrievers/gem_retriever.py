# Copyright (c) mmsimmm contributors. All rights reserved.
import math
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample
from torch.nn.modules.batchnorm import _BatchNorm

from mmsimmm.models.necks.gem_pooling import l2_normalize
from mmsimmm.registry import MODELS

from ..losses.contrastive_loss import check_tuple_labels
from ..utils.whitening import apply_whitening, load_whitening

ImageBatch = Union[torch.Tensor, Sequence[torch.Tensor]]


def apply_by_shape(images: Sequence[torch.Tensor],
                   fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Run ``fn`` on stacks of equally sized images, keep the input order.

    Args:
        images (Sequence[torch.Tensor]): Images (3, H, W) or (1, 3, H, W)
            of possibly different sizes.
        fn (Callable): Maps (n, 3, H, W) to (n, D).

    Returns:
        torch.Tensor: (len(images), D).
    """
    images = [x[0] if x.dim() == 4 and x.shape[0] == 1 else x
              for x in images]
    groups: Dict[tuple, List[int]] = {}
    for i, img in enumerate(images):
        if img.dim() != 3:
            raise ValueError('expected (3, H, W) images, got shape '
                             f'{tuple(img.shape)}')
        groups.setdefault(tuple(img.shape), []).append(i)
    outputs: List[Optional[torch.Tensor]] = [None] * len(images)
    for idxs in groups.values():
        out = fn(torch.stack([images[i] for i in idxs]))
        for i, row in zip(idxs, out):
            outputs[i] = row
    return torch.stack(outputs)


@MODELS.register_module()
class GeMRetriever(BaseModel):
    """Global-descriptor image retrieval: backbone -> GeM -> L2 norm.

    `Fine-tuning CNN Image Retrieval with No Human Annotation
    <https://arxiv.org/abs/1711.02512>`_, as used by the Similarity Min-Max
    place-recognition experiments. Training uses tuples (query, positive(s),
    hard negatives) and :class:`ContrastiveLoss`; testing returns (optionally
    multi-scale and post-whitened) descriptors for :class:`RetrievalMAP`.

    Modes of :meth:`forward`:

    * ``tensor``: single-scale descriptors (N, D) (:meth:`extract_feat`).
    * ``loss``: the contrastive loss summed over the batch's tuples.
      ``inputs`` is position-major, as ``pseudo_collate`` builds it from
      the tuple dataset: ``inputs[j][b]`` is image ``j`` of tuple ``b``, and
      ``data_samples[b].tuple_labels`` gives its labels.
    * ``predict``: descriptors over ``test_scales`` (then the learned
      whitening if any), stored as ``descriptor`` in each data sample.

    Images of equal size are stacked for one backbone call. With all
    BatchNorm layers frozen (the official recipe) this equals one call per
    image; with ``frozen_bn=False`` the batch statistics are per group of
    same-size images. The loss of a whole batch is one graph (official:
    one backward per tuple), which gives the same gradient with more
    memory.

    Args:
        backbone (dict): Backbone config, e.g.
            ``dict(type='mmpretrain.ResNet', depth=101)``.
        neck (dict): Pooling config. Defaults to ``mmsimmm.GeMPooling``.
        loss (dict): Loss config. Defaults to ``mmsimmm.ContrastiveLoss``.
        whitening (dict, optional): ``dict(in_features, out_features)`` of
            an end-to-end trained whitening ``nn.Linear`` (with bias) after
            the pooling, followed by L2 normalisation. Defaults to None.
        frozen_bn (bool): Keep every BatchNorm layer in eval mode while
            training (the official recipe). Defaults to True.
        test_scales (Sequence[float]): Image scales of :meth:`predict`.
            Defaults to (1.0, ).
        post_whitening (str, optional): A ``{'m', 'P'}`` file of learned
            whitening applied after the multi-scale descriptor in
            :meth:`predict`; read at the first test batch (so configs build
            without it). Defaults to None.
        post_whitening_dims (int, optional): Output dimensions kept after
            the learned whitening. Defaults to None (all).
        data_preprocessor (dict, optional): Defaults to
            ``mmsimmm.RetrievalDataPreprocessor`` (ImageNet mean/std).
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict = dict(type='mmsimmm.GeMPooling'),
                 loss: dict = dict(type='mmsimmm.ContrastiveLoss'),
                 whitening: Optional[dict] = None,
                 frozen_bn: bool = True,
                 test_scales: Sequence[float] = (1.0, ),
                 post_whitening: Optional[str] = None,
                 post_whitening_dims: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmsimmm.RetrievalDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.loss_module = MODELS.build(loss)
        self.whitening = None
        if whitening is not None:
            self.whitening = nn.Linear(
                whitening['in_features'], whitening['out_features'], bias=True)
        self.frozen_bn = frozen_bn
        if not test_scales or any(s <= 0 for s in test_scales):
            raise ValueError(
                f'test_scales must be positive, got {test_scales}')
        self.test_scales = tuple(float(s) for s in test_scales)
        self.post_whitening = post_whitening
        self.post_whitening_dims = post_whitening_dims
        self._lw: Optional[Dict[str, torch.Tensor]] = None

    # ------------------------------------------------------------ features
    def _descriptors(self, images: torch.Tensor) -> torch.Tensor:
        """Single-scale descriptors of a stacked batch (N, 3, H, W)."""
        feats = self.backbone(images)
        if isinstance(feats, (tuple, list)):
            feats = feats[-1]
        desc = self.neck(feats)
        if self.whitening is not None:
            desc = l2_normalize(self.whitening(desc))
        return desc

    def extract_feat(self, inputs: ImageBatch) -> torch.Tensor:
        """Single-scale descriptors of normalised images.

        Args:
            inputs (torch.Tensor | Sequence[torch.Tensor]): A stacked batch
                (N, 3, H, W) or a list of (3, H, W) images of any sizes.

        Returns:
            torch.Tensor: L2-normalised descriptors (N, D).
        """
        if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            return self._descriptors(inputs)
        return apply_by_shape(list(inputs), self._descriptors)

    @property
    def gem_p(self) -> float:
        """The learned GeM exponent (1.0 if the neck has none)."""
        p = getattr(self.neck, 'p', None)
        return 1.0 if p is None else float(p.detach().flatten()[0])

    def multiscale_descriptor(self,
                              images: torch.Tensor,
                              scales: Optional[Sequence[float]] = None,
                              p: Optional[float] = None) -> torch.Tensor:
        """Combine descriptors of rescaled copies of the images.

        Each scale uses bilinear resizing (``align_corners=False``). The
        descriptors ``v_s`` are combined as ``(mean_s v_s^p)^(1/p)`` and
        L2-normalised (the mean and the sum differ by a constant factor that
        the normalisation removes).

        Args:
            images (torch.Tensor): Normalised images (N, 3, H, W).
            scales (Sequence[float], optional): Defaults to
                ``self.test_scales``.
            p (float, optional): Power of the mean. Defaults to the learned
                GeM p when there is more than one scale and no whitening
                layer (whitened descriptors can be negative), else 1.

        Returns:
            torch.Tensor: Descriptors (N, D).
        """
        scales = self.test_scales if scales is None else tuple(scales)
        if p is None:
            use_gem_p = len(scales) > 1 and self.whitening is None
            p = self.gem_p if use_gem_p else 1.0
        total = 0.
        for scale in scales:
            x = images
            if not math.isclose(scale, 1.0):
                x = F.interpolate(
                    images,
                    scale_factor=scale,
                    mode='bilinear',
                    align_corners=False)
            total = total + self._descriptors(x).pow(p)
        return l2_normalize((total / len(scales)).pow(1. / p))

    def test_descriptors(self, inputs: ImageBatch) -> torch.Tensor:
        """Multi-scale descriptors followed by the learned whitening."""
        if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            inputs = list(inputs)
        desc = apply_by_shape(list(inputs), self.multiscale_descriptor)
        if self.post_whitening is not None:
            if self._lw is None:  # read on first use: configs build anywhere
                self._lw = load_whitening(self.post_whitening)
            if self._lw['P'].device != desc.device:
                self._lw = {k: v.to(desc.device) for k, v in self._lw.items()}
            desc = apply_whitening(desc, self._lw['m'], self._lw['P'],
                                   self.post_whitening_dims)
        return desc

    @torch.no_grad()
    def describe(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """Single-scale descriptors of raw (un-normalised) images.

        Used for hard-negative mining; the caller sets eval mode.

        Args:
            images (Sequence[torch.Tensor]): uint8 images (3, H, W) as the
                dataset pipeline gives them.

        Returns:
            torch.Tensor: Descriptors (N, D) on the model's device.
        """
        data = self.data_preprocessor(dict(inputs=list(images)), False)
        return self.extract_feat(data['inputs'])

    # ------------------------------------------------------------- modes
    def forward(self,
                inputs: ImageBatch,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """Dispatch to :meth:`extract_feat`, :meth:`loss` or :meth:`predict`.
        """
        if mode == 'tensor':
            return self.extract_feat(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def _split_tuples(self, inputs: Sequence[Sequence[torch.Tensor]],
                      data_samples: Sequence[DataSample]) -> tuple:
        """Regroup position-major ``inputs`` into per-tuple image lists."""
        if data_samples is None or not len(data_samples):
            raise ValueError('loss mode needs data_samples with tuple_labels')
        num = len(data_samples)
        if isinstance(inputs, torch.Tensor) or any(
                len(images) != num for images in inputs):
            raise ValueError(
                'loss inputs must be position-major lists: inputs[j][b] is '
                f'image j of tuple b, for {num} tuples')
        tuples, labels = [], []
        for b, sample in enumerate(data_samples):
            if 'tuple_labels' not in sample:
                raise KeyError(f'data_samples[{b}] has no tuple_labels')
            lab = [int(v) for v in sample.tuple_labels]
            check_tuple_labels(lab)
            if len(lab) != len(inputs):
                raise ValueError(f'data_samples[{b}].tuple_labels has '
                                 f'{len(lab)} labels for {len(inputs)} '
                                 'images')
            tuples.append([images[b] for images in inputs])
            labels.append(lab)
        return tuples, labels

    def split_tuples(self, inputs: Sequence[Sequence[torch.Tensor]],
                     data_samples: Sequence[DataSample]) -> tuple:
        """Regroup position-major ``inputs`` into per-tuple image lists.

        Args:
            inputs: Position-major normalised images (see class doc).
            data_samples (Sequence[DataSample]): With ``tuple_labels``.

        Returns:
            tuple: ``(tuples, labels)``, lists of image lists and label
            lists, one per tuple.
        """
        return self._split_tuples(inputs, data_samples)

    def tuple_loss(self, tuples: List[List[torch.Tensor]],
                   labels: List[List[int]]) -> Dict[str, torch.Tensor]:
        """Contrastive loss of tuples from :meth:`split_tuples`."""
        flat = [img for images in tuples for img in images]
        desc = apply_by_shape(flat, self._descriptors)
        per_tuple = torch.split(desc, [len(images) for images in tuples])
        return dict(loss_contrastive=self.loss_module(list(per_tuple), labels))

    def loss(self, inputs: Sequence[Sequence[torch.Tensor]],
             data_samples: Sequence[DataSample]) -> Dict[str, torch.Tensor]:
        """Contrastive loss summed over the batch's tuples.

        Args:
            inputs: Position-major normalised images (see class doc).
            data_samples (Sequence[DataSample]): With ``tuple_labels``.

        Returns:
            dict[str, torch.Tensor]: ``loss_contrastive``.
        """
        return self.tuple_loss(*self._split_tuples(inputs, data_samples))

    def predict(
            self,
            inputs: ImageBatch,
            data_samples: Optional[List[DataSample]] = None
    ) -> List[DataSample]:
        """Test descriptors, stored as ``descriptor`` in each data sample.

        Args:
            inputs (torch.Tensor | Sequence[torch.Tensor]): Normalised
                images, stacked or as a list of (3, H, W) tensors.
            data_samples (list[DataSample], optional): Defaults to None.

        Returns:
            list[DataSample]: One per image.
        """
        desc = self.test_descriptors(inputs)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(desc.shape[0])]
        for sample, vec in zip(data_samples, desc):
            sample.set_data(dict(descriptor=vec))
        return data_samples

    def train(self, mode: bool = True) -> 'GeMRetriever':
        """Set train mode; BatchNorm layers stay in eval if ``frozen_bn``."""
        super().train(mode)
        if mode and self.frozen_bn:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
