# Copyright (c) mmsimmm contributors. All rights reserved.
"""mmsimmm/version.py: the version string and its parsed form."""
import pytest

from mmsimmm import version


@pytest.mark.parametrize('text, info', [
    ('0.1.0', (0, 1, 0)),
    ('1.2.3rc4', (1, 2, 3, 'rc4')),
    ('2.0', (2, 0)),
])
def test_parse_version_info(text, info):
    assert version.parse_version_info(text) == info


def test_version_info_matches_the_version():
    assert version.version_info == version.parse_version_info(
        version.__version__)
    assert all(isinstance(part, int) for part in version.version_info[:3])
