# Copyright (c) mmsimmm contributors. All rights reserved.
"""Marking and reading where a two-view sample's second view came from."""
import pytest
from mmengine.structures import BaseDataElement

from mmsimmm.utils.second_view import (
    DARK_COPY,
    DAY_VIEW,
    ORIGIN_NAMES,
    SECOND_VIEW_ORIGIN,
    mark_second_view,
    second_view_origin,
)


@pytest.mark.parametrize('origin', [DAY_VIEW, DARK_COPY])
def test_mark_then_read_from_a_data_sample(origin):
    results = mark_second_view({'img': None}, origin)
    assert results[SECOND_VIEW_ORIGIN] == origin
    sample = BaseDataElement(metainfo={
        SECOND_VIEW_ORIGIN: results[SECOND_VIEW_ORIGIN]})
    assert second_view_origin(sample) == origin


def test_nothing_recorded():
    assert second_view_origin(BaseDataElement()) is None
    assert second_view_origin(None) is None


def test_unknown_origin_is_refused():
    with pytest.raises(ValueError, match="got 'night'"):
        mark_second_view({}, 'night')
    assert set(ORIGIN_NAMES) == {DAY_VIEW, DARK_COPY}
