# Copyright (c) mmsimmm contributors. All rights reserved.
"""DomainConcatDataset: named datasets in one loader, samples tagged."""
import pytest
from mmengine.dataset import BaseDataset
from mmengine.structures import BaseDataElement

from mmsimmm.datasets.domain_concat import DomainConcatDataset
from mmsimmm.registry import DATASETS

TOY = 'mmsimmm.ToyDomainDataset'  # scoped: any default scope finds it


def pack(results: dict) -> dict:
    return dict(inputs=results['value'], data_samples=BaseDataElement())


class ToyDomainDataset(BaseDataset):
    """``n`` samples whose ``value`` is ``start + index``."""

    def __init__(self, start: int = 0, n: int = 2, **kwargs):
        self.start, self.n = start, n
        super().__init__(**kwargs)

    def load_data_list(self):
        return [dict(value=self.start + i) for i in range(self.n)]


@pytest.fixture(autouse=True)
def registered_toy_dataset():
    """``type=TOY`` builds, for this module's tests only."""
    DATASETS.register_module(module=ToyDomainDataset)
    yield
    DATASETS._module_dict.pop('ToyDomainDataset')


def test_samples_carry_their_dataset_name_in_order():
    dataset = DomainConcatDataset(
        datasets=dict(
            day=dict(type=TOY, start=0, n=2),
            night=ToyDomainDataset(start=10, n=3, pipeline=[pack])),
        pipeline=[pack])
    assert len(dataset) == 5
    assert dataset.metainfo['domains'] == ['day', 'night']
    items = [dataset[i] for i in range(5)]
    assert [item['inputs'] for item in items] == [0, 1, 10, 11, 12]
    assert [item['data_samples'].domain for item in items] == \
        ['day'] * 2 + ['night'] * 3


def test_domain_key_and_lazy_init():
    dataset = DATASETS.build(
        dict(type='mmsimmm.DomainConcatDataset',
             datasets=dict(a=dict(type=TOY, n=1)),
             pipeline=[pack], domain_key='target', lazy_init=True))
    assert dataset[0]['data_samples'].target == 'a'


@pytest.mark.parametrize('datasets, pipeline, error, message', [
    ({}, None, TypeError, 'non-empty dict'),
    ([dict(type=TOY)], None, TypeError, 'non-empty dict'),
    ({'dark-zurich': dict(type=TOY)}, [pack], ValueError,
     'must be an identifier'),
    ({'a': dict(type=TOY, pipeline=[pack])}, [pack],
     ValueError, 'set only one of them'),
    ({'a': 'ToyDomainDataset'}, None, TypeError, 'config dict or a'),
])
def test_bad_arguments_are_refused(datasets, pipeline, error, message):
    with pytest.raises(error, match=message):
        DomainConcatDataset(datasets=datasets, pipeline=pipeline)


def test_pipeline_without_data_samples_is_refused():
    dataset = DomainConcatDataset(
        datasets=dict(raw=dict(type=TOY)), pipeline=[])
    with pytest.raises(TypeError, match="'raw' must pack its output"):
        dataset[0]
