"""Fuzzing the config checks: each shipped config with one field of its lamp section mutated.

Property: ``lamp.config.loads`` either accepts the mutated config or raises a ``ConfigError`` whose
message names the mutated key path; no other exception escapes (no pydantic ValidationError, no
TypeError, no crash later).  The mutation goes into the file's experiment block or through a
``--set`` override.  Bounded (a few hundred examples) so it runs in seconds.
"""
import glob
import math
import os

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import lamp  # noqa: E402
from lamp import config  # noqa: E402
from lamp.config import names, schema  # noqa: E402
from lamp.config.schema import LampSection  # noqa: E402
from lamp.errors import ConfigError  # noqa: E402

CONFIGS = sorted(glob.glob(os.path.join(os.path.dirname(lamp.__file__), "configs", "*.yaml")))


def _experiments():
    out = []
    for path in CONFIGS:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
        for key, block in raw.items():
            if key not in config.TOP_LEVEL and isinstance(block, dict) and "lamp" in block:
                out.append((os.path.basename(path), key, raw))
    return out


EXPERIMENTS = _experiments()
KEY_PATHS = schema.key_paths()
BLOCKS = ["lamp"] + [p for p in KEY_PATHS if not p.count(".") > 1 and p not in schema.key_paths(leaves_only=True)]

NAMES = ["object", "relation", "pair", "next_type", "next_time", "bm25", "dense", "entity", "openai", "local",
         "oracle", "none", "replay", "opnai", "float64", "binary", "ranker", "no_llm", "minilm", "hawkes",
         "kg_hawkes", "OPENAI_API_KEY", "sk-not-a-name", "http://127.0.0.1:1/v1", "1e-3", "ten", "", " "]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-3, 20000), st.integers(), st.integers(-(10**80), 10**80),
    st.floats(), st.floats(-3.0, 3.0), st.sampled_from([0.0, 1.0, 2.0, 0.5, 1e300, -1e-300, math.inf, math.nan]),
    st.sampled_from(NAMES),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.lists(st.sampled_from(["no_llm", "random_evidence", "recent_evidence", "x"]), max_size=4),
    st.dictionaries(st.text(alphabet="abcdefghij_", min_size=1, max_size=8), scalars, max_size=4),
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(alphabet="abcxyz", min_size=1, max_size=3), inner, max_size=3), max_leaves=30),
)


def _set(node: dict, parts: list, value) -> None:
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _flow(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text[:-4].strip() if text.endswith("\n...") else text


@st.composite
def mutations(draw):
    name, experiment, raw = draw(st.sampled_from(EXPERIMENTS))
    if draw(st.integers(0, 5)) == 0:  # an unknown key in a block
        block = draw(st.sampled_from(BLOCKS))
        known = {p.rsplit(".", 1)[1] for p in KEY_PATHS if p.rsplit(".", 1)[0] == block}
        key = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).filter(
            lambda k: k not in known))
        path = f"{block}.{key}"
    else:
        path = draw(st.sampled_from(KEY_PATHS))
    return name, experiment, raw, path, draw(values), draw(st.booleans())


# derandomized: the same 400 examples every run, so CI cannot fail on a draw it never saw before (an
# integer beyond 2**53 for a float key was found by a random draw and is now a case of test_config.py)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
          database=None)
@pytest.mark.slow
@given(mutations())
def test_one_mutated_field_is_accepted_or_a_config_error_naming_it(mutation):
    name, experiment, raw, path, value, via_set = mutation
    parts = path.split(".")[1:]
    overrides = None
    if via_set:
        text = yaml.safe_dump(raw, sort_keys=False)
        overrides = [f"{path}={_flow(value)}"]
    else:
        mutated = yaml.safe_load(yaml.safe_dump(raw, sort_keys=False))
        block = mutated[experiment].get("lamp")
        if not isinstance(block, dict):
            block = mutated[experiment]["lamp"] = {}
        _set(block, parts, value)
        text = yaml.safe_dump(mutated, sort_keys=False, width=10**6)
    try:
        cfg = config.loads(text, experiment, path=name, overrides=overrides)
    except ConfigError as exc:
        assert path in str(exc), (path, value, str(exc))
        assert "Traceback" not in str(exc)
        return
    # accepted: the section is the typed, frozen schema, and it holds the value where it is a leaf
    assert isinstance(cfg.lamp, LampSection) and cfg.lamp.model_config["frozen"]
    node = cfg.lamp
    for part in parts:
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    if path in schema.key_paths(leaves_only=True) and not isinstance(value, dict):
        assert node == value or (isinstance(value, float) and math.isnan(value))


def test_every_shipped_config_loads():
    assert len(EXPERIMENTS) >= len(CONFIGS)
    for name, experiment, raw in EXPERIMENTS:
        cfg = config.loads(yaml.safe_dump(raw, sort_keys=False), experiment, path=name)
        assert cfg.lamp.task in names.TASKS
