import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")


@pytest.fixture(scope="session")
def shared_data():
    """The read-only real data sets beside the repository (../shared/data)."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"{SHARED_DATA} is not present (the real data sets live beside the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def icews14():
    from lamp.datasets import load_icews14

    return load_icews14()
