# Copyright (c) mmsimmm contributors. All rights reserved.
"""mmsimmm.apis.darken_video: a darkened copy of one video."""
import cv2
import numpy as np
import pytest
import torch

from mmsimmm.apis import VideoError, darken_video
from mmsimmm.models.darkeners import DarkeningModule


def _write_clip(path, frames=5, size=(24, 32)):
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*'XVID'), 10, size[::-1])
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    writer.release()


def test_darken_video_keeps_the_frame_count_and_darkens(tmp_path):
    src, dst = tmp_path / 'day.avi', tmp_path / 'out' / 'dark.avi'
    _write_clip(src)
    torch.manual_seed(0)
    result = darken_video(
        DarkeningModule().eval(), str(src), str(dst), exposure=0.05,
        batch_frames=2)
    assert result.frames == 5 and result.exposure == 0.05
    capture = cv2.VideoCapture(str(dst))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    capture.release()
    assert sorted(p.name for p in dst.parent.iterdir()) == ['dark.avi']


def test_darken_video_refuses_an_unreadable_file(tmp_path):
    src = tmp_path / 'broken.avi'
    src.write_bytes(b'not a video')
    with pytest.raises(VideoError):
        darken_video(DarkeningModule().eval(), str(src),
                     str(tmp_path / 'dark.avi'))
