# Copyright (c) mmsimmm contributors. All rights reserved.
"""Write a Dark Zurich test submission (CodaLab, GCMA/UIoU benchmark).

For every image under ``DATA_ROOT/rgb_anon/test/night`` the model's logits
are turned into three 1920x1080 PNGs, then zipped with the three folders at
the zip root::

    labelTrainIds/<stem>.png          uint8 Cityscapes train ids
    labelTrainIds_invalid/<stem>.png  uint8, 255 = invalid
    confidence/<stem>.png             uint16, max softmax * 65535

``<stem>`` is the image name without ``_rgb_anon.png`` (e.g.
``GOPR0356_frame_000321``); the server matches files by this prefix.
Conventions follow CIConv's ``predict_dz.py`` (the peer that ZSDA's
segmentation code is forked from): predictions and confidences are made at
the model's output size and resized to 1920x1080 with nearest
neighbour, and no pixel is marked invalid (``labelTrainIds_invalid`` is a
copy of ``labelTrainIds``, so UIoU equals IoU). ``--invalid-below T`` marks
pixels with confidence < T as 255 instead.

Use the ``*_dark-zurich-512x1024.py`` config for the official protocol
(inference at 512x1024).

Example::

    python tools/dark_zurich_submission.py \
        configs/segmentation/refinenet_r101_2xb2-100e_cityscapes-384x768_dark-zurich-512x1024.py \
        refinenet_r101_zsda_dz.pth --data-root data/dark_zurich \
        --out-dir work_dirs/dz_submission
"""  # noqa: E501
import argparse
import os
import os.path as osp
import zipfile
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

SUBMISSION_SIZE = (1080, 1920)  # (h, w) of Dark Zurich images
IMG_SUFFIX = '_rgb_anon.png'
FOLDERS = ('labelTrainIds', 'labelTrainIds_invalid', 'confidence')
INVALID_LABEL = 255


def prediction_maps(logits: torch.Tensor,
                    size: Tuple[int, int] = SUBMISSION_SIZE,
                    invalid_below: float = 0.0
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn one image's logits into the three submission maps.

    Args:
        logits (Tensor): CxHxW class scores before softmax.
        size (tuple[int, int]): Output (h, w). Defaults to (1080, 1920).
        invalid_below (float): Pixels with confidence below this are 255
            in the invalid map. Defaults to 0.0 (nothing invalid).

    Returns:
        tuple[np.ndarray]: train ids (uint8), train ids with invalid pixels
        (uint8) and confidence * 65535 (uint16), each of ``size``.
    """
    if logits.dim() != 3:
        raise ValueError(f'Expected CxHxW logits, got {tuple(logits.shape)}')
    if logits.shape[0] > INVALID_LABEL:
        raise ValueError(f'{logits.shape[0]} classes do not fit uint8 ids.')
    probs = logits.detach().float().softmax(dim=0)
    confidence, labels = probs.max(dim=0)
    labels = labels.to(torch.uint8).cpu().numpy()
    confidence = torch.round(confidence * 65535).to(torch.int32)
    confidence = confidence.cpu().numpy().astype(np.uint16)
    height, width = size
    if labels.shape != (height, width):
        labels = cv2.resize(
            labels, (width, height), interpolation=cv2.INTER_NEAREST)
        confidence = cv2.resize(
            confidence, (width, height), interpolation=cv2.INTER_NEAREST)
    invalid = labels.copy()
    invalid[confidence < invalid_below * 65535] = INVALID_LABEL
    return labels, invalid, confidence


def write_submission(predictions: Iterable[Tuple[str, torch.Tensor]],
                     out_dir: str,
                     zip_path: Optional[str] = None,
                     size: Tuple[int, int] = SUBMISSION_SIZE,
                     invalid_below: float = 0.0) -> List[str]:
    """Write the three PNG folders and zip them.

    Args:
        predictions (Iterable[tuple[str, Tensor]]): ``(stem, logits)`` per
            image, logits CxHxW.
        out_dir (str): Folder that receives the three sub-folders.
        zip_path (str, optional): Zip file; defaults to
            ``<out_dir>/submission.zip``.
        size (tuple[int, int]): Output (h, w). Defaults to (1080, 1920).
        invalid_below (float): See :func:`prediction_maps`.
            Defaults to 0.0.

    Returns:
        list[str]: The stems written, in order.
    """
    for folder in FOLDERS:
        os.makedirs(osp.join(out_dir, folder), exist_ok=True)
    stems: List[str] = []
    for stem, logits in predictions:
        if stem in stems:
            raise ValueError(f'Duplicate image stem {stem!r}.')
        maps = prediction_maps(logits, size, invalid_below)
        for folder, array in zip(FOLDERS, maps):
            path = osp.join(out_dir, folder, f'{stem}.png')
            if not cv2.imwrite(path, array):
                raise OSError(f'cv2.imwrite failed for {path}')
        stems.append(stem)
    if not stems:
        raise ValueError('No predictions to write.')
    zip_path = zip_path or osp.join(out_dir, 'submission.zip')
    with zipfile.ZipFile(zip_path, 'w', zipfile.ZIP_DEFLATED) as archive:
        for folder in FOLDERS:
            for stem in stems:
                archive.write(
                    osp.join(out_dir, folder, f'{stem}.png'),
                    arcname=f'{folder}/{stem}.png')
    print(f'Wrote {len(stems)} images x {len(FOLDERS)} maps to {zip_path}')
    return stems


def find_test_images(img_dir: str) -> List[str]:
    """Sorted ``*_rgb_anon.png`` files under ``img_dir`` (recursive)."""
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'{img_dir} does not exist.')
    paths = sorted(
        osp.join(dirpath, name)
        for dirpath, _, names in os.walk(img_dir) for name in names
        if name.endswith(IMG_SUFFIX))
    if not paths:
        raise FileNotFoundError(f'No *{IMG_SUFFIX} images under {img_dir}.')
    return paths


def predict_logits(config: str,
                   checkpoint: str,
                   img_paths: Sequence[str],
                   device: str = 'cpu',
                   cfg_options: Optional[dict] = None
                   ) -> Iterator[Tuple[str, torch.Tensor]]:
    """Yield ``(stem, logits)`` for each image with mmseg's inference API.

    Logits come at the test pipeline's ``ori_shape`` (512x1024 with the
    ``*_dark-zurich-512x1024.py`` config).
    """
    from mmseg.apis import inference_model, init_model
    model = init_model(config, checkpoint, device=device,
                       cfg_options=cfg_options)
    for path in img_paths:
        result = inference_model(model, path)
        yield osp.basename(path)[:-len(IMG_SUFFIX)], result.seg_logits.data


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Write a Dark Zurich test submission zip.')
    parser.add_argument('config', help='mmseg test config')
    parser.add_argument('checkpoint', help='model checkpoint')
    parser.add_argument(
        '--data-root',
        default='data/dark_zurich',
        help='Dark Zurich root (default: data/dark_zurich)')
    parser.add_argument(
        '--img-dir',
        default='rgb_anon/test/night',
        help='test images, relative to --data-root '
        '(default: rgb_anon/test/night)')
    parser.add_argument(
        '--out-dir', required=True, help='output folder for the PNGs')
    parser.add_argument(
        '--zip', help='zip path (default: <out-dir>/submission.zip)')
    parser.add_argument(
        '--invalid-below',
        type=float,
        default=0.0,
        help='mark pixels with confidence below this as invalid (255) in '
        'labelTrainIds_invalid (default: 0, nothing invalid)')
    parser.add_argument('--device', default='cpu', help='e.g. cuda:0')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, as in mmseg tools/test.py')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    """Command-line entry point; returns the written stems."""
    args = parse_args(argv)
    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} does not exist.')
    img_paths = find_test_images(osp.join(args.data_root, args.img_dir))
    predictions = predict_logits(args.config, args.checkpoint, img_paths,
                                 args.device, args.cfg_options)
    return write_submission(
        predictions,
        args.out_dir,
        zip_path=args.zip,
        invalid_below=args.invalid_below)


if __name__ == '__main__':
    main()
