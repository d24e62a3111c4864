# Copyright (c) mmsimmm contributors. All rights reserved.
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence, Union

from mmengine.evaluator import BaseMetric

from mmsimmm.registry import METRICS


@METRICS.register_module()
class PerDomainMetric(BaseMetric):
    """Evaluate a metric separately on each domain of one test set.

    Each sample must carry a domain tag under ``domain_key`` (e.g.
    :class:`mmsimmm.datasets.CODaNDataset` sets ``domain`` to ``'day'`` or
    ``'night'``; keep it with ``PackInputs(meta_keys=(..., 'domain'))``).
    Results are stored per sample together with their domain, so MMEngine's
    distributed collection (and its removal of padded samples) works as for
    any metric; the grouping happens in :meth:`compute_metrics` on the
    gathered results. Keys are ``<domain>/<inner key>``, e.g.
    ``day/accuracy/top1`` and ``night/accuracy/top1``.

    Args:
        metric (dict | BaseMetric): The metric computed on each domain, e.g.
            ``dict(type='mmpretrain.Accuracy', topk=(1, ))``. Its
            ``process`` receives the whole ``data_batch`` with one sample at
            a time.
        domain_key (str): The sample field holding the domain name.
            Defaults to ``'domain'``.
        collect_device (str): Device used to collect results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prepended to every key as
            ``<prefix>/<domain>/...``. Defaults to None (no prefix).
        collect_dir (str, optional): Directory for collecting results across
            ranks when ``collect_device='cpu'``. Defaults to None.
    """

    default_prefix: Optional[str] = ''

    def __init__(self,
                 metric: Union[dict, BaseMetric],
                 domain_key: str = 'domain',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        if isinstance(metric, dict):
            metric = METRICS.build(metric)
        if not isinstance(metric, BaseMetric):
            raise TypeError('PerDomainMetric: `metric` must be a config dict '
                            f'or a BaseMetric, got {type(metric)}.')
        self.metric = metric
        self.domain_key = domain_key

    @property
    def dataset_meta(self) -> Optional[dict]:
        """Optional[dict]: Meta info of the dataset, shared with the inner
        metric."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        self._dataset_meta = dataset_meta
        self.metric.dataset_meta = dataset_meta

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Let the inner metric process each sample and tag its results.

        Args:
            data_batch (Any): A batch of data from the dataloader.
            data_samples (Sequence[dict]): A batch of outputs from the model.
        """
        inner_results = self.metric.results
        for data_sample in data_samples:
            if self.domain_key not in data_sample:
                raise KeyError(
                    f'PerDomainMetric: a data sample has no '
                    f'{self.domain_key!r} field (keys: '
                    f'{sorted(data_sample)}); add it to the meta_keys of '
                    'the PackInputs transform of the test pipeline.')
            start = len(inner_results)
            self.metric.process(data_batch, [data_sample])
            self.results.append(
                (str(data_sample[self.domain_key]), inner_results[start:]))
            del inner_results[start:]

    def compute_metrics(self, results: List) -> Dict[str, Any]:
        """Run the inner metric on the gathered results of each domain.

        Args:
            results (list): ``(domain, inner results)`` pairs, one per sample.

        Returns:
            Dict[str, Any]: ``<domain>/<inner prefix>/<name>`` to value, with
            domains in sorted order.
        """
        grouped: Dict[str, list] = defaultdict(list)
        for domain, inner in results:
            grouped[domain].extend(inner)
        metrics = {}
        inner_prefix = self.metric.prefix
        for domain in sorted(grouped):
            values = self.metric.compute_metrics(grouped[domain])
            for name, value in values.items():
                key = f'{inner_prefix}/{name}' if inner_prefix else name
                metrics[f'{domain}/{key}'] = value
        return metrics
