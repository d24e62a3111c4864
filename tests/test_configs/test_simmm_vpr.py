# Copyright (c) mmsimmm contributors. All rights reserved.
"""SimMinMax on the GeM retriever: config, both stages, plain-config test."""
import copy
import os.path as osp
from unittest.mock import patch

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmpretrain.structures import DataSample
from utils.retrieval import (
    SFM_CLUSTERS,
    SFM_PIDXS,
    SFM_QIDXS,
    make_sfm,
    make_tokyo,
)

from mmsimmm.models.losses import ContrastiveLoss
from mmsimmm.registry import MODELS
from mmsimmm.utils import allow_trusted_checkpoints

SIMMM_CFG = 'configs/place_recognition/simminmax_gem_r101_tokyo247.py'
PLAIN_CFG = 'configs/place_recognition/gem_resnet101_1xb5-5e_sfm120k-362px.py'
TINY_RESNET = dict(
    type='mmpretrain.ResNet',
    depth=18,
    stem_channels=8,
    base_channels=8,
    out_indices=(3, ),
    init_cfg=None)


def pipeline(size):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(size, size), keep_ratio=True),
        dict(type='mmpretrain.PackInputs'),
    ]


def shrink(model: Config) -> None:
    """Tiny ResNets and 40 -> 32 px darkening crops (CPU speed)."""
    model.task_model.backbone = copy.deepcopy(TINY_RESNET)
    model.update(darken_short_side=40, darken_crop_size=32)
    model.darken_head.feature_model = copy.deepcopy(TINY_RESNET)


def tiny_simmm_cfg(repo_root: str, root: str, work_dir: str) -> Config:
    """The SimMinMax VPR config on the fixtures: tiny ResNets, 2+2 iters.

    4 tuples of 2 at batch 2 = 2 iterations per pass: the darkening stage
    is one pass and the adaptation one epoch, as in the real schedule.
    """
    cfg = Config.fromfile(osp.join(repo_root, SIMMM_CFG))
    cfg.work_dir = work_dir
    shrink(cfg.model)
    cfg.train_cfg.stages = [
        dict(name='darken', iters=2),
        dict(name='adapt', iters=2)
    ]
    cfg.param_scheduler.darkener[0].milestones = [1]
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.dataset.update(
        data_root=root,
        pipeline=pipeline(32),
        query_size=4,
        pool_size=9,
        num_negatives=2,
        mining_num_workers=0)
    cfg.default_hooks.checkpoint.interval = 4
    cfg.default_hooks.logger.interval = 1
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    # 32-px images instead of 362: 8-px noise cells (the floor grid of the
    # official 32-px cells has no cell on a side shorter than 32 px)
    cfg.model.exposure.noise.patch_ratio = 8
    return cfg


@pytest.fixture
def data_root(tmp_path):
    root = str(tmp_path / 'data')
    make_sfm(root, SFM_CLUSTERS, SFM_QIDXS, SFM_PIDXS,
             sizes={1: (32, 40), 4: (24, 36)})
    make_tokyo(root)
    return root


def test_config_recipe(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, SIMMM_CFG))
    model = cfg.model
    assert model.type == 'mmsimmm.SimMinMaxRetrieval'
    assert model.task_model.type == 'mmsimmm.GeMRetriever'
    assert model.task_model.frozen_bn
    assert model.adapt_head is None
    assert model.view_augment is None
    head = model.darken_head
    assert head.feature_model.depth == 101
    assert head.feature_model.init_cfg.checkpoint == \
        'torchvision://resnet101'
    assert head.features.modules == ['layer4']
    assert head.normalize_features
    assert tuple(model.exposure.darken_range) == (0.0, 0.5)
    assert tuple(model.exposure.adapt_range) == (0.0, 0.2)
    # official query darkening: (H // 32, W // 32) noise cells, no clamp
    assert model.exposure.noise == dict(
        pixel_std=0.025, patch_std=0.025, patch_ratio=32, patch_grid='floor')
    assert model.clamp_dark is False
    assert head.losses.down_scale.loss_weight == 5.
    assert [(s.name, s.iters) for s in cfg.train_cfg.stages] == [
        ('darken', 4400), ('adapt', 22000)]
    assert cfg.param_scheduler.darkener[0].milestones == [800, 2400]
    assert cfg.param_scheduler.task == []
    task_optim = cfg.optim_wrapper.task
    assert task_optim.optimizer == dict(
        type='Adam', lr=5e-7, weight_decay=1e-6)
    assert cfg.optim_wrapper.darkener.clip_grad == dict(max_norm=0.1)
    loader = cfg.train_dataloader
    assert loader.num_workers == 0 and loader.drop_last
    assert loader.batch_size == 5
    assert loader.dataset.query_size == 22000
    assert cfg.custom_hooks[0] == dict(
        type='mmsimmm.TupleMiningHook', model_attr='task_model')
    assert cfg.custom_hooks[1:] == cfg.simminmax_hooks
    # test protocol of the baseline: max side 1024, 3 scales
    assert cfg.test_dataloader.dataset.pipeline[1] == dict(
        type='mmsimmm.Thumbnail', max_size=1024)
    assert model.task_model.test_scales == pytest.approx(
        (1.0, 2**-0.5, 0.5))


def build_tiny_model(repo_root: str) -> torch.nn.Module:
    cfg = Config.fromfile(osp.join(repo_root, SIMMM_CFG))
    shrink(cfg.model)
    with DefaultScope.overwrite_default_scope('mmsimmm'):
        model = MODELS.build(cfg.model)
    return model.eval()


def random_tuples(sizes, labels, seed=0):
    """Position-major normalised images + data samples."""
    gen = torch.Generator().manual_seed(seed)
    inputs = [[torch.randn(3, *size, generator=gen) for size in row]
              for row in sizes]
    samples = [
        DataSample(metainfo=dict(tuple_labels=list(labels)))
        for _ in sizes[0]
    ]
    return inputs, samples


def test_darken_stage_images_and_pixel_space(repo_root):
    torch.manual_seed(0)
    model = build_tiny_model(repo_root)
    retriever = model.task_model
    # tuples of 2: (q, p, n, n); position-major sizes per tuple
    sizes = [[(32, 40), (40, 32)], [(24, 36), (36, 24)], [(30, 30)] * 2,
             [(20, 44), (44, 20)]]
    inputs, samples = random_tuples(sizes, [-1, 1, 0, 0])
    crops = model.darken_stage_images(
        inputs, samples, generator=torch.Generator().manual_seed(1))
    assert crops.shape == (4, 3, 32, 32)  # query + positive of 2 tuples
    # the crop offsets come from the generator (exact resume)
    again = model.darken_stage_images(
        inputs, samples, generator=torch.Generator().manual_seed(1))
    other = model.darken_stage_images(
        inputs, samples, generator=torch.Generator().manual_seed(2))
    assert torch.equal(crops, again) and not torch.equal(crops, other)
    # the crop of the first (32, 40) query is a window of its 40 x 50
    # resize (shorter side 40)
    resized = torch.nn.functional.interpolate(
        inputs[0][0][None], size=(40, 50), mode='bilinear',
        antialias=True)[0]
    windows = resized.unfold(1, 32, 1).unfold(2, 32, 1)
    assert any(
        torch.allclose(windows[:, i, j], crops[0], atol=1e-6)
        for i in range(windows.shape[1]) for j in range(windows.shape[2]))
    # constant images stay constant after resizing and cropping
    const = [[torch.full((3, 20, 44), 0.5)], [torch.full((3, 44, 20), -1.)]]
    const_samples = [DataSample(metainfo=dict(tuple_labels=[-1, 1]))]
    out = model.darken_stage_images(const, const_samples)
    assert torch.allclose(out[0], torch.full_like(out[0], 0.5), atol=1e-5)
    assert torch.allclose(out[1], torch.full_like(out[1], -1.), atol=1e-5)
    # ranks keep their share of the crops of the global batch (tuple i on
    # rank i % 2): rank 1 with tuple 1 crops it like one process with both
    inputs_r1 = [[row[1]] for row in inputs]
    with patch('mmsimmm.models.algorithms.simminmax_retrieval.'
               'get_dist_info', return_value=(1, 2)), patch(
                   'mmsimmm.models.utils.exposure_sampler.get_dist_info',
                   return_value=(1, 2)):
        rank1 = model.darken_stage_images(
            inputs_r1, samples[1:],
            generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(rank1, crops[2:])
    # official sizes: shorter side 256, random 224 crop
    cfg = Config.fromfile(osp.join(repo_root, SIMMM_CFG)).model
    shrink(cfg)
    cfg.pop('darken_short_side')
    cfg.pop('darken_crop_size')
    with DefaultScope.overwrite_default_scope('mmsimmm'):
        assert MODELS.build(cfg).darken_crop_size == 224
        with pytest.raises(ValueError, match='darken_crop_size'):
            MODELS.build(
                dict(cfg, darken_short_side=30, darken_crop_size=32))

    # PixelSpace reads the retriever preprocessor's mean/std and RGB order
    bgr = torch.randint(0, 256, (3, 20, 28), dtype=torch.uint8)
    normalised = retriever.data_preprocessor.normalize(bgr)[None]
    rgb = model.pixel_space.to_unit_rgb(normalised)
    assert torch.allclose(rgb[0], bgr.flip(0).float() / 255, atol=1e-5)
    assert torch.allclose(
        model.pixel_space.from_unit_rgb(rgb), normalised, atol=1e-4)

    # the darkening stage consumes the tuples through darken_stage_images
    model.set_stage('darken')
    model.train()
    losses = model.loss(inputs, samples)
    assert set(losses) == {
        f'darken.loss_{k}'
        for k in ('similarity', 'exposure', 'color', 'tv', 'down_scale')
    }
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.darkener.parameters())
    assert all(p.grad is None for p in model.task_model.parameters())


def test_adapt_loss_has_darkened_query_as_second_positive(repo_root):
    torch.manual_seed(0)
    model = build_tiny_model(repo_root)
    model.set_stage('adapt')
    model.train()
    model.sampling_seed = 3
    MessageHub.get_current_instance().update_info('iter', 7)
    # query sizes (32, 40) and (33, 45): any size of at least one 32-px
    # noise cell goes through D
    sizes = [[(32, 40), (33, 45)], [(40, 32), (36, 24)], [(32, 32)] * 2]
    labels = [-1, 1, 0]
    inputs, samples = random_tuples(sizes, labels)

    seen = []
    forward = ContrastiveLoss.forward

    def spy(self, descriptors, tuple_labels):
        seen.append(([d.shape[0] for d in descriptors],
                     copy.deepcopy(tuple_labels)))
        return forward(self, descriptors, tuple_labels)

    ContrastiveLoss.forward = spy
    try:
        losses = model.loss(inputs, samples)
    finally:
        ContrastiveLoss.forward = forward
    assert list(losses) == ['task.loss_contrastive']
    assert seen == [([4, 4], [[-1, 1, 1, 0], [-1, 1, 1, 0]])]

    # manual: the same per-iteration generator darkens q0, then q1
    retriever = model.task_model
    generator = model.exposure.generator(torch.device('cpu'), 'darken_levels')
    expected = 0.
    for b in range(2):
        query = inputs[0][b][None]
        dark = model.darken_batch(query, generator)
        assert dark.shape == query.shape
        assert not torch.allclose(dark, query)
        images = [query[0], dark[0], inputs[1][b], inputs[2][b]]
        desc = torch.cat([retriever.extract_feat(x[None]) for x in images])
        expected = expected + retriever.loss_module.tuple_loss(
            desc, [-1, 1, 1, 0])
    assert losses['task.loss_contrastive'].item() == pytest.approx(
        expected.item(), rel=1e-4, abs=1e-6)
    losses['task.loss_contrastive'].backward()
    assert all(p.grad is None for p in model.darkener.parameters())
    assert retriever.neck.p.grad is not None


class GradientRecorder(Hook):
    """Records, per iteration, which parts received gradients and whether
    the task model was updated."""

    def __init__(self) -> None:
        self.log = []
        self._stage = None
        self._hit = set()

    def before_train(self, runner) -> None:
        model = runner.model
        for part, module in (('darkener', model.darkener),
                             ('task', model.task_model)):
            for param in module.parameters():
                param.register_hook(self._make_hook(part))

    def _make_hook(self, part):

        def hook(grad):
            self._hit.add(part)

        return hook

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._hit = set()
        self.task_weight = self._task_weight(runner).clone()

    @staticmethod
    def _task_weight(runner) -> torch.Tensor:
        return runner.model.task_model.backbone.conv1.weight.detach()

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        moved = not torch.equal(self._task_weight(runner), self.task_weight)
        self.log.append((runner.model.stage, sorted(self._hit), moved,
                         sorted(outputs)))


@pytest.mark.slow
def test_train_both_stages_then_plain_test(repo_root, data_root, tmp_path,
                                           capsys):
    allow_trusted_checkpoints()
    torch.manual_seed(0)
    cfg = tiny_simmm_cfg(repo_root, data_root, str(tmp_path / 'work'))
    runner = Runner.from_cfg(cfg)
    recorder = GradientRecorder()
    runner.register_hook(recorder, priority='LOWEST')
    runner.train()

    # `neck.p` still matches `task_model.neck.p` in the task optimizer
    task_groups = runner.optim_wrapper['task'].param_groups
    neck_p = runner.model.task_model.neck.p
    p_group = [g for g in task_groups if g['params'][0] is neck_p]
    assert p_group[0]['lr'] == pytest.approx(5e-6)
    assert p_group[0]['weight_decay'] == 0
    assert task_groups[0]['lr'] == pytest.approx(5e-7)
    assert task_groups[0]['weight_decay'] == pytest.approx(1e-6)

    assert runner.train_loop.stage_history == [
        'darken', 'darken', 'adapt', 'adapt'
    ]
    darken_keys = [
        f'darken.loss_{k}'
        for k in ('color', 'down_scale', 'exposure', 'similarity', 'tv')
    ]
    assert recorder.log == [
        ('darken', ['darkener'], False, darken_keys + ['loss']),
        ('darken', ['darkener'], False, darken_keys + ['loss']),
        ('adapt', ['task'], True, ['loss', 'task.loss_contrastive']),
        ('adapt', ['task'], True, ['loss', 'task.loss_contrastive']),
    ]
    # the darkening schedule ran in its stage window (milestone 1 of 2)
    darkener_lr = runner.optim_wrapper['darkener'].param_groups[0]['lr']
    assert darkener_lr == pytest.approx(1e-5)
    # frozen BN everywhere while training
    assert not runner.model.task_model.backbone.bn1.training
    # mined before the darkening pass and before the adaptation epoch,
    # with the retrieval model inside SimMinMax
    out = capsys.readouterr().out
    assert 'Mined retrieval tuples for pass 0 (seed 0)' in out
    assert 'Mined retrieval tuples for pass 1 (seed 1)' in out
    assert 'pass 2' not in out

    # the checkpoint holds every key of the plain retriever, unprefixed
    ckpt = osp.join(cfg.work_dir, 'iter_4.pth')
    state = _load_checkpoint(ckpt, map_location='cpu')['state_dict']
    plain_cfg = Config.fromfile(osp.join(repo_root, PLAIN_CFG))
    plain_cfg.model.backbone = copy.deepcopy(TINY_RESNET)
    with DefaultScope.overwrite_default_scope('mmsimmm'):
        plain = MODELS.build(plain_cfg.model)
    assert set(plain.state_dict()) <= set(state)
    assert not [k for k in state if k.startswith('task_model.')]

    # test on Tokyo with the PLAIN retrieval config + the SimMinMax ckpt
    plain_cfg.work_dir = str(tmp_path / 'test')
    plain_cfg.load_from = ckpt
    plain_cfg.test_dataloader.update(num_workers=0)
    plain_cfg.test_dataloader.dataset.update(
        data_root=data_root, pipeline=pipeline(48))
    plain_cfg.env_cfg.dist_cfg = dict(backend='gloo')
    test_runner = Runner.from_cfg(plain_cfg)
    metrics = test_runner.test()
    assert torch.equal(test_runner.model.neck.p.detach(),
                       runner.model.task_model.neck.p.detach())
    print(f"SimMinMax VPR Tokyo fixture mAP: {metrics['retrieval/mAP']:.2f}")
    assert 0 < metrics['retrieval/mAP'] <= 100


def test_adapt_darkens_the_query_as_the_official_code(repo_root):
    """The darkened query: noise cells on the floor grid (H // 32,
    W // 32) and no clamp of D's output before re-normalising it."""
    torch.manual_seed(0)
    model = build_tiny_model(repo_root)
    model.set_stage('adapt')
    model.train()
    model.sampling_seed = 5
    MessageHub.get_current_instance().update_info('iter', 2)
    # a 40 x 70 query: floor cells (1, 2), ceil cells (2, 3)
    inputs, samples = random_tuples([[(40, 70)], [(32, 32)], [(32, 32)]],
                                    [-1, 1, 0])
    calls = []

    def overshooting_darkener(img, exposure, **kwargs):
        out = img * 1.6 - 0.3  # leaves [0, 1] on both sides
        calls.append((exposure, out))
        return out

    model.darkener.forward = overshooting_darkener
    described = []
    descriptors = model.task_model._descriptors

    def spy(images):
        described.append(images.detach().clone())
        return descriptors(images)

    model.task_model._descriptors = spy
    model.loss(inputs, samples)
    (exposure, dark), = calls

    # the exposure map written out by hand from the iteration's generator
    generator = model.exposure.generator(torch.device('cpu'), 'darken_levels')
    level = torch.rand((1, ), generator=generator) * 0.2
    maps = {}
    for grid, cells in (('floor', (1, 2)), ('ceil', (2, 3))):
        state = generator.get_state()
        patch = torch.randn((1, 1) + cells, generator=generator) * 0.025
        patch = torch.nn.functional.interpolate(
            patch, size=(40, 70), mode='bilinear', align_corners=False)
        pixel = torch.randn((1, 1, 40, 70), generator=generator) * 0.025
        maps[grid] = level.view(1, 1, 1, 1) + patch + pixel
        generator.set_state(state)
    torch.testing.assert_close(exposure, maps['floor'])
    assert not torch.allclose(exposure, maps['ceil'])

    # the extra positive is D's output re-normalised, NOT clamped
    assert dark.min() < 0 and dark.max() > 1
    query_batch = next(x for x in described if x.shape[-2:] == (40, 70))
    torch.testing.assert_close(query_batch[1],
                               model.pixel_space.from_unit_rgb(dark)[0])
    torch.testing.assert_close(
        model.pixel_space.to_unit_rgb(query_batch[1:2]), dark,
        atol=1e-5, rtol=1e-5)


def test_clamp_dark_default_keeps_clamping(repo_root):
    """Other tasks (the SimMinMax default) still clamp D's output."""
    cfg = Config.fromfile(osp.join(repo_root, SIMMM_CFG))
    shrink(cfg.model)
    cfg.model.pop('clamp_dark')
    with DefaultScope.overwrite_default_scope('mmsimmm'):
        model = MODELS.build(cfg.model)
    assert model.clamp_dark is True
    model.darkener.forward = lambda img, exposure, **kw: img * 1.6 - 0.3
    query = torch.randn(1, 3, 40, 70)
    dark = model.pixel_space.to_unit_rgb(model.darken_batch(query))
    assert dark.min() >= -1e-5 and dark.max() <= 1 + 1e-5
    with pytest.raises(ValueError, match='patch_grid must be one of'):
        with DefaultScope.overwrite_default_scope('mmsimmm'):
            MODELS.build(
                dict(
                    cfg.model,
                    exposure=dict(
                        type='mmsimmm.ExposureSampler',
                        noise=dict(patch_ratio=32, patch_grid='round'))))
