# Copyright (c) mmsimmm contributors. All rights reserved.
"""Where the second view of a two-view sample came from.

The transforms that create a second view record its origin in the results
under :data:`SECOND_VIEW_ORIGIN`; ``mmsimmm.PackTwoViews`` copies it into
the metainfo of the packed data sample, where it survives collation and
the data preprocessor. ``mmsimmm.SimMinMax`` compares it with its
``second_view`` setting before it trains on a batch, so an on-the-fly
pipeline is never trained on an undarkened "dark" view and an offline dark
copy is never darkened twice.
"""
from typing import Any, Optional

#: Results / metainfo key of the second view's origin.
SECOND_VIEW_ORIGIN = 'second_view_origin'
#: An independent view of the day sample (``mmsimmm.IndependentViews``):
#: still a day image, which SimMinMax must darken.
DAY_VIEW = 'day'
#: An offline dark copy read from disk (``mmsimmm.LoadPairedDarkImage``,
#: ``mmsimmm.DecodePairedDarkClip``): already dark, used as it is.
DARK_COPY = 'dark'
#: What each origin is, for messages.
ORIGIN_NAMES = {
    DAY_VIEW: 'an independent view of the day sample (mmsimmm.'
    'IndependentViews)',
    DARK_COPY: 'an offline dark copy read from disk (mmsimmm.'
    'LoadPairedDarkImage / mmsimmm.DecodePairedDarkClip)',
}


def mark_second_view(results: dict, origin: str) -> dict:
    """Record the origin of the second view in a results dict.

    Args:
        results (dict): The results of a data pipeline.
        origin (str): :data:`DAY_VIEW` or :data:`DARK_COPY`.

    Returns:
        dict: ``results``, marked.
    """
    if origin not in ORIGIN_NAMES:
        raise ValueError(f'the second view origin must be one of '
                         f'{sorted(ORIGIN_NAMES)}, got {origin!r}')
    results[SECOND_VIEW_ORIGIN] = origin
    return results


def second_view_origin(data_sample: Any) -> Optional[str]:
    """The second view origin recorded in a packed data sample, or None.

    Args:
        data_sample: A data sample (``BaseDataElement``) or None.

    Returns:
        str, optional: The recorded origin; None if nothing is recorded.
    """
    return getattr(data_sample, SECOND_VIEW_ORIGIN, None)
