# Copyright (c) mmsimmm contributors. All rights reserved.
"""Tiny task models and in-memory datasets for tests and benchmarks.

Everything here runs on a CPU in milliseconds: ResNet-18 layouts with 8
base channels, a few classes, images of 32x32 and clips of 4x32x32.
"""
from typing import Optional

import torch
from torch.utils.data import Dataset

TINY_CHANNELS = [8, 16, 32, 64]  # ResNet-18 stages with base_channels=8
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]


def _task_model(model: str, scope: str, preprocessor: dict,
                **parts) -> dict:
    """A task model config whose preprocessor normalises with the
    ImageNet mean and std; ``parts`` are the backbone, heads etc."""
    return dict(
        type=model,
        _scope_=scope,
        data_preprocessor=dict(
            mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD),
            **preprocessor),
        **parts)


def tiny_classifier_cfg(num_classes: int = 4) -> dict:
    """An mmpretrain ``ImageClassifier``: ResNet-18 (8 base channels)."""
    return _task_model(
        'ImageClassifier',
        'mmpretrain',
        dict(
            type='ClsDataPreprocessor', to_rgb=True,
            num_classes=num_classes),
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=8,
            stem_channels=8,
            out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=num_classes,
            in_channels=TINY_CHANNELS[-1],
            loss=dict(type='CrossEntropyLoss')))


def tiny_segmentor_cfg(num_classes: int = 3) -> dict:
    """An mmseg ``EncoderDecoder``: ResNetV1c-18 (8 base channels) + FCN."""
    return _task_model(
        'EncoderDecoder',
        'mmseg',
        dict(
            type='SegDataPreProcessor',
            bgr_to_rgb=True,
            size_divisor=8,
            pad_val=0,
            seg_pad_val=255),
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            stem_channels=8,
            base_channels=8,
            out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 2, 4),
            strides=(1, 2, 1, 1),
            norm_cfg=dict(type='BN', requires_grad=True)),
        decode_head=dict(
            type='FCNHead',
            in_channels=TINY_CHANNELS[-1],
            in_index=3,
            channels=8,
            num_convs=1,
            num_classes=num_classes,
            norm_cfg=dict(type='BN', requires_grad=True),
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def tiny_recognizer_cfg(num_classes: int = 3) -> dict:
    """An mmaction2 ``Recognizer3D``: I3D-style ResNet3d-18 (8 channels)."""
    return _task_model(
        'Recognizer3D',
        'mmaction',
        dict(type='ActionDataPreprocessor', format_shape='NCTHW'),
        backbone=dict(
            type='ResNet3d',
            depth=18,
            pretrained=None,
            pretrained2d=False,
            base_channels=8,
            conv1_kernel=(3, 7, 7),
            inflate=((1, 1), (1, 0), (1, 0), (0, 1)),
            norm_eval=False),
        cls_head=dict(
            type='I3DHead',
            num_classes=num_classes,
            in_channels=TINY_CHANNELS[-1],
            dropout_ratio=0.0,
            average_clips='prob'))


def _label_sample(toolkit: str, label: int, size: tuple):
    if toolkit == 'mmpretrain':
        from mmpretrain.structures import DataSample
        return DataSample().set_gt_label(label)
    if toolkit == 'mmaction':
        from mmaction.structures import ActionDataSample
        return ActionDataSample().set_gt_label(label)
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = SegDataSample()
    seg = torch.full((1, *size), label, dtype=torch.long)
    seg[..., :2, :2] = 255  # ignored pixels
    sample.gt_sem_seg = PixelData(data=seg)
    sample.set_metainfo(
        dict(img_shape=size, ori_shape=size, pad_shape=size, img_path=''))
    return sample


class ToyTaskDataset(Dataset):
    """Random uint8 images or clips with labels, in a toolkit's batch format.

    Each item is ``dict(inputs=..., data_samples=...)`` as the toolkit's
    ``PackInputs`` would produce: (3, H, W) images for mmpretrain/mmseg and
    (1, 3, T, H, W) clips for mmaction2. Deterministic per index.

    Args:
        toolkit (str): ``'mmpretrain'``, ``'mmseg'`` or ``'mmaction'``.
        length (int): Number of items. Defaults to 16.
        size (tuple[int, int]): Image size (H, W). Defaults to (32, 32).
        num_classes (int): Number of classes. Defaults to 3.
        clip_len (int): Frames per clip (mmaction). Defaults to 4.
        seed (int): Base seed of the pixel values. Defaults to 0.
    """

    metainfo = dict(classes=('a', 'b', 'c', 'd'))

    def __init__(self,
                 toolkit: str,
                 length: int = 16,
                 size: tuple = (32, 32),
                 num_classes: int = 3,
                 clip_len: int = 4,
                 seed: int = 0) -> None:
        if toolkit not in ('mmpretrain', 'mmseg', 'mmaction'):
            raise ValueError(f'unknown toolkit {toolkit!r}')
        self.toolkit = toolkit
        self.length = length
        self.size = tuple(size)
        self.num_classes = num_classes
        self.clip_len = clip_len
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(self.seed * 7919 + index)
        label = index % self.num_classes
        shape = (3, *self.size)
        if self.toolkit == 'mmaction':
            shape = (1, 3, self.clip_len, *self.size)
        img = torch.randint(0, 256, shape, generator=generator,
                            dtype=torch.uint8)
        # a class-dependent brightness makes the toy task learnable
        img = (img.float() * (0.4 + 0.2 * label)).clamp(0, 255).byte()
        return dict(
            inputs=img,
            data_samples=_label_sample(self.toolkit, label, self.size))


def toy_runner_cfg(work_dir: str,
                   model: dict,
                   toolkit: str,
                   stages: Optional[list] = None,
                   batch_size: int = 4,
                   seed: int = 0,
                   loop_kwargs: Optional[dict] = None,
                   **dataset_kwargs) -> dict:
    """A complete SimMinMax Runner config over a ``ToyTaskDataset``."""
    stages = stages or [
        dict(name='darken', iters=2),
        dict(name='adapt', iters=2)
    ]
    return dict(
        work_dir=work_dir,
        default_scope=toolkit,
        model=model,
        train_dataloader=dict(
            dataset=ToyTaskDataset(toolkit, **dataset_kwargs),
            sampler=dict(type='DefaultSampler', shuffle=True, seed=seed),
            collate_fn=dict(type='pseudo_collate'),
            batch_size=batch_size,
            num_workers=0),
        optim_wrapper=dict(
            constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
            darkener=dict(
                optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4),
                clip_grad=dict(max_norm=0.1)),
            task=dict(
                optimizer=dict(type='SGD', lr=0.01, momentum=0.9))),
        param_scheduler=dict(
            darkener=[
                dict(type='MultiStepLR', by_epoch=False, milestones=[1])
            ],
            task=[dict(type='MultiStepLR', by_epoch=False, milestones=[1])]),
        train_cfg=dict(
            type='mmsimmm.SimMinMaxLoop', stages=stages,
            **(loop_kwargs or {})),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(
                type='CheckpointHook', interval=1, by_epoch=False)),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=seed),
        log_level='WARNING',
        env_cfg=dict(dist_cfg=dict(backend='gloo')))
