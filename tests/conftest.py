import os
import re

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


def pytest_collection_modifyitems(config, items):
    """Tests marked llm start the real local LLM: they run only when -m names the llm marker (-m llm).

    Done here rather than with -m 'not llm' in addopts, because a -m on the command line replaces the
    one in addopts: `pytest -m "not slow"` (the fast tier) would otherwise start the real LLM."""
    if re.search(r"\bllm\b", config.getoption("markexpr") or ""):
        return  # -m names llm: it decides
    skip = pytest.mark.skip(reason="starts the real local LLM (llama.cpp + SmolLM2): run with -m llm")
    for item in items:
        if item.get_closest_marker("llm") is not None:
            item.add_marker(skip)
