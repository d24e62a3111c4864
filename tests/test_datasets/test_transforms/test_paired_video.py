# Copyright (c) mmsimmm contributors. All rights reserved.
"""DecodePairedDarkClip with a fake decoder (no video files).

Real videos through the ARID pipeline: tests/test_datasets/test_arid.py.
"""
import numpy as np
import pytest

from mmsimmm.datasets.transforms.paired_video import DecodePairedDarkClip
from mmsimmm.registry import TRANSFORMS
from mmsimmm.utils.second_view import DARK_COPY, SECOND_VIEW_ORIGIN

FRAMES, H, W = 6, 4, 5


def video(value: int, frames: int = FRAMES, h: int = H, w: int = W):
    """Frame ``i`` of the video is filled with ``value + i``."""
    return [np.full((h, w, 3), value + i, np.uint8) for i in range(frames)]


def with_fake_decord(transform: DecodePairedDarkClip, videos: dict):
    """Replace Decord by ``videos`` (file name -> list of frames)."""

    def init(results):
        name = results['filename']
        if name not in videos:
            raise RuntimeError(f'cannot open {name}')
        return dict(results, total_frames=len(videos[name]),
                    frames=videos[name])

    def decode(results):
        return dict(results, imgs=[results['frames'][i]
                                   for i in results['frame_inds']])

    transform.init, transform.decode = init, decode
    return transform


def day_results(**extra):
    day = video(0)
    inds = np.array([1, 3, 4])
    return dict(filename='day.mp4', dark_filename='dark.mp4',
                total_frames=FRAMES, frame_inds=inds,
                imgs=[day[i] for i in inds], **extra)


class AddOne:
    """A stand-in augmentation: shifts the frames, records it ran."""

    def __call__(self, results):
        results['imgs'] = [img + 1 for img in results['imgs']]
        results['augmented'] = True
        return results


def test_dark_frames_at_the_day_indices_augmented_on_their_own():
    transform = with_fake_decord(
        DecodePairedDarkClip(transforms=[AddOne()]),
        {'dark.mp4': video(100)})
    results = transform(day_results())
    assert [int(img[0, 0, 0]) for img in results['second_imgs']] == \
        [102, 104, 105]  # dark frames 1, 3, 4, then + 1
    assert [int(img[0, 0, 0]) for img in results['imgs']] == [1, 3, 4]
    assert 'augmented' not in results  # only the dark clip is kept
    assert results[SECOND_VIEW_ORIGIN] == DARK_COPY


def test_built_from_config_with_its_own_keys():
    transform = TRANSFORMS.build(
        dict(type='mmsimmm.DecodePairedDarkClip', filename_key='night',
             view_key='night_imgs'))
    with_fake_decord(transform, {'n.mp4': video(50)})
    results = transform(day_results(night='n.mp4'))
    assert [int(img[0, 0, 0]) for img in results['night_imgs']] == \
        [51, 53, 54]


@pytest.mark.parametrize('videos, results, error, message', [
    ({'dark.mp4': video(9, frames=5)}, {}, ValueError, 'has 5 frames'),
    ({'dark.mp4': video(9, h=8)}, {}, ValueError, 'native resolution'),
    ({}, {}, ValueError, 'cannot be opened'),
    ({'dark.mp4': video(9)}, dict(second_imgs=[]), KeyError,
     'already hold'),
    ({'dark.mp4': video(9)}, dict(img_shape=(2, 2), original_shape=(H, W)),
     ValueError, 'must come before the day clip is augmented'),
])
def test_mismatches_are_refused(videos, results, error, message):
    transform = with_fake_decord(DecodePairedDarkClip(), videos)
    with pytest.raises(error, match=message):
        transform(day_results(**results))


def test_missing_keys_and_bad_view_key():
    transform = with_fake_decord(DecodePairedDarkClip(), {})
    results = day_results()
    del results['dark_filename']
    with pytest.raises(KeyError, match='dark_video_prefix'):
        transform(results)
    with pytest.raises(ValueError, match="must not be 'imgs'"):
        DecodePairedDarkClip(view_key='imgs')
