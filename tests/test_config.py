"""Config loading: EasyTPP layout, lamp sections, unknown keys, bad files."""
import re
import textwrap

import pytest

from lamp import config
from lamp.config import ConfigError

EASYTPP = textwrap.dedent("""
    pipeline_config_id: runner_config
    data:
      taxi:
        data_format: json
        train_dir: ./data/taxi/train.json
        valid_dir: ./data/taxi/dev.json
        test_dir: ./data/taxi/test.json
        data_specs:
          num_event_types: 10
          pad_token_id: 10
          padding_side: right
          truncation_side: right
    NHP_train:
      base_config: {stage: train, backend: torch, dataset_id: taxi, runner_id: std_tpp, model_id: NHP,
                    base_dir: ./checkpoints/}
      trainer_config: {seed: 2019, gpu: -1, batch_size: 256, max_epoch: 20, shuffle: false, optimizer: adam,
                       learning_rate: 1.e-3, valid_freq: 1, use_tfb: false, metrics: [acc, rmse]}
      model_config:
        hidden_size: 64
        loss_integral_num_sample_per_step: 20
        thinning: {num_seq: 10, num_sample: 1, num_exp: 500, look_ahead_time: 10, patience_counter: 5,
                   over_sample_rate: 5, num_samples_boundary: 5, dtime_max: 5, num_step_gen: 1}
        model_specs: {anything: goes}
""")


def test_easytpp_config_loads_as_is():
    cfg = config.loads(EASYTPP, "NHP_train")
    assert cfg.dataset_id == "taxi"
    assert cfg.data["data_specs"]["num_event_types"] == 10
    assert cfg.experiment["model_config"]["thinning"]["num_exp"] == 500
    assert cfg.lamp["task"] == "object"  # defaults are filled in


def test_lamp_block_beside_easytpp_experiments():
    text = EASYTPP + textwrap.dedent("""
        lamp:
          abduction: {backend: none}
        LAMP_taxi:
          base_config: {stage: lamp, dataset_id: taxi}
          lamp: {task: next_type, num_candidates: 5, ranker: {epochs: 3}}
    """)
    cfg = config.loads(text)  # the only lamp block is chosen
    assert cfg.experiment_id == "LAMP_taxi"
    assert cfg.lamp["task"] == "next_type" and cfg.lamp["num_candidates"] == 5
    assert cfg.lamp["ranker"]["epochs"] == 3 and cfg.lamp["ranker"]["width"] == 64
    assert cfg.lamp["abduction"]["backend"] == "none"
    assert set(cfg.experiments) == {"NHP_train", "LAMP_taxi"}


@pytest.mark.parametrize("old, new, expected", [
    ("hidden_size: 64", "hiden_size: 64", "did you mean 'hidden_size'"),
    ("model_specs: {anything: goes}", "dropout: 0.1", "model_config.dropout"),
    ("num_exp: 500", "num_exps: 500", "did you mean 'num_exp'"),
    ("pad_token_id: 10", "pad_token: 10", "did you mean 'pad_token_id'"),
    ("data_format: json", "data_format: csv", "data_format must be one of"),
])
def test_unknown_keys_are_errors(old, new, expected):
    text = EASYTPP.replace(old, new)
    with pytest.raises(ConfigError, match=expected):
        config.loads(text, "NHP_train")
    if "must be one of" not in expected:
        with pytest.warns(UserWarning, match="ignored"):
            config.loads(text, "NHP_train", strict=False)


def test_lamp_section_errors():
    base = "data: {d: {data_format: tkg, data_dir: lamp://icews14}}\n"
    with pytest.raises(ConfigError, match="did you mean 'num_candidates'"):
        config.loads(base + "E: {lamp: {num_candidate: 3}}")
    with pytest.raises(ConfigError, match="lamp.task must be one of"):
        config.loads(base + "E: {lamp: {task: subject}}")
    with pytest.raises(ConfigError, match="did you mean 'ranker'"):
        config.loads(base + "lamp: {rankr: {}}")
    with pytest.raises(ConfigError, match="unknown top-level key 'dta'"):
        config.loads(base + "dta: 3")
    with pytest.raises(ConfigError, match="experiment 'F' is not in the config"):
        config.loads(base + "E: {lamp: {}}", "F")
    with pytest.raises(ConfigError, match="dataset_id='x' is not in data"):
        config.loads(base + "E: {base_config: {dataset_id: x}, lamp: {}}")


def test_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such config"):
        config.load(tmp_path / "none.yaml")
    (tmp_path / "empty.yaml").write_text("  \n")
    with pytest.raises(ConfigError, match="empty"):
        config.load(tmp_path / "empty.yaml")
    (tmp_path / "bad.yaml").write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(tmp_path / "bad.yaml")


def test_shipped_config_loads_bundled_data():
    import os

    import lamp

    path = os.path.join(os.path.dirname(lamp.__file__), "configs", "icews14_object.yaml")
    cfg = config.load(path)
    store = cfg.load_data()
    assert len(store.test) == 7371 and cfg.lamp["num_candidates"] == 20


def test_tkg_folder_relative_to_config(tmp_path):
    folder = tmp_path / "kg"
    folder.mkdir()
    (folder / "entity2id.txt").write_text("A\t0\nB\t1\n")
    (folder / "relation2id.txt").write_text("r\t0\n")
    for split, t in (("train", 0), ("valid", 1), ("test", 2)):
        (folder / f"{split}.txt").write_text(f"0\t0\t1\t{t}\n")
    (tmp_path / "c.yaml").write_text("data: {kg: {data_format: tkg, data_dir: kg}}\nE: {lamp: {}}\n")
    store = config.load(tmp_path / "c.yaml").load_data()
    assert store.num_entities == 2 and len(store.test) == 1


# ---------------------------------------------------------------- --set overrides

_OVERRIDE_CONFIG = """
data:
  icews14: {data_format: tkg, data_dir: lamp://icews14}
EXP:
  base_config: {stage: lamp, dataset_id: icews14}
  lamp: {task: object, num_candidates: 20}
"""


def _leaf_keys(mapping, prefix="lamp"):
    from lamp.config import ANY

    for key, value in mapping.items():
        if value is ANY:
            continue
        if isinstance(value, dict):
            yield from _leaf_keys(value, f"{prefix}.{key}")
        else:
            yield f"{prefix}.{key}"


def test_set_overrides_typed_values_and_nested_keys():
    from lamp.config import loads

    cfg = loads(_OVERRIDE_CONFIG, overrides=["lamp.num_candidates=10", "lamp.abduction.backend=none",
                                             "lamp.ranker.dropout=0.25", "lamp.evaluation.ablations=[no_llm]",
                                             "lamp.query_limit=null", "lamp.abduction.verify_tls=false"])
    assert cfg.lamp["num_candidates"] == 10 and cfg.lamp["abduction"]["backend"] == "none"
    assert cfg.lamp["ranker"]["dropout"] == 0.25 and cfg.lamp["ranker"]["width"] == 64  # siblings kept
    assert cfg.lamp["evaluation"]["ablations"] == ["no_llm"] and cfg.lamp["query_limit"] is None
    assert cfg.lamp["abduction"]["verify_tls"] is False
    assert cfg.resolved()["lamp"]["num_candidates"] == 10


@pytest.mark.parametrize("item, words", [
    ("lamp.num_candidate=10", "did you mean 'num_candidates'"),
    ("lamp.ranker.widht=8", "did you mean 'width'"),
    ("num_candidates=10", "must start with 'lamp.' or 'data.'"),
    ("lamp.num_candidates", "expected KEY=VALUE"),
    ("lamp..seed=1", "must start with"),
    ("data.other.data_dir=x", "uses data set 'icews14'"),
    ("lamp.seed=[1", "not valid YAML"),
])
def test_set_overrides_bad_keys_are_config_errors(item, words):
    from lamp.config import ConfigError, loads

    with pytest.raises(ConfigError, match=re.escape(words)):
        loads(_OVERRIDE_CONFIG, overrides=[item])


def test_set_override_of_every_known_key_round_trips():
    """Property: any known lamp key set to any YAML scalar ends up in the resolved config as that value,
    or (since the lamp section has a typed schema, lamp.schema) is a ConfigError naming the key."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from lamp.config import LAMP_DEFAULTS, loads

    keys = sorted(_leaf_keys(LAMP_DEFAULTS))
    keys.remove("lamp.task")  # the task is checked against the task names
    scalars = st.one_of(st.integers(-10**6, 10**6), st.booleans(),
                        st.floats(allow_nan=False, allow_infinity=False, width=32),
                        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))

    @settings(max_examples=200, deadline=None)
    @given(st.sampled_from(keys), scalars)
    def check(key, value):
        import yaml

        text = yaml.safe_dump(value, default_flow_style=True).strip()
        if text.endswith("\n..."):
            text = text[:-4].strip()
        try:
            cfg = loads(_OVERRIDE_CONFIG, overrides=[f"{key}={text}"])
        except ConfigError as exc:
            assert key in str(exc)
            return
        node = cfg.lamp
        for part in key.split(".")[1:]:
            node = node[part]
        assert node == yaml.safe_load(text)

    check()
