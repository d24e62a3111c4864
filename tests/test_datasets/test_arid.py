# Copyright (c) mmsimmm contributors. All rights reserved.
"""ARID lists, ARIDVideoDataset, the NormalLight->ARID configs and the
multi-round (official) test protocol, on tiny synthetic videos."""
import copy
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmaction.utils import register_all_modules
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import mmsimmm  # noqa: F401  (before mmaction.models)
from mmsimmm.datasets import ARIDVideoDataset
from mmsimmm.datasets.arid import (
    ARID_CLASSES,
    check_mapping_table,
    load_arid_list,
)
from mmsimmm.engine.runner.multi_round_test_loop import MultiRoundTestLoop
from mmsimmm.utils import allow_trusted_checkpoints

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / 'configs' / 'action_recognition'
TRAIN_CONFIG = (CONFIG_DIR /
                'i3d_k400-pretrained-r50_3xb16-16x2x1-10e_normallight-arid.py')
MULTI_CLIP_CONFIG = CONFIG_DIR / 'i3d_r50_16x2x10-3crop_arid-split1-test.py'
ROUNDS_CONFIG = CONFIG_DIR / 'i3d_r50_16x2x1-20rounds_arid-split1-test.py'
# relative path -> label: ARID class folders (.avi) and a flat
# NormalLight-style name (.mp4)
FIXTURE_VIDEOS = {
    'Drink/Drink_1_1.avi': 0,
    'Jump/Jump_2_1.avi': 1,
    'yt0AbCdEf_3_7.mp4': 4,
}
FOURCC = {'.avi': 'MJPG', '.mp4': 'mp4v'}


def write_clip(path: Path, seed: int, frames: int = 16, width: int = 40,
               height: int = 32, fps: float = 10.) -> None:
    """Write a tiny random-colour clip with cv2.VideoWriter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*FOURCC[path.suffix]), fps,
        (width, height))
    assert writer.isOpened()
    rng = np.random.default_rng(seed)
    for index in range(frames):
        frame = np.full((height, width, 3), 10 * index, np.uint8)
        frame += rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        writer.write(frame)
    writer.release()


def write_list(path: Path, lines: List[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(lines) + '\n')
    return path


def official_lines(videos: Dict[str, int]) -> List[str]:
    return [f'{i}\t{label}\t{rel}' for i, (rel, label) in
            enumerate(videos.items())]


@pytest.fixture(scope='module')
def arid_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('arid')
    for seed, rel in enumerate(FIXTURE_VIDEOS):
        write_clip(root / 'raw' / 'data' / rel, seed)
    write_list(root / 'raw' / 'list_cvt' / 'ARID_split1_test.txt',
               official_lines(FIXTURE_VIDEOS))
    write_list(root / 'raw' / 'list_cvt' / 'mapping_table.txt',
               [f'{i}\t{name}' for i, name in enumerate(ARID_CLASSES)])
    return root


def test_official_list_is_parsed(arid_root):
    ann = arid_root / 'raw' / 'list_cvt' / 'ARID_split1_test.txt'
    entries = load_arid_list(str(ann))
    assert [(e.idx, e.label, e.path, e.line) for e in entries] == [
        (0, 0, 'Drink/Drink_1_1.avi', 1), (1, 1, 'Jump/Jump_2_1.avi', 2),
        (2, 4, 'yt0AbCdEf_3_7.mp4', 3)]
    check_mapping_table(
        str(arid_root / 'raw' / 'list_cvt' / 'mapping_table.txt'))

    dataset = ARIDVideoDataset(
        ann_file=str(ann),
        pipeline=[],
        data_prefix=dict(video=str(arid_root / 'raw' / 'data')),
        mapping_table=str(arid_root / 'raw' / 'list_cvt' /
                          'mapping_table.txt'))
    assert dataset.metainfo['classes'] == ARID_CLASSES
    assert [(Path(info['filename']).relative_to(arid_root / 'raw' /
                                                'data').as_posix(),
             info['label']) for info in dataset.load_data_list()
            ] == list(FIXTURE_VIDEOS.items())


@pytest.mark.parametrize(
    'line, message',
    [
        ('1 0 Drink/Drink_1_1.avi', 'expected 3 tab-separated columns'),
        ('1\t0\tDrink/Drink_1_1.avi\textra', 'found 4'),
        ('1\tzero\tDrink/Drink_1_1.avi', "label 'zero' is not an integer"),
        ('x\t0\tDrink/Drink_1_1.avi', "idx 'x' is not an integer"),
        ('1\t11\tDrink/Drink_1_1.avi', 'label 11 is out of range'),
        ('1\t-1\tDrink/Drink_1_1.avi', 'label -1 is out of range'),
        ('1\t1\tDrink/Drink_1_1.avi', "class folder 'Drink' but label 1 is "
         "'Jump'"),
        ('1\t1\tdrink/Drink_1_1.avi', "class folder 'drink'"),
        ('0\t1\tJump/Jump_2_1.avi', 'duplicate idx 0 (first used on line 1)'),
        ('1\t1\tJump/Jump_2_1.mkv', "must end in one of ('.avi', '.mp4')"),
        ('1\t1\t/abs/Jump_2_1.avi', 'must be relative'),
    ])
def test_bad_line_names_file_and_line(tmp_path, line, message):
    ann = write_list(tmp_path / 'list.txt', ['0\t0\tDrink/Drink_1_1.avi',
                                             line])
    with pytest.raises(ValueError) as error:
        load_arid_list(str(ann))
    assert f'{ann}, line 2' in str(error.value)
    assert message in str(error.value)


def test_folder_check_only_for_class_folders(tmp_path):
    # a non-class folder and a flat path are accepted for any label
    ann = write_list(tmp_path / 'list.txt', [
        '0\t3\tvideos/clip_a.mp4', '1\t10\tclip_b.AVI', '', '7\t5\tRun/x.avi'
    ])
    assert [(e.idx, e.label, e.line) for e in load_arid_list(str(ann))] == [
        (0, 3, 1), (1, 10, 2), (7, 5, 4)]


def test_empty_missing_and_mapping_errors(tmp_path, arid_root):
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        load_arid_list(str(tmp_path / 'nope.txt'))
    empty = write_list(tmp_path / 'empty.txt', [''])
    with pytest.raises(ValueError, match='has no entries'):
        load_arid_list(str(empty))

    names = list(ARID_CLASSES)
    names[3], names[4] = names[4], names[3]
    swapped = write_list(tmp_path / 'mapping.txt',
                         [f'{i}\t{n}' for i, n in enumerate(names)])
    with pytest.raises(ValueError, match=r'mapping.txt, line 4: expected '
                       r"'3' 'Pour'.*found '3\\tPush'"):
        check_mapping_table(str(swapped))
    short = write_list(tmp_path / 'short.txt',
                       [f'{i}\t{n}' for i, n in enumerate(ARID_CLASSES[:5])])
    with pytest.raises(ValueError, match='lists 5 classes, expected 11'):
        check_mapping_table(str(short))

    ann = write_list(tmp_path / 'list.txt', [
        '0\t0\tDrink/Drink_1_1.avi', '1\t2\tPick/missing.avi'])
    with pytest.raises(FileNotFoundError,
                       match=r'(?s)1 listed video\(s\) not found.*line 2: .*'
                       'Pick/missing.avi'):
        ARIDVideoDataset(
            ann_file=str(ann),
            pipeline=[],
            data_prefix=dict(video=str(arid_root / 'raw' / 'data')))
    with pytest.raises(ValueError, match='multi_class'):
        ARIDVideoDataset(ann_file=str(ann), pipeline=[], multi_class=True)


# ---------------------------------------------------------------------------
# configs: tiny CPU train / test runs
# ---------------------------------------------------------------------------
TINY_TRANSFORMS = {
    'SampleFrames': dict(clip_len=8, frame_interval=1),
    'RandomRescale': dict(scale_range=(48, 56)),
    'mmsimmm.RandomScale': dict(short_side_range=(48, 56)),
    'RandomCrop': dict(size=48),
    'Resize': dict(scale=(56, 56)),
    'CenterCrop': dict(crop_size=48),
    'ThreeCrop': dict(crop_size=48),
}


def shrink_pipeline(pipeline: list) -> None:
    """Apply TINY_TRANSFORMS in place, also inside wrapped transforms."""
    for transform in pipeline:
        transform.update(TINY_TRANSFORMS.get(transform.type, {}))
        if transform.type == 'Resize' and transform.get('keep_ratio', True):
            transform.scale = (-1, 48)  # short side, for ThreeCrop
        if 'transforms' in transform:
            shrink_pipeline(transform.transforms)


def tiny(cfg: Config, arid_root: Path, work_dir: Path) -> Config:
    """Shrink a config to the fixture: 8x1 clips of 48x48, batch 2, CPU,
    and the I3D R50 backbone to a quarter of its width.

    8 frames is the shortest clip for which I3D's temporal strides (conv1,
    maxpool, pool2) leave one frame; 48 pixels leave layer4 a 2x2 map, so
    the last training batch of one clip still has BN statistics. The
    fixture videos are 40x32 (w x h).
    """
    cfg = copy.deepcopy(cfg)
    # the i3d_r50 layout at 1/4 width (conv3d is slow on CPU)
    cfg.model.backbone.base_channels = 16
    cfg.model.cls_head.in_channels = 512
    cfg.work_dir = str(work_dir)
    cfg.load_from = None
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0)
    ann = str(arid_root / 'raw' / 'list_cvt' / 'ARID_split1_test.txt')
    videos = str(arid_root / 'raw' / 'data')
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(ann_file=ann, data_prefix=dict(video=videos))
        shrink_pipeline(loader.dataset.pipeline)
    return cfg


@pytest.mark.slow
def test_baseline_config_trains_and_validates(arid_root, tmp_path):
    cfg = Config.fromfile(TRAIN_CONFIG)
    # the config states the recipe of method.md 5.4
    assert cfg.model.cls_head.num_classes == 11
    assert cfg.train_dataloader.dataset.data_prefix.video == (
        'data/NormalLight/raw/data')
    assert cfg.val_dataloader.dataset.ann_file == (
        'data/ARID/raw/list_cvt/ARID_split1_test.txt')
    np.testing.assert_allclose(
        np.array(cfg.model.data_preprocessor.mean) / 255,
        [0.43216, 0.394666, 0.37645], atol=1e-6)
    np.testing.assert_allclose(
        np.array(cfg.model.data_preprocessor.std) / 255,
        [0.22803, 0.22145, 0.216989], atol=1e-6)
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4, nesterov=True)

    cfg = tiny(cfg, arid_root, tmp_path)
    cfg.train_cfg.max_epochs = 1  # 3 videos, batch 2: 2 iterations
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    # the 100-iteration half-lr warm-up is active
    lr = runner.optim_wrapper.get_lr()['lr'][0]
    assert lr == pytest.approx(0.5e-3)
    assert (tmp_path / 'epoch_1.pth').is_file()


@pytest.fixture(scope='module')
def checkpoint(arid_root, tmp_path_factory) -> str:
    """A randomly initialised model saved as a checkpoint."""
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    cfg = tiny(Config.fromfile(TRAIN_CONFIG), arid_root, Path('unused'))
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp('ckpt') / 'random.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


def test_multi_clip_protocol(arid_root, tmp_path, checkpoint):
    allow_trusted_checkpoints()
    cfg = tiny(Config.fromfile(MULTI_CLIP_CONFIG), arid_root, tmp_path)
    assert cfg.test_dataloader.dataset.pipeline[1].num_clips == 10
    cfg.load_from = checkpoint
    metrics = Runner.from_cfg(cfg).test()
    print('mmaction2 10-clip x 3-crop protocol:', metrics)
    assert set(metrics) >= {'acc/top1', 'acc/top5'}
    assert 0 <= metrics['acc/top1'] <= metrics['acc/top5'] <= 1


def rounds_runner(arid_root, work_dir, checkpoint, num_rounds=2,
                  seed=3) -> Runner:
    allow_trusted_checkpoints()
    cfg = tiny(Config.fromfile(ROUNDS_CONFIG), arid_root, work_dir)
    assert cfg.test_cfg.num_rounds == 20  # the official protocol
    cfg.test_cfg.update(num_rounds=num_rounds, seed=seed)
    pack = cfg.test_dataloader.dataset.pipeline[-1]
    pack.meta_keys = tuple(pack.meta_keys) + ('frame_inds', )
    cfg.load_from = checkpoint
    return Runner.from_cfg(cfg)


def test_multi_round_protocol_averages_random_rounds(
        arid_root, tmp_path, checkpoint):
    runner = rounds_runner(arid_root, tmp_path, checkpoint)
    loop = runner.test_loop
    evaluated = []  # what the evaluator receives
    process = loop.evaluator.process

    def record(data_samples, data_batch=None):
        evaluated.extend(data_samples)
        process(data_samples, data_batch)

    loop.evaluator.process = record
    metrics = runner.test()
    print('official 2-round protocol:', metrics)
    assert set(metrics) >= {'acc/top1', 'acc/top5'}
    assert isinstance(loop, MultiRoundTestLoop) and loop.num_rounds == 2

    # rounds draw different random clips; a round is reproducible
    first, second = loop.run_round(0), loop.run_round(1)
    assert [s.metainfo['sample_idx'] for s in first] == [0, 1, 2]
    frames = [[tuple(s.metainfo['frame_inds']) for s in out]
              for out in (first, second, loop.run_round(0))]
    assert frames[0] != frames[1] and frames[0] == frames[2]
    starts = {f[0] for f in frames[0] + frames[1]}
    assert len(starts) > 1 and max(starts) <= 16 - 8

    # the metric is the accuracy of the per-video mean of the softmax
    scores = (torch.stack([s.pred_score for s in first]) +
              torch.stack([s.pred_score for s in second])) / 2
    torch.testing.assert_close(scores.sum(1), torch.ones(3))
    assert [s.metainfo['sample_idx'] for s in evaluated] == [0, 1, 2]
    torch.testing.assert_close(
        torch.stack([s.pred_score for s in evaluated]), scores)
    assert [int(s.pred_label) for s in evaluated] == scores.argmax(1).tolist()
    labels = torch.tensor(list(FIXTURE_VIDEOS.values()))
    top1 = (scores.argmax(1) == labels).float().mean().item()
    top5 = (scores.topk(5, dim=1).indices == labels[:, None]).any(1)
    assert metrics['acc/top1'] == pytest.approx(top1, abs=1e-4)
    assert metrics['acc/top5'] == pytest.approx(
        top5.float().mean().item(), abs=1e-4)


def test_multi_round_needs_sample_idx(arid_root, tmp_path, checkpoint):
    runner = rounds_runner(arid_root, tmp_path, checkpoint, num_rounds=1)
    pack = runner.test_loop.dataloader.dataset.pipeline.transforms[-1]
    pack.meta_keys = ('img_shape', )
    with pytest.raises(KeyError, match='sample_idx'):
        runner.test()


SIMMM_CONFIG = CONFIG_DIR / 'simminmax_i3d_r50_arid.py'


def tiny_simmm(config: Path, arid_root: Path, work_dir: Path) -> Config:
    """A SimMinMax ARID config shrunk like :func:`tiny`, 1 + 1 iterations
    (adapt only for an adapt-only config), validation every iteration."""
    cfg = Config.fromfile(config)
    assert cfg.model.type == 'mmsimmm.SimMinMax'
    simmm = cfg.model
    cfg.model = cfg.model.task_model  # shrink the task model like `tiny`
    cfg = tiny(cfg, arid_root, work_dir)
    simmm.task_model = cfg.model
    simmm.adapt_head.projector.in_channels = 512
    simmm.darkener = dict(type='mmsimmm.DarkeningModule', num_features=8)
    cfg.model = simmm
    for stage in cfg.train_cfg.stages:
        stage['iters'] = 1
    cfg.train_cfg.val_interval = 1
    return cfg


@pytest.mark.slow
def test_simmm_config_trains_then_plain_test_scores(arid_root, tmp_path):
    """1 darken + 1 adapt iteration of
    configs/action_recognition/simminmax_i3d_r50_arid.py, then the plain
    20-round test config scores the saved checkpoint."""
    allow_trusted_checkpoints()
    cfg = tiny_simmm(SIMMM_CONFIG, arid_root, tmp_path)
    assert cfg.model.exposure.adapt_range == (0.0, 0.2)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.train_loop.stage_history == ['darken', 'adapt']
    # the official test's checkpoint, the last, is saved although the
    # checkpoint interval (55) was not reached, and is named as the last
    ckpt = tmp_path / 'iter_2.pth'
    assert ckpt.is_file()
    assert (tmp_path / 'last_checkpoint').read_text().strip() == str(ckpt)

    test_cfg = tiny(Config.fromfile(ROUNDS_CONFIG), arid_root,
                    tmp_path / 'test')
    test_cfg.test_cfg.num_rounds = 2
    test_cfg.load_from = str(ckpt)
    test_runner = Runner.from_cfg(test_cfg)
    metrics = test_runner.test()
    print('SimMinMax I3D, official protocol (2 rounds):', metrics)
    assert set(metrics) >= {'acc/top1', 'acc/top5'}
    # every task key of the plain model was in the SimMinMax checkpoint
    state = torch.load(ckpt, weights_only=False)['state_dict']
    assert set(test_runner.model.state_dict()) <= set(state)


# ---------------------------------------------------------------------------
# two views: independent augmentation of one clip (on the fly) and the
# offline dark copy
# ---------------------------------------------------------------------------
OFFLINE_CONFIG = CONFIG_DIR / 'simminmax_i3d_r50_arid_offline-dark.py'


def write_frames(path: Path, frames: List[np.ndarray],
                 fps: float = 10.) -> None:
    """Write RGB frames with cv2.VideoWriter (MJPG / mp4v)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*FOURCC[path.suffix]), fps,
        (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


def decode(path: Path, frame_inds) -> np.ndarray:
    """Decord's RGB frames of a video at ``frame_inds``."""
    import decord
    reader = decord.VideoReader(str(path))
    return reader.get_batch(np.asarray(frame_inds)).asnumpy()


@pytest.fixture(scope='module')
def paired_root(tmp_path_factory) -> Path:
    """Day videos of grey frames whose level codes the frame index, and a
    darker copy (half the day level + 36, plus texture: no HLS shift of
    +-35 clips it)."""
    root = tmp_path_factory.mktemp('paired')
    rng = np.random.default_rng(0)
    lines = []
    for i, (rel, label) in enumerate(FIXTURE_VIDEOS.items()):
        levels = rng.integers(60, 196, 24)
        day = [np.full((32, 40, 3), level, np.uint8) for level in levels]
        dark = [
            (frame // 2 + 36 + rng.integers(0, 4, frame.shape)).astype(
                np.uint8)
            for frame in day
        ]
        write_frames(root / 'data' / rel, day)
        write_frames(root / 'data_darken' / rel, dark)
        lines.append(f'{i}\t{label}\t{rel}')
    write_list(root / 'list.txt', lines)
    return root


def mmaction_dataset(**kwargs) -> ARIDVideoDataset:
    """An ARIDVideoDataset whose pipeline is built in mmaction's scope."""
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmaction'):
        return ARIDVideoDataset(**kwargs)


def paired_dataset(root: Path, pipeline: list, **kwargs) -> ARIDVideoDataset:
    return mmaction_dataset(
        ann_file=str(root / 'list.txt'),
        pipeline=pipeline,
        data_prefix=dict(video=str(root / 'data')),
        dark_video_prefix=str(root / 'data_darken'),
        **kwargs)


def test_dark_video_prefix_pairs_and_checks(paired_root, tmp_path):
    dataset = paired_dataset(paired_root, [])
    for info in dataset.load_data_list():
        rel = Path(info['filename']).relative_to(paired_root / 'data')
        assert info['dark_filename'] == str(paired_root / 'data_darken' /
                                            rel)
    # relative to data_root, like data_prefix
    rooted = ARIDVideoDataset(
        ann_file=str(paired_root / 'list.txt'),
        pipeline=[],
        data_root=str(paired_root),
        data_prefix=dict(video='data'),
        dark_video_prefix='data_darken')
    assert rooted.load_data_list() == dataset.load_data_list()

    with pytest.raises(FileNotFoundError,
                       match=r'(?s)3 listed video\(s\) not found.*'
                       r'dark_video_prefix.*nowhere/Drink/Drink_1_1.avi'):
        ARIDVideoDataset(
            ann_file=str(paired_root / 'list.txt'),
            pipeline=[],
            data_prefix=dict(video=str(paired_root / 'data')),
            dark_video_prefix=str(tmp_path / 'nowhere'))
    with pytest.raises(ValueError, match='is the day video folder'):
        ARIDVideoDataset(
            ann_file=str(paired_root / 'list.txt'),
            pipeline=[],
            data_prefix=dict(video=str(paired_root / 'data')),
            dark_video_prefix=str(paired_root / 'data'))


DECODE = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
]


def test_offline_dark_clip_is_read_unchanged(paired_root):
    dataset = paired_dataset(
        paired_root, DECODE + [dict(type='mmsimmm.DecodePairedDarkClip')])
    np.random.seed(0)
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        out = dataset[index]
        frame_inds = out['frame_inds']
        # the dark frames are the dark file's frames at the day indices
        expected = decode(Path(info['dark_filename']), frame_inds)
        np.testing.assert_array_equal(np.stack(out['second_imgs']), expected)
        np.testing.assert_array_equal(
            np.stack(out['imgs']), decode(Path(info['filename']),
                                          frame_inds))
        assert not np.array_equal(out['second_imgs'], out['imgs'])


def test_offline_dark_clip_refuses_a_bad_copy(paired_root, tmp_path):
    rel = 'Drink/Drink_1_1.avi'
    short = tmp_path / 'short'
    for other in FIXTURE_VIDEOS:  # every dark copy exists
        frames = [np.zeros((32, 40, 3), np.uint8)] * (20 if other == rel
                                                      else 24)
        write_frames(short / other, frames)
    dataset = mmaction_dataset(
        ann_file=str(paired_root / 'list.txt'),
        pipeline=DECODE + [dict(type='mmsimmm.DecodePairedDarkClip')],
        data_prefix=dict(video=str(paired_root / 'data')),
        dark_video_prefix=str(short))
    with pytest.raises(ValueError,
                       match=r'dark video .*short/Drink/Drink_1_1.avi has '
                       r'20 frames, its day video .*data/Drink/'
                       r'Drink_1_1.avi 24'):
        dataset[0]
    with pytest.raises(KeyError, match="'dark_filename'"):
        mmaction_dataset(
            ann_file=str(paired_root / 'list.txt'),
            pipeline=DECODE + [dict(type='mmsimmm.DecodePairedDarkClip')],
            data_prefix=dict(video=str(paired_root / 'data')))[0]


def lightness(clip: torch.Tensor) -> np.ndarray:
    """Mean HLS lightness per frame of a packed (1, 3, T, H, W) clip."""
    frames = clip[0].permute(1, 2, 3, 0).numpy().astype(np.uint8)
    return np.array([
        cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2HLS)[..., 1]
        .astype(float).mean() for f in frames
    ])


def two_view_dataset(config: Path, root: Path) -> ARIDVideoDataset:
    """The training dataset of a SimMinMax ARID config on the fixture."""
    cfg = Config.fromfile(config)
    shrink_pipeline(cfg.train_dataloader.dataset.pipeline)
    dataset = cfg.train_dataloader.dataset
    kwargs = dict(
        ann_file=str(root / 'list.txt'),
        pipeline=dataset.pipeline,
        data_prefix=dict(video=str(root / 'data')))
    if 'dark_video_prefix' in dataset:
        kwargs['dark_video_prefix'] = str(root / 'data_darken')
    return mmaction_dataset(**kwargs)


@pytest.mark.parametrize('config', [SIMMM_CONFIG, OFFLINE_CONFIG])
def test_two_views_share_frames_with_independent_augmentation(
        paired_root, config):
    dataset = two_view_dataset(config, paired_root)
    np.random.seed(0)
    differ = dict(content=0, lightness=0)
    for _ in range(4):
        for index in range(len(dataset)):
            packed = dataset[index]
            day, second = packed['inputs'], packed['second_inputs']
            assert day.shape == second.shape == (1, 3, 8, 48, 48)
            assert not torch.equal(day, second)
            day_l, second_l = lightness(day), lightness(second)
            # the frames' levels code their index: one frame draw for both
            # views, so the level changes from frame to frame agree (up to
            # the HLS round trip); the lightness shifts are drawn apart
            scale = 2 if config == OFFLINE_CONFIG else 1  # dark ~ day / 2
            np.testing.assert_allclose(
                np.diff(day_l), scale * np.diff(second_l), atol=3 * scale)
            assert np.ptp(np.diff(day_l)) > 10
            shift = day_l - scale * second_l
            differ['lightness'] += abs(shift.mean()) > 1.5
            differ['content'] += not torch.equal(day, second.flip(-1))
    assert differ['content'] == 12 and differ['lightness'] >= 9


def test_paper_configs_state_the_two_view_recipe():
    cfg = Config.fromfile(SIMMM_CONFIG)
    assert cfg.model.second_view == 'darken'
    assert cfg.model.darken_head.exposure_per_frame is True
    # BYOL as the official action code: target used, then updated; a
    # Kaiming fan_in projector (the BYOLMLP default), a PyTorch predictor
    assert cfg.model.adapt_head.target_update == 'after_use'
    assert 'weight_init' not in cfg.model.adapt_head.projector
    assert cfg.model.adapt_head.predictor.weight_init == 'pytorch'
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in pipeline].count('SampleFrames') == 1
    views = pipeline[3]
    assert views.type == 'mmsimmm.IndependentViews'
    assert (views.img_key, views.view_key) == ('imgs', 'second_imgs')
    assert pipeline[4].type == 'mmsimmm.PackTwoViews'

    offline = Config.fromfile(OFFLINE_CONFIG)
    assert offline.model.second_view == 'as_is'
    assert [s['name'] for s in offline.train_cfg.stages] == ['adapt']
    assert offline.train_dataloader.dataset.dark_video_prefix == (
        'data/NormalLight/raw/data_darken')


ACTION_CONFIGS = sorted(CONFIG_DIR.glob('*.py'))


@pytest.mark.parametrize('config', ACTION_CONFIGS, ids=lambda p: p.name)
def test_each_action_config_names_its_recipe(config):
    lines = [
        line for line in config.read_text().splitlines()
        if line.startswith('# Recipe: ')
    ]
    assert len(lines) == 1, f'{config.name}: one "# Recipe: " line'


def last_checkpoint_name(config: Path) -> str:
    cfg = Config.fromfile(config)
    assert cfg.default_hooks.checkpoint.save_last is True
    if cfg.train_cfg.type == 'mmsimmm.SimMinMaxLoop':
        return f"iter_{sum(s['iters'] for s in cfg.train_cfg.stages)}.pth"
    return f'epoch_{cfg.train_cfg.max_epochs}.pth'


def test_docs_test_the_last_checkpoint():
    """The official test loads the last checkpoint: the documented test
    commands use the last one of each config."""
    assert last_checkpoint_name(TRAIN_CONFIG) == 'epoch_10.pth'
    assert last_checkpoint_name(SIMMM_CONFIG) == 'iter_859.pth'
    assert last_checkpoint_name(OFFLINE_CONFIG) == 'iter_547.pth'
    docs = (REPO_ROOT / 'docs' / 'action_recognition.md').read_text()
    readme = (REPO_ROOT / 'configs' / 'action_recognition' /
              'README.md').read_text()
    for text in (docs, readme):
        commands = [
            line for line in text.splitlines()
            if line.startswith(
                'python tools/test.py configs/action_recognition/')
        ]
        assert commands and all(
            'iter_859.pth' in line or 'iter_547.pth' in line
            or 'epoch_10.pth' in line for line in commands), commands
    for config in (SIMMM_CONFIG, OFFLINE_CONFIG):
        assert last_checkpoint_name(config) in config.read_text()


@pytest.mark.slow
@pytest.mark.parametrize('config', [SIMMM_CONFIG, OFFLINE_CONFIG])
def test_adapt_step_dark_view(paired_root, arid_root, tmp_path, config):
    """On the fly, D darkens the second clip (not the day clip); offline,
    the dark clip of the file is used as it is: D is never called."""
    cfg = tiny_simmm(config, arid_root, tmp_path)
    cfg.train_dataloader.dataset.update(
        ann_file=str(paired_root / 'list.txt'),
        data_prefix=dict(video=str(paired_root / 'data')))
    if config == OFFLINE_CONFIG:
        cfg.train_dataloader.dataset.dark_video_prefix = str(paired_root /
                                                             'data_darken')
    runner = Runner.from_cfg(cfg)
    model = runner.model
    batch = model.data_preprocessor(
        next(iter(runner.train_dataloader)), training=True)
    day, second = batch['inputs'], batch['second_inputs']
    assert day.shape == second.shape and not torch.equal(day, second)

    darkened = []
    darken = model.darkener.forward

    def record(img, *args, **kwargs):
        darkened.append(img.detach().clone())
        return darken(img, *args, **kwargs)

    model.darkener.forward = record
    seen = []
    task_loss = model.task_model.loss

    def spy(images, samples):
        seen.append(images.detach().clone())
        return task_loss(images, samples)

    model.task_model.loss = spy
    model.set_stage('adapt')
    losses = model(**batch, mode='loss')
    assert set(losses) >= {'task.day.loss_cls', 'task.dark.loss_cls',
                           'byol.loss'}
    torch.testing.assert_close(seen[0], day)
    if config == OFFLINE_CONFIG:
        assert model.second_view == 'as_is' and darkened == []
        torch.testing.assert_close(seen[1], second)  # not re-darkened
    else:
        assert model.second_view == 'darken' and len(darkened) == 1
        # D got the second clip's frames (unit RGB), not the day clip's
        torch.testing.assert_close(
            darkened[0],
            model.pixel_space.to_unit_rgb(second).clamp(0, 1))
        assert not torch.allclose(seen[1], second)


class ParamSnapshot(Hook):
    """Copies the model's parameters before each iteration."""

    def __init__(self) -> None:
        self.params = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.params = {
            k: v.detach().clone()
            for k, v in runner.model.named_parameters()
        }


@pytest.mark.slow
@pytest.mark.parametrize(
    'config, wrong, origin',
    [(SIMMM_CONFIG, 'as_is', 'day'), (OFFLINE_CONFIG, 'darken', 'dark')],
    ids=['on-the-fly+as_is', 'offline+darken'])
def test_mismatched_second_view_is_refused_at_the_first_batch(
        paired_root, arid_root, tmp_path, config, wrong, origin):
    """Each paper config with the other ``second_view``: training stops at
    its first batch, before any optimisation step, naming the setting."""
    cfg = tiny_simmm(config, arid_root, tmp_path)
    cfg.train_dataloader.dataset.update(
        ann_file=str(paired_root / 'list.txt'),
        data_prefix=dict(video=str(paired_root / 'data')))
    if config == OFFLINE_CONFIG:
        cfg.train_dataloader.dataset.dark_video_prefix = str(paired_root /
                                                             'data_darken')
    cfg.model.second_view = wrong
    runner = Runner.from_cfg(cfg)
    snapshot = ParamSnapshot()
    runner.register_hook(snapshot, priority='LOWEST')
    with pytest.raises(ValueError,
                       match=rf"(?s)second_view='{wrong}'.*"
                       rf"second_view_origin='{origin}'.*model\.second_view"):
        runner.train()
    assert runner.iter == 0 and snapshot.params is not None
    for name, param in runner.model.named_parameters():
        assert torch.equal(param.detach(), snapshot.params[name]), name
