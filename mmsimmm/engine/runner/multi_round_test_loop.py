# Copyright (c) mmsimmm contributors. All rights reserved.
"""A test loop that averages class scores over repeated random passes.

This implements the ARID test protocol of the official ZSDA action code
(``test.py``): every video is seen in ``num_rounds`` passes over the test
set, each pass drawing ONE random clip per video; the softmax scores of the
rounds are averaged per video and only then evaluated (top-1/top-5).
"""
import logging
import random
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.runner import TestLoop, autocast
from mmengine.structures import BaseDataElement
from torch.utils.data import DataLoader

from mmsimmm.registry import LOOPS

_SEED_MODULUS = 2**32
# Tolerance when checking that predicted scores are probabilities.
_PROB_ATOL = 1e-3


def seed_round_worker(worker_id: int, num_workers: int, rank: int, seed: int,
                      inner: Optional[Callable[[int], None]] = None) -> None:
    """Seed a data worker for one round (after the configured init fn).

    The worker seed follows MMEngine's rule
    ``num_workers * rank + worker_id + seed``.

    Args:
        worker_id (int): Worker id in ``[0, num_workers)``.
        num_workers (int): Workers per rank.
        rank (int): Process rank.
        seed (int): The round seed.
        inner (Callable, optional): The dataloader's original
            ``worker_init_fn``, called first. Defaults to None.
    """
    if inner is not None:
        inner(worker_id)
    _seed_everything(num_workers * rank + worker_id + seed)


def _seed_everything(seed: int) -> None:
    seed %= _SEED_MODULUS
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@LOOPS.register_module()
class MultiRoundTestLoop(TestLoop):
    """Test loop averaging each sample's scores over several random rounds.

    Each round is a full pass of the test dataloader. With a random clip
    sampler in the pipeline (e.g. mmaction ``SampleFrames`` with
    ``test_mode=False``) every round sees a different clip of each video.
    The ``pred_score`` of every sample is summed over the rounds by
    ``sample_idx`` and divided by ``num_rounds``; the evaluator then sees one
    averaged prediction per sample. Use ``average_clips='prob'`` in the head
    so that softmax probabilities are averaged (the loop warns otherwise).

    Randomness: before round ``r`` the loop seeds Python, NumPy and torch of
    this process with ``seed + r * stride + rank`` and sets the dataloader's
    ``worker_init_fn`` so that worker ``w`` of rank ``k`` is seeded with
    ``seed + r * stride + num_workers * k + w`` (MMEngine's rule), where
    ``stride = world_size * max(num_workers, 1)``, so no two (round, rank,
    worker) share a seed and a run is reproducible. With
    ``persistent_workers=True`` the workers are seeded once, in round 0,
    and later rounds continue their random streams (still different clips,
    still reproducible).

    Requirements: the test pipeline's ``PackActionInputs`` must keep
    ``'sample_idx'`` in ``meta_keys``, and the metrics must only use
    ``data_samples`` (``data_batch`` is None when the averaged predictions
    are processed), as mmaction's ``AccMetric`` does.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The test dataloader or its config.
        evaluator (Evaluator | dict | list): The evaluator or its config.
        num_rounds (int): Passes over the test set. Defaults to 20 (the
            official ARID protocol).
        seed (int, optional): Base seed of the rounds. Defaults to None,
            which uses the runner's seed.
        fp16 (bool): Run the model under autocast. Defaults to False.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 num_rounds: int = 20,
                 seed: Optional[int] = None,
                 fp16: bool = False) -> None:
        if not isinstance(num_rounds, int) or num_rounds < 1:
            raise ValueError(
                f'num_rounds must be a positive int, got {num_rounds!r}')
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        self.num_rounds = num_rounds
        self.seed = seed
        self._worker_init_fn = self.dataloader.worker_init_fn
        self._warned_not_prob = False

    def round_seed(self, round_idx: int) -> int:
        """Return the base seed of round ``round_idx`` (before rank/worker).

        Args:
            round_idx (int): The round, from 0.

        Returns:
            int: The round seed.
        """
        base = self.seed if self.seed is not None else self.runner.seed
        if base is None:
            base = 0
        stride = get_world_size() * max(self.dataloader.num_workers, 1)
        return base + round_idx * stride

    def _seed_round(self, round_idx: int) -> None:
        seed = self.round_seed(round_idx)
        rank = self.runner.rank
        _seed_everything(seed + rank)
        num_workers = self.dataloader.num_workers
        if num_workers > 0:
            self.dataloader.worker_init_fn = partial(
                seed_round_worker,
                num_workers=num_workers,
                rank=rank,
                seed=seed,
                inner=self._worker_init_fn)

    def run_round(self, round_idx: int) -> List[BaseDataElement]:
        """Run one seeded pass over the test set.

        :meth:`run` calls it once per round; a direct call needs the
        ``before_test_epoch`` hooks to have run (e.g. after ``runner.test``).

        Args:
            round_idx (int): The round, from 0.

        Returns:
            List[BaseDataElement]: The model's outputs of this round, in
            dataloader order.
        """
        self._seed_round(round_idx)
        outputs: List[BaseDataElement] = []
        for idx, data_batch in enumerate(self.dataloader):
            outputs.extend(self.run_iter(idx, data_batch))
        return outputs

    def run(self) -> dict:
        """Run all rounds, then evaluate the averaged scores."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        self.test_loss.clear()

        score_sums: Dict[int, torch.Tensor] = {}
        counts: Dict[int, int] = {}
        samples: Dict[int, BaseDataElement] = {}  # first-round order
        for round_idx in range(self.num_rounds):
            print_log(
                f'Multi-round test: round {round_idx + 1}/{self.num_rounds}',
                logger='current')
            for sample in self.run_round(round_idx):
                key = self._sample_key(sample)
                score = sample.pred_score.detach().float().cpu()
                self._check_probabilities(score)
                if key in score_sums:
                    score_sums[key] += score
                    counts[key] += 1
                else:
                    score_sums[key] = score.clone()
                    counts[key] = 1
                    samples[key] = sample
        wrong = {key: n for key, n in counts.items() if n != self.num_rounds}
        if wrong:
            raise RuntimeError(
                f'Every sample must be seen once per round ({self.num_rounds}'
                f' times); these sample_idx were not: {wrong}')

        averaged = []
        for key, sample in samples.items():
            score = score_sums[key] / self.num_rounds
            sample = sample.clone()
            sample.pred_score = score
            if 'pred_label' in sample:
                sample.pred_label = score.argmax(dim=-1, keepdim=True)
            averaged.append(sample)
        batch_size = self.dataloader.batch_size or 1
        for start in range(0, len(averaged), batch_size):
            self.evaluator.process(
                data_samples=averaged[start:start + batch_size],
                data_batch=None)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))

        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    @torch.no_grad()
    def run_iter(self, idx: int,
                 data_batch: Sequence[dict]) -> List[BaseDataElement]:
        """Predict one batch (no evaluation; that happens after all rounds).

        Args:
            idx (int): Batch index within the round.
            data_batch (Sequence[dict]): A batch from the dataloader.

        Returns:
            List[BaseDataElement]: The model's predictions.
        """
        self.runner.call_hook(
            'before_test_iter', batch_idx=idx, data_batch=data_batch)
        with autocast(enabled=self.fp16):
            outputs = self.runner.model.test_step(data_batch)
        self.runner.call_hook(
            'after_test_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)
        return outputs

    @staticmethod
    def _sample_key(sample: BaseDataElement) -> int:
        if 'sample_idx' not in sample.metainfo:
            raise KeyError(
                'MultiRoundTestLoop needs the dataset index of every '
                "prediction: add 'sample_idx' to the meta_keys of "
                'PackActionInputs in the test pipeline')
        return int(sample.metainfo['sample_idx'])

    def _check_probabilities(self, score: torch.Tensor) -> None:
        if self._warned_not_prob:
            return
        total = float(score.sum())
        if score.min() < 0 or abs(total - 1.0) > _PROB_ATOL:
            self._warned_not_prob = True
            print_log(
                'MultiRoundTestLoop: pred_score is not a probability '
                f'vector (sum {total:.4f}); set average_clips="prob" in '
                'the head to average softmax scores as the official '
                'protocol does.',
                logger='current',
                level=logging.WARNING)
