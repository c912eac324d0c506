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
    assert cfg.lamp.task == "next_type"  # defaults are filled in (a typed data set: next_type)


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
    assert cfg.lamp.task == "next_type" and cfg.lamp.num_candidates == 5
    assert cfg.lamp.ranker.epochs == 3 and cfg.lamp.ranker.width == 64
    assert cfg.lamp.abduction.backend == "none"
    assert set(cfg.experiments) == {"NHP_train", "LAMP_taxi"}


@pytest.mark.parametrize("old, new, expected", [
    ("hidden_size: 64", "hiden_size: 64", "did you mean 'hidden_size'"),
    ("model_specs: {anything: goes}", "dropout: 0.1", "model_config.dropout"),
    ("num_exp: 500", "num_exps: 500", "did you mean 'num_exp'"),
    ("pad_token_id: 10", "pad_token: 10", "did you mean 'pad_token_id'"),
])
def test_keys_easytpp_ignores_are_one_warning(old, new, expected):
    # EasyTPP's config classes ignore keys they do not know: so does lamp in EasyTPP's blocks, with one warning
    text = EASYTPP.replace(old, new)
    with pytest.warns(UserWarning, match="EasyTPP ignores these keys") as record:
        config.loads(text, "NHP_train")
    assert len(record) == 1 and expected in str(record[0].message)


def test_an_unknown_data_format_is_an_error():
    with pytest.raises(ConfigError, match="data_format must be one of"):
        config.loads(EASYTPP.replace("data_format: json", "data_format: csv"), "NHP_train")


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
    assert len(store.test) == 7371 and cfg.lamp.num_candidates == 20


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


def _leaf_keys():
    from lamp.config import schema

    return [p for p in schema.key_paths(leaves_only=True) if p != "lamp.proposer.params"]


def test_set_overrides_typed_values_and_nested_keys():
    from lamp.config import loads

    cfg = loads(_OVERRIDE_CONFIG, overrides=["lamp.num_candidates=10", "lamp.abduction.backend=none",
                                             "lamp.ranker.dropout=0.25", "lamp.evaluation.ablations=[no_llm]",
                                             "lamp.query_limit=null", "lamp.abduction.verify_tls=false"])
    assert cfg.lamp.num_candidates == 10 and cfg.lamp.abduction.backend == "none"
    assert cfg.lamp.ranker.dropout == 0.25 and cfg.lamp.ranker.width == 64  # siblings kept
    assert cfg.lamp.evaluation.ablations == ["no_llm"] and cfg.lamp.query_limit is None
    assert cfg.lamp.abduction.verify_tls is False
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
    or (since the lamp section has a typed schema, lamp.config.schema) is a ConfigError naming the key."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from lamp.config import loads

    keys = sorted(_leaf_keys())
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
            node = getattr(node, part)
        assert node == yaml.safe_load(text)

    check()


# ---------------------------------------------------------------- the typed schema (lamp.config.schema)

_BASE = "data: {d: {data_format: tkg, data_dir: lamp://icews14}}\nE: {lamp: {}}\n"


def _load_with(*sets, text=_BASE, **kwargs):
    return config.loads(text, overrides=list(sets), **kwargs)


def test_settings_are_the_typed_frozen_schema_with_its_defaults():
    """A loaded config's lamp section is the schema's model (frozen: no stage can change it, and no stage
    needs a fallback default), its defaults are the schema's, and the key tree used for "did you mean"
    is the schema's own."""
    import pydantic

    from lamp.config import schema
    from lamp.config.loader import _lamp_schema

    cfg = config.loads(_BASE)
    assert isinstance(cfg.lamp, schema.LampSection) and cfg.lamp == schema.LampSection()
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        cfg.lamp.ranker.width = 8
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        cfg.lamp.task = "pair"
    assert cfg.lamp.ranker.width == schema.default_of("lamp.ranker.width") == 64
    assert cfg.lamp.m == 20 and cfg.lamp.proposer_model == "kg_hawkes"
    assert cfg.with_overrides("lamp.task=next_type").lamp.proposer_model == "hawkes"
    assert cfg.with_overrides("lamp.train_query_limit=200").lamp.valid_limit == 50
    assert cfg.lamp.valid_limit is None
    tree = _lamp_schema()
    assert set(tree) == set(schema.LampSection.model_fields) and tree["proposer"]["params"] is None

    def flat(node, prefix):
        for key, sub in node.items():
            yield from flat(sub, f"{prefix}.{key}") if isinstance(sub, dict) else [f"{prefix}.{key}"]

    assert set(flat(tree, "lamp")) == set(schema.key_paths(leaves_only=True))


def test_with_overrides_is_checked_like_set():
    cfg = config.loads(_BASE)
    assert cfg.with_overrides("lamp.ranker.width=8").lamp.ranker.width == 8 and cfg.lamp.ranker.width == 64
    with pytest.raises(ConfigError, match="did you mean 'width'"):
        cfg.with_overrides("lamp.ranker.widht=8")
    with pytest.raises(ConfigError, match="lamp.ranker.heads=3 must divide lamp.ranker.width=64"):
        cfg.with_overrides("lamp.ranker.heads=3")


@pytest.mark.parametrize("setting, words", [
    ("lamp.task=subject", "lamp.task must be one of"),
    ("lamp.num_candidates=ten", "lamp.num_candidates: 'ten' is not an integer"),
    ("lamp.num_candidates=0", "lamp.num_candidates: 0 is too small"),
    ("lamp.num_candidates=-1", "lamp.num_candidates: -1 is too small"),
    ("lamp.num_candidates=1", "num_candidates must be at least 2"),
    ("lamp.num_candidates=2.9", "lamp.num_candidates: 2.9 is not an integer"),
    ("lamp.num_candidates=2.0", "lamp.num_candidates: 2.0 is not an integer"),
    ("lamp.num_candidates=true", "lamp.num_candidates: true is not an integer"),
    ("lamp.num_candidates=10001", "lamp.num_candidates: 10001 is too large"),
    ("lamp.query_limit=0", "lamp.query_limit: 0 is too small"),
    ("lamp.train_query_limit=abc", "lamp.train_query_limit: 'abc' is not an integer"),
    ("lamp.valid_query_limit=-2", "lamp.valid_query_limit: -2 is too small"),
    ("lamp.seed=-1", "lamp.seed: -1 is too small"),
    ("lamp.seed=1.5", "lamp.seed: 1.5 is not an integer"),
    ("lamp.seed=abc", "lamp.seed: 'abc' is not an integer"),
    ("lamp.num_candidates=1000000", "lamp.num_candidates: 1000000 is too large"),
    ("lamp.matching.causes_top_k=-1", "lamp.matching.causes_top_k: -1 is too small"),
    ("lamp.evaluation.bootstrap=-1", "lamp.evaluation.bootstrap: -1 is too small"),
    ("lamp.run_dir=3", "lamp.run_dir: 3 is not a string"),
    ("lamp.proposer.model=hawks", "lamp.proposer.model: 'hawks' is not one of the choices"),
    ("lamp.proposer.params=[1]", "lamp.proposer.params: [1] is not a mapping"),
    ("lamp.proposer.params={1: 2}", "lamp.proposer.params: {1: 2} has a key 1 that is not a string"),
    ("lamp.abduction.backend=opnai", "lamp.abduction.backend: 'opnai' is not one of the choices; "
                                     "lamp.abduction.backend must be one of 'local', 'openai'"),
    ("lamp.abduction.num_shots=65", "lamp.abduction.num_shots: 65 is too large"),
    ("lamp.abduction.num_shots=-1", "lamp.abduction.num_shots: -1 is too small"),
    ("lamp.abduction.temperature=2.5", "lamp.abduction.temperature: 2.5 is too large"),
    ("lamp.abduction.temperature=.nan", "lamp.abduction.temperature: nan is not a finite number"),
    ("lamp.abduction.max_tokens=0", "lamp.abduction.max_tokens: 0 is too small"),
    ("lamp.abduction.max_tokens=32769", "lamp.abduction.max_tokens: 32769 is too large"),
    ("lamp.abduction.concurrency=0", "lamp.abduction.concurrency: 0 is too small"),
    ("lamp.abduction.concurrency=1025", "lamp.abduction.concurrency: 1025 is too large"),
    ("lamp.abduction.max_retries=101", "lamp.abduction.max_retries: 101 is too large"),
    ("lamp.abduction.timeout=0", "lamp.abduction.timeout: 0 is too small; lamp.abduction.timeout must be a number > 0"),
    ("lamp.abduction.timeout=.inf", "lamp.abduction.timeout: inf is not a finite number"),
    ("lamp.abduction.verify_tls=1", "lamp.abduction.verify_tls: 1 is not true or false"),
    ("lamp.abduction.verify_tls=yes_please", "lamp.abduction.verify_tls: 'yes_please' is not true or false"),
    ("lamp.abduction.base_url=ftp://x", "lamp.abduction.base_url: 'ftp://x' does not start with http://"),
    ("lamp.matching.method=faiss", "lamp.matching.method: 'faiss' is not one of the choices; "
                                   "lamp.matching.method must be 'bm25' or 'dense'"),
    ("lamp.matching.scope=sequence", "lamp.matching.scope must be null or 'entity'"),
    ("lamp.matching.causes_top_k=0", "lamp.matching.causes_top_k: 0 is too small"),
    ("lamp.matching.causes_top_k=1001", "lamp.matching.causes_top_k: 1001 is too large"),
    ("lamp.matching.evidence_length=0", "lamp.matching.evidence_length: 0 is too small"),
    ("lamp.matching.k1=-0.5", "lamp.matching.k1: -0.5 is too small"),
    ("lamp.matching.b=1.5", "lamp.matching.b: 1.5 is too large"),
    ("lamp.matching.k1=9007199254740993", "lamp.matching.k1: 9007199254740993 is an integer too large to be held "
                                         "exactly as a number"),
    ("lamp.matching.embedder=faiss", "lamp.matching.embedder: 'faiss' is not 'minilm' or a mapping"),
    ("lamp.matching.embedder={backend: openai}", "lamp.matching.embedder: {'backend': 'openai'} has backend 'openai' "
                                                 "but no base_url"),
    ("lamp.matching.embedder={batch_size: 0}", "lamp.matching.embedder: {'batch_size': 0} has a batch_size that is "
                                               "not an integer >= 1"),
    ("lamp.ranker.width=7", "lamp.ranker.width: 7 is not even"),
    ("lamp.ranker.width=0", "lamp.ranker.width: 0 is too small"),
    ("lamp.ranker.width=8192", "lamp.ranker.width: 8192 is too large"),
    ("lamp.ranker.heads=0", "lamp.ranker.heads must be an integer >= 1"),
    ("lamp.ranker.heads=3", "lamp.ranker.heads=3 must divide lamp.ranker.width=64"),
    ("lamp.ranker.layers=-1", "lamp.ranker.layers must be an integer >= 0"),
    ("lamp.ranker.layers=17", "lamp.ranker.layers: 17 is too large"),
    ("lamp.ranker.dropout=1.0", "lamp.ranker.dropout: 1.0 is too large; lamp.ranker.dropout must be a number >= 0 "
                                "and < 1"),
    ("lamp.ranker.epochs=-1", "lamp.ranker.epochs: -1 is too small"),
    ("lamp.ranker.epochs=0", "lamp.ranker.epochs: 0 is too small"),
    ("lamp.ranker.epochs=10001", "lamp.ranker.epochs: 10001 is too large"),
    ("lamp.ranker.batch_size=0", "lamp.ranker.batch_size: 0 is too small"),
    ("lamp.ranker.learning_rate=0", "lamp.ranker.learning_rate: 0 is too small"),
    ("lamp.ranker.learning_rate=1e-3", "write 1.0e-3"),
    ("lamp.ranker.weight_decay=-1.0e-5", "lamp.ranker.weight_decay: -1e-05 is too small"),
    ("lamp.ranker.patience=0", "lamp.ranker.patience: 0 is too small"),
    ("lamp.ranker.clip=-1", "lamp.ranker.clip: -1 is too small"),
    ("lamp.ranker.loss=hinge", "lamp.ranker.loss must be 'softmax' or 'binary'"),
    ("lamp.ranker.precision=float16", "lamp.ranker.precision must be 'float32' or 'float64'"),
    ("lamp.ranker.use_proposer_score=1", "lamp.ranker.use_proposer_score: 1 is not true or false"),
    ("lamp.ranker.agreement=yes_sir", "lamp.ranker.agreement: 'yes_sir' is not true or false"),
    ("lamp.ranker.selection=best", "lamp.ranker.selection must be 'bootstrap' or 'ranker'"),
    ("lamp.ranker.selection_p=0", "lamp.ranker.selection_p: 0 is too small"),
    ("lamp.ranker.selection_p=1.5", "lamp.ranker.selection_p: 1.5 is too large"),
    ("lamp.evaluation.bootstrap=0", "lamp.evaluation.bootstrap: 0 is too small"),
    ("lamp.evaluation.bootstrap=1000001", "lamp.evaluation.bootstrap: 1000001 is too large"),
    ("lamp.evaluation.ablations=[no_llm, no_llm]", "lamp.evaluation.ablations: ['no_llm', 'no_llm'] lists 'no_llm' "
                                                   "twice"),
    ("lamp.evaluation.ablations=[no_llm, llm]", "lamp.evaluation.ablations[1]: 'llm' is not one of the choices"),
    ("lamp.evaluation.ablations=no_llm", "lamp.evaluation.ablations: 'no_llm' is not a list"),
    ("lamp.evaluation.ablations=null", "lamp.evaluation.ablations: null is not a list"),
    ("lamp.evaluation.plot=1", "lamp.evaluation.plot: 1 is not true or false"),
    ("lamp.ranker=5", "lamp.ranker: 5 is not a mapping"),
    ("lamp.ranker=null", "lamp.ranker: null is not a mapping"),
])
def test_schema_rejects_each_bad_value(setting, words):
    """Every key's type, range and choices: a ConfigError naming the key path, the value and what is
    allowed; no silent coercion of "ten", 2.9, 2.0, true or 1."""
    with pytest.raises(ConfigError) as info:
        _load_with(setting)
    message = str(info.value)
    assert words in message
    key = setting.split("=")[0]
    assert len(message.splitlines()) == 1 and message.startswith(key)
    assert " must " in message  # what is allowed


def test_next_time_with_a_million_candidates_is_refused_before_any_sampling():
    """next_time draws M samples per query by thinning: a huge M would run without end."""
    with pytest.raises(ConfigError) as info:
        _load_with("lamp.task=next_time", "lamp.num_candidates=1000000")
    lines = str(info.value).splitlines()
    assert len(lines) == 1 and lines[0].startswith("lamp.num_candidates: 1000000 is too large"), lines


@pytest.mark.parametrize("setting", [
    "lamp.num_candidates=2", "lamp.num_candidates=10000", "lamp.num_candidates=null", "lamp.query_limit=1",
    "lamp.seed=4294967295", "lamp.abduction.backend=oracle", "lamp.abduction.num_shots=0",
    "lamp.abduction.temperature=2", "lamp.abduction.temperature=0", "lamp.abduction.timeout=0.5",
    "lamp.abduction.max_retries=0", "lamp.abduction.api_key_env=OPENAI_API_KEY", "lamp.matching.scope=entity",
    "lamp.matching.b=0", "lamp.matching.b=1", "lamp.matching.k1=0", "lamp.matching.method=dense",
    "lamp.matching.embedder=minilm", "lamp.matching.embedder={backend: minilm, batch_size: 8}",
    "lamp.matching.embedder={backend: openai, base_url: 'http://h/v1', model: m, api_key_env: K}",
    "lamp.ranker.width=2", "lamp.ranker.width=4096", "lamp.ranker.heads=64", "lamp.ranker.layers=0",
    "lamp.ranker.layers=16", "lamp.ranker.dropout=0", "lamp.ranker.selection_p=1", "lamp.ranker.clip=0",
    "lamp.ranker.learning_rate=1.0e-3", "lamp.evaluation.ablations=[]", "lamp.evaluation.bootstrap=1000000",
    "lamp.proposer.params=null", "lamp.proposer.params={half_lives: [1, 30]}",
])
def test_schema_accepts_boundary_values(setting):
    _load_with(setting)


def test_integers_are_accepted_for_numbers_and_come_back_as_floats():
    cfg = _load_with("lamp.abduction.timeout=30", "lamp.ranker.clip=2")
    assert cfg.lamp.abduction.timeout == 30.0 and isinstance(cfg.lamp.abduction.timeout, float)
    assert isinstance(cfg.lamp.ranker.clip, float)


def test_every_problem_is_reported_at_once_one_line_each():
    text = ("data: {d: {data_format: tkg, data_dir: lamp://icews14}}\n"
            "lamp: {ranker: {epochs: -1}}\n"
            "E: {lamp: {num_candidates: ten, num_candidate: 3, abduction: {backend: opnai}}}\n")
    with pytest.raises(ConfigError) as info:
        config.loads(text, overrides=["lamp.evaluation.bootstrap=0", "lamp.ranker.widht=8"])
    lines = str(info.value).splitlines()
    assert len(lines) == 6, lines
    for words in ("unknown key 'E.lamp.num_candidate'; did you mean 'num_candidates'",
                  "unknown key 'lamp.ranker.widht'; did you mean 'width'",
                  "lamp.num_candidates: 'ten' is not an integer", "lamp.abduction.backend: 'opnai'",
                  "lamp.ranker.epochs: -1 is too small", "lamp.evaluation.bootstrap: 0 is too small"):
        assert sum(words in line for line in lines) == 1, (words, lines)


def test_cross_key_rules():
    kg = _BASE
    typed = _BASE.replace("{lamp: {}}", "{lamp: {task: next_type}}")
    with pytest.raises(ConfigError, match="lamp.matching.scope 'entity' needs lamp.matching.method 'bm25'"):
        _load_with("lamp.matching.scope=entity", "lamp.matching.method=dense", text=kg)
    with pytest.raises(ConfigError, match="knowledge-graph lamp.task") as info:
        _load_with("lamp.matching.scope=entity", text=typed)
    assert "'next_type'" in str(info.value)
    with pytest.raises(ConfigError, match="lamp.matching.method 'dense' with lamp.task 'next_type'"):
        _load_with("lamp.matching.method=dense", text=typed)
    with pytest.raises(ConfigError, match=re.escape("lamp.ranker.heads=4 must divide lamp.ranker.width=6")):
        _load_with("lamp.ranker.width=6", "lamp.ranker.heads=4")
    with pytest.raises(ConfigError, match="backend 'openai' needs lamp.abduction.base_url and lamp.abduction.model"):
        _load_with("lamp.abduction.backend=openai")
    _load_with("lamp.abduction.backend=openai", "lamp.abduction.base_url=http://127.0.0.1:8080/v1",
               "lamp.abduction.model=m")
    _load_with("lamp.matching.scope=entity", "lamp.task=pair")


@pytest.mark.parametrize("secret", ["sk-live-SECRET123", "sk_live SECRET123", "12SECRET123", "SECRET123\n"])
def test_api_key_env_value_is_never_echoed(secret):
    """A user may put the key itself into api_key_env: the error says it is not a variable name but
    never prints it (file, --set, invalid YAML in --set, the embedder's api_key_env)."""
    import json

    text = _BASE.replace("{lamp: {}}", "{lamp: {abduction: {api_key_env: %s}}}" % json.dumps(secret))
    for attempt in (lambda: config.loads(text),
                    lambda: _load_with(f"lamp.abduction.api_key_env={json.dumps(secret)}"),
                    lambda: _load_with(f"lamp.abduction.api_key_env=[{secret}"),
                    lambda: _load_with("lamp.matching.embedder={backend: openai, base_url: 'http://h', model: m, "
                                       f"api_key_env: {json.dumps(secret)}}}"),
                    lambda: _load_with("lamp.matching.embedder={backend: openai, base_url: 'http://h', "
                                       f"api_key_env: {json.dumps(secret)}}}"),
                    lambda: _load_with(f"lamp.matching.embedder={{api_key_env: {json.dumps(secret)}, x: 1}}")):
        with pytest.raises(ConfigError) as info:
            attempt()
        assert "SECRET123" not in str(info.value) and "api_key_env" in str(info.value)
    with pytest.raises(ConfigError, match="not a valid environment variable name") as info:
        config.loads(text)
    with pytest.raises(ConfigError, match="api_key_env: the value .* is not a string") as info:
        _load_with("lamp.abduction.api_key_env=123456")
    assert "123456" not in str(info.value)


def test_overrides_are_validated_like_the_file():
    with pytest.raises(ConfigError, match="lamp.ranker.epochs: -1 is too small"):
        config.loads(_OVERRIDE_CONFIG, overrides=["lamp.ranker.epochs=-1"])
    # an override can also repair a bad value of the file: the merged section is what is checked
    bad = _OVERRIDE_CONFIG.replace("num_candidates: 20", "num_candidates: 0")
    assert config.loads(bad, overrides=["lamp.num_candidates=10"]).lamp.num_candidates == 10


def test_strict_false_drops_unknown_lamp_keys_with_a_warning():
    text = _BASE.replace("{lamp: {}}", "{lamp: {num_candidate: 3, ranker: {widht: 8}}}")
    with pytest.warns(UserWarning, match="ignored"):
        cfg = config.loads(text, strict=False)
    assert "num_candidate" not in cfg.lamp and "widht" not in cfg.lamp.ranker


# ---------------------------------------------------------------- YAML bounds

def _alias_bomb(levels=9, fan=9):
    lines = ["data: {d: {data_format: tkg, data_dir: lamp://icews14}}", "E:", "  lamp:", "    proposer:",
             "      params:", "        a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"        a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_fails_fast(tmp_path):
    import time

    text = _alias_bomb()
    assert len(text) < 1100  # expands to 9**9 (387 million) strings
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="lamp.proposer.params|aliases"):
        config.loads(text)
    (tmp_path / "bomb.yaml").write_text(text)
    with pytest.raises(ConfigError, match="once YAML aliases are expanded"):
        config.load(tmp_path / "bomb.yaml")
    with pytest.raises(ConfigError, match="once YAML aliases are expanded"):
        config.loads(_BASE, overrides=["lamp.proposer.params={a: &a [1,1,1,1,1,1,1,1,1,1], b: &b [*a,*a,*a,*a,*a,"
                                       "*a,*a,*a,*a,*a], c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], d: &d [*c,*c,*c,*c,"
                                       "*c,*c,*c,*c,*c,*c], e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]}"])
    assert time.perf_counter() - started < 2.0


def test_yaml_bounds_small_anchors_recursion_depth_and_size(tmp_path):
    # a few anchors are fine (shared settings)
    text = ("data: {d: {data_format: tkg, data_dir: lamp://icews14}}\n"
            "lamp: {ranker: &r {epochs: 3, width: 16}}\nE: {lamp: {ranker: *r}}\n")
    assert config.loads(text).lamp.ranker.epochs == 3
    with pytest.raises(ConfigError, match="recursive"):
        config.loads(_BASE + "lamp: {proposer: {params: &p {x: *p}}}\n")
    deep = "[" * 70 + "]" * 70
    with pytest.raises(ConfigError, match="nested deeper than 64"):
        config.loads(_BASE + f"lamp: {{proposer: {{params: {{x: {deep}}}}}}}\n")
    with pytest.raises(ConfigError, match="lamp.proposer.params: .* is nested deeper than 8 levels"):
        config.loads(_BASE + "lamp: {proposer: {params: {x: [[[[[[[[[1]]]]]]]]]}}}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.loads(_BASE + "lamp: {proposer: {params: {x: " + "[" * 5000 + "]" * 5000 + "}}}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.loads(_BASE + "lamp: {seed: " + "9" * 5000 + "}\n")
    big = tmp_path / "big.yaml"
    big.write_text(_BASE + "# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match="more than the limit of 1024 KiB"):
        config.load(big)
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        config.loads(big.read_text())
    (tmp_path / "latin1.yaml").write_bytes(b"data: {}\n# caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(tmp_path / "latin1.yaml")


def test_docs_reference_is_generated_from_the_schema():
    """docs/configuration.md's reference is exactly what the schema generates (every key with its default,
    what it accepts and what it means), and `lamp config --reference` prints the same table."""
    import os
    import subprocess
    import sys

    from lamp.config import schema
    from lamp.config.reference import END, START, reference_markdown, replace_reference

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "configuration.md")
    if not os.path.exists(path):
        pytest.skip("needs the source tree")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert replace_reference(text) == text, "run: python scripts/config_reference.py"
    table = text.split(START, 1)[1].split(END, 1)[0]
    for key in schema.key_paths():
        assert f"| `{key[len('lamp.'):]}` |" in table and schema.allowed(key) in table, key
    assert "| `ranker.start_from_prior` | true |" in table and "| `abduction.backend` | `local` |" in table
    assert "--set" in text and "1 MiB" in text and "alias" in text
    printed = subprocess.run([sys.executable, "-m", "lamp", "config", "--reference"], capture_output=True, text=True,
                             check=True).stdout
    assert printed.strip() == reference_markdown().strip()
