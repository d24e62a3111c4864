# Copyright (c) mmsimmm contributors. All rights reserved.
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.dist import get_dist_info

from mmsimmm.registry import MODELS

from ..losses.contrastive_loss import NEGATIVE, POSITIVE
from .simminmax import SimMinMax, _device_of


@MODELS.register_module()
class SimMinMaxRetrieval(SimMinMax):
    """SimMinMax for place recognition (a ``mmsimmm.GeMRetriever``).

    Training batches are tuples (query, positive, negatives) of images of
    any size. The darkening stage darkens a stack of fixed-size crops of
    the queries and positives (:meth:`darken_stage_images`); in the
    adaptation stage the darkened query is inserted into its tuple as one
    more positive, so the contrastive loss itself maximises the day/dark
    similarity (``adapt_head`` must be None and batches have one view).

    Args:
        darken_short_side (int): Shorter side the darkening-stage images
            are resized to. Defaults to 256 (official VPR darkening).
        darken_crop_size (int): Side of their random square crop.
            Defaults to 224.
        **kwargs: The arguments of :class:`SimMinMax`.
    """

    def __init__(self,
                 *args,
                 darken_short_side: int = 256,
                 darken_crop_size: int = 224,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.adapt_head is not None:
            raise ValueError('SimMinMaxRetrieval trains the similarity with '
                             'the contrastive loss; set adapt_head=None')
        if not hasattr(self.task_model, 'split_tuples'):
            raise ValueError(
                'SimMinMaxRetrieval needs a retrieval task model with '
                f'split_tuples/tuple_loss (mmsimmm.GeMRetriever), got '
                f'{type(self.task_model).__name__}')
        if not 0 < darken_crop_size <= darken_short_side:
            raise ValueError(
                f'darken_crop_size ({darken_crop_size}) must be in (0, '
                f'darken_short_side ({darken_short_side})]')
        self.darken_short_side = darken_short_side
        self.darken_crop_size = darken_crop_size

    def darken_stage_images(
            self,
            inputs: Sequence[Sequence[torch.Tensor]],
            data_samples: Sequence,
            generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Stack the tuples' non-negative images for the darkening stage.

        Each query and positive (negatives are mined to resemble the query)
        is resized to shorter side ``darken_short_side`` (bilinear,
        antialiased) and randomly cropped to a ``darken_crop_size`` square,
        like the official ``Resize(256) + RandomCrop(224)``. Resizing and
        cropping commute with the normalisation. The crop offsets are drawn
        for the tuples of all ranks on the CPU stream ``'darken_crops'`` and
        each rank keeps its own (see ``ExposureSampler``).

        Args:
            inputs: Position-major normalised images.
            data_samples (Sequence): With ``tuple_labels``.
            generator (torch.Generator, optional): CPU generator of the
                offsets. Defaults to None (the ``'darken_crops'`` stream).

        Returns:
            Tensor: Normalised crops (N, 3, C, C), tuple by tuple.
        """
        short_side, crop_size = self.darken_short_side, self.darken_crop_size
        tuples, labels = self.task_model.split_tuples(inputs, data_samples)
        world_size = get_dist_info()[1]
        tuple_size = max(len(images) for images in tuples)
        if generator is None:
            generator = self.exposure.generator(
                torch.device('cpu'), 'darken_crops')
        # relative offsets in [0, 1) of (top, left), per image of a tuple
        offsets = self.exposure.rank_share(
            torch.rand((len(tuples) * world_size, tuple_size, 2),
                       generator=generator))
        crops = []
        for images, lab, tuple_offsets in zip(tuples, labels, offsets):
            for img, label, offset in zip(images, lab, tuple_offsets):
                if label == NEGATIVE:
                    continue
                height, width = img.shape[-2:]
                scale = short_side / min(height, width)
                size = (max(short_side, int(height * scale)),
                        max(short_side, int(width * scale)))
                img = F.interpolate(
                    img[None].float(),
                    size=size,
                    mode='bilinear',
                    align_corners=False,
                    antialias=True)[0]
                top, left = (min(int(u * (extent - crop_size + 1)),
                                 extent - crop_size)
                             for u, extent in zip(offset.tolist(), size))
                crops.append(img[:, top:top + crop_size,
                                 left:left + crop_size])
        return torch.stack(crops)

    def adapt_loss(self,
                   inputs: Sequence[Sequence[torch.Tensor]],
                   data_samples: Optional[list],
                   second_inputs: Optional[torch.Tensor] = None
                   ) -> Dict[str, torch.Tensor]:
        """Contrastive loss with each tuple's darkened query as an extra
        positive: (q, p, n1..nN) -> (q, D(q), p, n1..nN), labels (-1, 1, 1,
        0 x N); D is frozen, the retriever gets gradients through D(q)."""
        if second_inputs is not None:
            raise ValueError('SimMinMaxRetrieval darkens each tuple\'s query;'
                             ' a two-view batch (second_inputs) is not '
                             'supported')
        generator = self.exposure.generator(_device_of(inputs),
                                            'darken_levels')
        tuples, labels = self.task_model.split_tuples(inputs, data_samples)
        for images, lab in zip(tuples, labels):
            query_pos = lab.index(-1)
            images.insert(query_pos + 1,
                          self.darken_batch(images[query_pos][None],
                                            generator)[0])
            lab.insert(query_pos + 1, POSITIVE)
        losses: Dict[str, List[torch.Tensor]] = self.task_model.tuple_loss(
            tuples, labels)
        return {f'task.{key}': value for key, value in losses.items()}
