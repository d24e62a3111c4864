# Copyright (c) mmsimmm contributors. All rights reserved.
"""The RefineNet segmentation configs: parsing, model building, the two
night evaluation protocols, and a 2-iteration train + test run."""
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import DATASETS, METRICS, MODELS
from PIL import Image

from mmsimmm.models.decode_heads import RefineNetHead
from mmsimmm.utils import allow_trusted_checkpoints

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs/segmentation'
BASELINE = CONFIG_DIR / 'refinenet_r101_2xb2-100e_cityscapes-384x768.py'
TEST_CONFIGS = {
    name: CONFIG_DIR / f'{BASELINE.stem}_{name}.py'
    for name in ('dark-zurich-512x1024', 'dark-zurich-1920x1080',
                 'night-driving-512x1024', 'night-driving-1920x1080')
}
TINY_HEAD = dict(
    in_channels=(16, 32, 64, 128),
    channels=16,
    stage_channels=(16, 16, 16, 32))


def shrink_model(cfg: Config) -> None:
    """A narrow ResNet-18 (no pretrained download) and decoder."""
    cfg.model.backbone.update(depth=18, base_channels=16, init_cfg=None)
    cfg.model.decode_head.update(TINY_HEAD)


def write_pair(img_path: Path, seg_path: Path, shape, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img_path.parent.mkdir(parents=True, exist_ok=True)
    seg_path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(img_path), rng.integers(0, 255, (*shape, 3), np.uint8))
    label = rng.integers(0, 19, shape, dtype=np.uint8)
    label[:, :shape[1] // 8] = 255  # ignored pixels
    cv2.imwrite(str(seg_path), label)


def make_night_fixture(root: Path, name: str, shape=(54, 96)) -> Path:
    """Two Dark Zurich val or Nighttime Driving test frames."""
    for i in range(2):
        if name.startswith('dark-zurich'):
            stem = f'GOPR0356_frame_00000{i}'
            img = root / f'rgb_anon/val/night/GOPR0356/{stem}_rgb_anon.png'
            seg = root / f'gt/val/night/GOPR0356/{stem}_gt_labelTrainIds.png'
        else:
            stem = f'0_frame_000{i}'
            img = root / f'leftImg8bit/test/night/{stem}_leftImg8bit.png'
            seg = root / ('gtCoarse_daytime_trainvaltest/test/night/'
                          f'{stem}_gtCoarse_labelTrainIds.png')
        write_pair(img, seg, shape, seed=i)
    return root


def make_cityscapes_fixture(root: Path) -> Path:
    """2 cities x 2 images of 64x128 per split, labels with 255."""
    seed = 0
    for split in ('train', 'val'):
        for city in ('aachen', 'bremen'):
            for frame in range(2):
                stem = f'{city}_000000_00000{frame}'
                write_pair(
                    root / f'leftImg8bit/{split}/{city}/{stem}'
                    '_leftImg8bit.png',
                    root / f'gtFine/{split}/{city}/{stem}'
                    '_gtFine_labelTrainIds.png', (64, 128), seed)
                seed += 1
    return root


@pytest.mark.slow
def test_configs_parse_and_share_the_baseline_model():
    base = Config.fromfile(str(BASELINE))
    assert base.default_scope == 'mmseg'
    assert 'custom_imports' not in base  # inheritable next to simmm
    assert base.model.backbone.depth == 101
    assert base.model.backbone.init_cfg.checkpoint == \
        'torchvision://resnet101'
    assert base.model.decode_head.type == 'mmsimmm.RefineNetHead'
    # recipe: 100 epochs of ceil(2975 / 4) iterations, step every 30
    assert base.train_cfg.max_iters == 100 * math.ceil(2975 / 4)
    assert base.param_scheduler[0].step_size == 30 * math.ceil(2975 / 4)
    assert base.train_dataloader.batch_size * 2 == 4
    assert base.optim_wrapper.optimizer == dict(
        type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4)
    expected = {
        'dark-zurich': ('DarkZurichDataset', 'data/dark_zurich/',
                        'rgb_anon/val/night/GOPR0356'),
        'night-driving': ('NightDrivingDataset',
                          'data/NighttimeDrivingTest/',
                          'leftImg8bit/test/night'),
    }
    for name, path in TEST_CONFIGS.items():
        cfg = Config.fromfile(str(path))
        assert cfg.model == base.model
        assert cfg.train_dataloader == base.train_dataloader
        dataset = cfg.test_dataloader.dataset
        dataset_type, data_root, img_path = expected[name.rsplit('-', 1)[0]]
        assert dataset.type == dataset_type
        assert dataset.data_root == data_root
        assert dataset.data_prefix.img_path == img_path
        assert cfg.test_evaluator.type == 'IoUMetric'


def test_baseline_model_builds():
    cfg = Config.fromfile(str(BASELINE))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)  # init_weights is not called
    assert isinstance(model.decode_head, RefineNetHead)
    assert len(model.state_dict()) == 712
    assert model.decode_head.align_corners is True


def build_test_dataset(cfg: Config, data_root: Path):
    init_default_scope('mmseg')
    dataset_cfg = cfg.test_dataloader.dataset.copy()
    dataset_cfg.data_root = str(data_root)
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == 2
    return dataset


@pytest.mark.slow
@pytest.mark.parametrize('name',
                         ['dark-zurich-512x1024', 'night-driving-512x1024'])
def test_official_protocol_scores_at_512x1024(name, tmp_path):
    cfg = Config.fromfile(str(TEST_CONFIGS[name]))
    dataset = build_test_dataset(cfg, make_night_fixture(tmp_path, name))
    item = dataset[0]
    sample = item['data_samples']
    assert item['inputs'].shape == (3, 512, 1024)
    assert sample.ori_shape == (512, 1024)
    # the image is PIL's LANCZOS resize of the file (official), channel
    # for channel (mmcv loads BGR)
    lanczos = np.asarray(
        Image.open(sample.img_path).convert('RGB').resize(
            (1024, 512), Image.LANCZOS))
    image = item['inputs'].permute(1, 2, 0).numpy()[..., ::-1]
    assert np.array_equal(image, lanczos)
    label = sample.gt_sem_seg.data[0].numpy()
    original = cv2.imread(sample.seg_map_path, cv2.IMREAD_UNCHANGED)
    assert original.shape == (54, 96)
    nearest = np.asarray(
        Image.fromarray(original).resize((1024, 512), Image.NEAREST))
    assert np.array_equal(label, nearest)

    # mmseg keeps the prediction at ori_shape: IoUMetric compares at
    # 512x1024; a perfect prediction there scores 100 mIoU.
    shrink_model(cfg)
    model = MODELS.build(cfg.model)
    logits = torch.nn.functional.one_hot(
        torch.from_numpy(label).long().clamp(max=18), 19)
    logits = logits.permute(2, 0, 1)[None].float()
    result = model.postprocess_result(logits, [sample])[0]
    assert result.pred_sem_seg.shape == (512, 1024)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    metric.process([], [result.to_dict()])
    assert metric.compute_metrics(metric.results)['mIoU'] == 100.0


@pytest.mark.parametrize('name',
                         ['dark-zurich-1920x1080', 'night-driving-1920x1080'])
def test_full_resolution_protocol(name, tmp_path):
    cfg = Config.fromfile(str(TEST_CONFIGS[name]))
    dataset = build_test_dataset(cfg, make_night_fixture(tmp_path, name))
    item = dataset[1]
    assert item['inputs'].shape == (3, 1080, 1920)
    # the label is not resized: predictions go back to the original size
    assert item['data_samples'].gt_sem_seg.shape == (54, 96)
    assert item['data_samples'].ori_shape == (54, 96)


@pytest.mark.slow
def test_baseline_trains_and_tests_on_tiny_cityscapes(tmp_path,
                                                     monkeypatch):
    allow_trusted_checkpoints()
    # yapf-formatting the config (log, dump, checkpoint meta) dominates the
    # run time on CPU; a plain repr is enough here.
    monkeypatch.setattr(Config, 'pretty_text',
                        property(lambda self: repr(self.to_dict())))
    root = make_cityscapes_fixture(tmp_path / 'cityscapes')
    cfg = Config.fromfile(str(BASELINE))
    shrink_model(cfg)
    crop = (48, 96)
    cfg.model.data_preprocessor.size = crop
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform.type in ('Resize', 'RandomResize'):
            transform.scale = (128, 64)
        if transform.type == 'RandomCrop':
            transform.crop_size = crop
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(num_workers=0, persistent_workers=False)
        cfg[loader].dataset.data_root = str(root)
        if loader != 'train_dataloader':
            for transform in cfg[loader].dataset.pipeline:
                if transform.type == 'Resize':
                    transform.scale = (128, 64)
    cfg.train_cfg.update(max_iters=2, val_interval=10)  # no validation
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.update(interval=2, save_best=None)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.log_level = 'WARNING'

    runner = Runner.from_cfg(cfg)
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert np.isfinite(loss) and loss > 0
    assert (tmp_path / 'work/iter_2.pth').exists()
    metrics = runner.test()
    assert 0.0 <= metrics['mIoU'] <= 100.0
