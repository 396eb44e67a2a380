"""Fixtures for data-layer tests."""

import pytest

from shd.data.shape import PreparedShape

from .builders import box_plane


@pytest.fixture
def plane() -> PreparedShape:
    return box_plane()
