# Copyright (c) mmsimmm contributors. All rights reserved.
"""tools/darken_video.py on tiny .avi/.mp4 clips written by the test."""
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Tuple

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import mmsimmm  # noqa: F401
from mmsimmm.apis import ExposureNoise, sample_level
from mmsimmm.models.darkeners import exposure_noise_map

REPO_ROOT = Path(__file__).resolve().parents[2]
FOURCC = {'.avi': 'XVID', '.mp4': 'mp4v'}
CLIPS = {'Drink/Drink_1_1.avi': 10., 'yt0AbCdEf_3_7.mp4': 12.}  # -> fps
WIDTH, HEIGHT, FRAMES = 40, 32, 8


def load_tool() -> ModuleType:
    path = REPO_ROOT / 'tools' / 'darken_video.py'
    spec = importlib.util.spec_from_file_location('darken_video', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def write_clip(path: Path, fps: float, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*FOURCC[path.suffix]), fps,
        (WIDTH, HEIGHT))
    assert writer.isOpened()
    rng = np.random.default_rng(seed)
    for index in range(FRAMES):
        frame = rng.integers(100, 200, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        frame[:, :4 * index] = 230  # a moving bright bar
        writer.write(frame)
    writer.release()


def read_video(path: Path) -> Tuple[np.ndarray, float]:
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return np.stack(frames), fps


class ScalingDarkener(nn.Module):
    """A trained-like stub: ``img * exposure``; records the maps it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: List[torch.Tensor] = []

    def forward(self, img: torch.Tensor,
                exposure: torch.Tensor) -> torch.Tensor:
        assert img.shape[1:] == (3, HEIGHT, WIDTH)
        assert exposure.shape == (img.shape[0], 1, HEIGHT, WIDTH)
        assert 0 <= img.min() and img.max() <= 1
        self.calls.append(exposure.clone())
        return img * exposure


@pytest.fixture
def videos(tmp_path) -> Path:
    src = tmp_path / 'src'
    for seed, (rel, fps) in enumerate(CLIPS.items()):
        write_clip(src / rel, fps, seed)
    return src


@pytest.fixture
def stub(monkeypatch) -> ScalingDarkener:
    darkener = ScalingDarkener()
    monkeypatch.setattr(tool, 'build_darkener', lambda *args: darkener)
    return darkener


def run(src: Path, dst: Path, *extra: str) -> int:
    return tool.main([str(src), str(dst), '--checkpoint', 'trained.pth',
                      '--batch-frames', '3', *extra])


def test_round_trip_keeps_format_and_darkens(videos, tmp_path, stub,
                                             capsys):
    dst = tmp_path / 'dst'
    assert run(videos, dst, '--seed', '1') == 0
    assert 'Darkened 2 video(s) (16 frames), skipped 0 existing, failed 0' \
        in capsys.readouterr().out
    assert sorted(p.relative_to(dst).as_posix()
                  for p in dst.rglob('*') if p.is_file()) == sorted(CLIPS)

    maps: Dict[str, torch.Tensor] = {}
    # batches of 3, 3 and 2 frames per video, videos in sorted order
    assert [len(call) for call in stub.calls] == [3, 3, 2] * 2
    for index, (rel, fps) in enumerate(sorted(CLIPS.items())):
        source, _ = read_video(videos / rel)
        darkened, out_fps = read_video(dst / rel)
        assert darkened.shape == (FRAMES, HEIGHT, WIDTH, 3)
        assert out_fps == pytest.approx(fps)
        assert darkened.mean() < 0.4 * source.mean()
        # one exposure map per video, the same for every frame
        calls = torch.cat(stub.calls[3 * index:3 * index + 3])
        assert (calls == calls[:1]).all()
        maps[rel] = calls[0, 0]
    first, second = maps.values()
    assert not torch.equal(first, second)
    for exposure in maps.values():
        # level in [0, 0.2] plus noise of sigma ~0.025 (pixel + patch)
        assert -0.1 < exposure.mean() < 0.3
        assert 0.01 < exposure.std() < 0.08


def test_resume_skips_complete_outputs(videos, tmp_path, stub, capsys):
    dst = tmp_path / 'dst'
    assert run(videos, dst) == 0
    first_run = {rel: read_video(dst / rel)[0] for rel in CLIPS}
    stub.calls.clear()
    capsys.readouterr()

    assert run(videos, dst) == 0
    assert stub.calls == []
    assert 'Darkened 0 video(s) (0 frames), skipped 2 existing' in \
        capsys.readouterr().out

    # an interrupted run leaves only a temporary file: it is redone
    redo = 'yt0AbCdEf_3_7.mp4'
    (dst / redo).unlink()
    (dst / (tool.TEMP_PREFIX + redo)).write_bytes(b'partial')
    assert run(videos, dst) == 0
    assert 'Darkened 1 video(s) (8 frames), skipped 1 existing' in \
        capsys.readouterr().out
    assert not (dst / (tool.TEMP_PREFIX + redo)).exists()
    # the same seed per video gives the same result
    np.testing.assert_array_equal(read_video(dst / redo)[0],
                                  first_run[redo])


def test_unreadable_video_is_reported(videos, tmp_path, stub, capsys):
    (videos / 'Jump').mkdir()
    (videos / 'Jump' / 'broken.avi').write_bytes(b'not a video' * 20)
    dst = tmp_path / 'dst'
    assert run(videos, dst) == 1
    out = capsys.readouterr().out
    assert 'Darkened 2 video(s) (16 frames), skipped 0 existing, failed 1' \
        in out
    assert f'FAILED {videos}/Jump/broken.avi' in out
    assert not (dst / 'Jump' / 'broken.avi').exists()
    assert all((dst / rel).is_file() for rel in CLIPS)


def test_bad_arguments_fail_before_work(videos, tmp_path):
    with pytest.raises(ValueError, match='must not be'):
        tool.main([str(videos), str(videos / 'dark'), '--checkpoint', 'x'])
    with pytest.raises(ValueError, match='--exposure-range'):
        tool.main([str(videos), str(tmp_path / 'd'), '--checkpoint', 'x',
                   '--exposure-range', '0.3', '0.1'])
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        tool.main([str(videos), str(tmp_path / 'd'), '--checkpoint',
                   str(tmp_path / 'missing.pth')])
    assert not (tmp_path / 'd').exists()


def test_untrained_default_darkener(videos, tmp_path):
    dst = tmp_path / 'dst'
    assert tool.main([str(videos), str(dst), '--checkpoint', 'none',
                      '--seed', '2']) == 0
    for rel, fps in CLIPS.items():
        darkened, out_fps = read_video(dst / rel)
        assert darkened.shape == (FRAMES, HEIGHT, WIDTH, 3)
        assert out_fps == pytest.approx(fps)


def expected_map(seed: int, rel: str, grid: Tuple[int, int]) -> torch.Tensor:
    """The exposure map of one video written out by hand: E from the
    video's generator, then patch noise on a ``grid`` of cells, bilinearly
    up-sampled, then pixel noise (both sigma 0.025)."""
    generator = torch.Generator().manual_seed(tool.path_seed(seed, rel))
    level = sample_level((0.0, 0.2), generator)
    patch = torch.randn((1, 1) + grid, generator=generator) * 0.025
    patch = torch.nn.functional.interpolate(
        patch, size=(HEIGHT, WIDTH), mode='bilinear', align_corners=False)
    pixel = torch.randn((1, 1, HEIGHT, WIDTH), generator=generator) * 0.025
    return (level + patch + pixel)[0, 0]


def test_official_preset_one_map_per_video_with_16px_floor_cells(
        videos, tmp_path, stub):
    args = tool.parse_args(['src', 'dst', '--checkpoint', 'x', '--preset',
                            'official'])
    assert (tuple(args.exposure_range), args.noise_std, args.patch_ratio,
            args.patch_grid) == ((0.0, 0.2), 0.025, 16, 'floor')
    # explicit options override the preset
    assert tool.parse_args(['src', 'dst', '--checkpoint', 'x', '--preset',
                            'official', '--patch-grid',
                            'ceil']).patch_grid == 'ceil'

    assert run(videos, tmp_path / 'dst', '--preset', 'official', '--seed',
               '4') == 0
    for index, rel in enumerate(sorted(CLIPS)):
        calls = torch.cat(stub.calls[3 * index:3 * index + 3])
        assert len(calls) == FRAMES and (calls == calls[:1]).all()
        # 40x32 frames: floor(32/16) x floor(40/16) = 2 x 2 cells (a ceil
        # grid would have 2 x 3)
        torch.testing.assert_close(calls[0, 0],
                                   expected_map(4, rel, (2, 2)))
        assert not torch.allclose(calls[0, 0], expected_map(4, rel, (2, 3)))
    # per video: another E and another map
    first, second = stub.calls[0][0, 0], stub.calls[3][0, 0]
    assert abs(first.mean() - second.mean()) > 1e-3


def test_preset_is_checked(videos, tmp_path):
    with pytest.raises(SystemExit):
        tool.parse_args(['src', 'dst', '--checkpoint', 'x', '--preset',
                         'unknown'])


def test_floor_grid_is_checked():
    levels = torch.zeros(1)
    maps = exposure_noise_map(levels, (17, 40), patch_grid='floor')
    assert maps.shape == (1, 1, 17, 40)
    with pytest.raises(ValueError, match='smaller than one 16-pixel'):
        exposure_noise_map(levels, (8, 40), patch_grid='floor')
    with pytest.raises(ValueError, match="patch_grid must be one of"):
        exposure_noise_map(levels, (32, 40), patch_grid='round')
    with pytest.raises(ValueError, match='noise grid must be one of'):
        ExposureNoise(grid='round')
