# Copyright (c) mmsimmm contributors. All rights reserved.
"""Several evaluation sets in one loader, each sample tagged with its set."""
import copy
from typing import Dict, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset, ConcatDataset

from mmsimmm.registry import DATASETS


@DATASETS.register_module()
class DomainConcatDataset(ConcatDataset):
    """Concatenate named datasets; every sample carries its dataset's name.

    MMEngine runs one validation dataloader per run. To validate on several
    targets at once (e.g. the official segmentation run, which keeps one
    best checkpoint per target: Cityscapes val, Nighttime Driving and Dark
    Zurich val), concatenate them here and score them with
    :class:`mmsimmm.evaluation.PerDomainMetric`: each packed sample gets
    ``domain=<name>`` in its data-sample metainfo, so the metric computes
    the inner metric per set and reports ``<name>/<metric>`` keys (e.g.
    ``dark_zurich/mIoU``), which ``CheckpointHook(save_best=[...])`` can
    select on one by one::

        val_dataloader = dict(dataset=dict(
            type='mmsimmm.DomainConcatDataset',
            datasets=dict(cityscapes=..., dark_zurich=...),
            pipeline=test_pipeline))
        val_evaluator = dict(type='mmsimmm.PerDomainMetric',
                             metric=dict(type='IoUMetric'))

    Args:
        datasets (dict[str, dict | BaseDataset]): Name -> dataset (config
            or object), in evaluation order. Names are used in metric keys
            and file names, so use letters, digits and ``_``.
        pipeline (list[dict], optional): A pipeline shared by all datasets
            given as configs; those configs must then not set their own
            ``pipeline``. Defaults to None (each config brings its own).
        domain_key (str): The metainfo field that holds the name. Defaults
            to 'domain'.
        lazy_init (bool): As in :class:`mmengine.dataset.ConcatDataset`.
            Defaults to False.
        ignore_keys (str | list[str], optional): Metainfo keys that may
            differ between the datasets (checked otherwise, as in
            :class:`mmengine.dataset.ConcatDataset`). Defaults to None.
    """

    def __init__(self,
                 datasets: Dict[str, Union[dict, BaseDataset]],
                 pipeline: Optional[Sequence[dict]] = None,
                 domain_key: str = 'domain',
                 lazy_init: bool = False,
                 ignore_keys: Union[str, List[str], None] = None) -> None:
        if not isinstance(datasets, dict) or not datasets:
            raise TypeError('DomainConcatDataset: `datasets` must be a '
                            'non-empty dict of name -> dataset, got '
                            f'{type(datasets).__name__}')
        built = []
        for name, dataset in datasets.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f'DomainConcatDataset: dataset name {name!r}'
                                 ' must be an identifier (used in metric '
                                 'keys and checkpoint names)')
            if isinstance(dataset, dict) and pipeline is not None:
                if 'pipeline' in dataset:
                    raise ValueError(
                        f'DomainConcatDataset: dataset {name!r} sets its own '
                        'pipeline and a shared `pipeline` is given; set only '
                        'one of them')
                dataset = dict(copy.deepcopy(dataset), pipeline=pipeline)
            elif not isinstance(dataset, (dict, BaseDataset)):
                raise TypeError(f'DomainConcatDataset: dataset {name!r} must '
                                'be a config dict or a BaseDataset, got '
                                f'{type(dataset).__name__}')
            if isinstance(dataset, dict):
                dataset = DATASETS.build(dataset)
            built.append(dataset)
        self.domains = list(datasets)
        self.domain_key = domain_key
        super().__init__(built, lazy_init=lazy_init, ignore_keys=ignore_keys)
        self._metainfo.update(domains=list(self.domains))

    def __getitem__(self, idx: int) -> dict:
        """The packed sample ``idx`` with its dataset's name in metainfo."""
        if not self._fully_initialized:
            self.full_init()
        dataset_idx, sample_idx = self._get_ori_dataset_idx(idx)
        data = self.datasets[dataset_idx][sample_idx]
        samples = data.get('data_samples') if isinstance(data, dict) else None
        if samples is None or not hasattr(samples, 'set_metainfo'):
            raise TypeError(
                'DomainConcatDataset: the pipeline of dataset '
                f'{self.domains[dataset_idx]!r} must pack its output with '
                "a 'data_samples' data element (e.g. PackSegInputs), got "
                f'{type(data).__name__}')
        samples.set_metainfo({self.domain_key: self.domains[dataset_idx]})
        return data
