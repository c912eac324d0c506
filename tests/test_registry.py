"""A proposer defined here, registered once, run from YAML through `lamp run`: the registry is all it takes."""
import json
import textwrap

import numpy as np
import pytest

import lamp
from lamp.config import ConfigError, loads, proposer_names, unregister_proposer
from lamp.tpp.contract import KGProposer, SupportsQuality

CALLS = {"fit": 0}


class RecentObject:
    """Proposes, for (subject, relation), the objects of that pair's most recent earlier events, then the most
    frequent objects of the training split: a proposer from outside lamp, implementing only the contract."""

    def __init__(self, store, fallback: int = 50):
        quads, times = store.stream()
        self.quads, self.times = quads, times
        self.num_entities, self.num_relations = store.num_entities, store.num_relations
        counts = np.bincount(store.train.quadruples()[:, 2], minlength=self.num_entities)
        self.popular = np.argsort(-counts, kind="stable")[:fallback]

    def propose(self, queries, task="object", m=20):
        if task != "object":
            raise ValueError("RecentObject proposes objects only")
        ids, scores = np.zeros((len(queries), m), np.int64), np.zeros((len(queries), m))
        for row, (s, r, _, t) in enumerate(np.asarray(queries)):
            past = (self.quads[:, 0] == s) & (self.quads[:, 1] == r) & (self.times < t)
            seen = list(dict.fromkeys(self.quads[past, 2][::-1].tolist()))
            others = [int(e) for e in self.popular if e not in seen]
            full = (seen + others + [e for e in range(self.num_entities) if e not in seen and e not in others])[:m]
            ids[row] = full
            scores[row] = np.linspace(1.0, 0.5, m)
        return ids, scores


def fit_recent_object(store, task, **params):
    CALLS["fit"] += 1
    return RecentObject(store, **params)


CONFIG = textwrap.dedent("""
    data:
      icews14: {data_format: tkg, data_dir: lamp://icews14}
    E:
      base_config: {dataset_id: icews14}
      lamp:
        task: object
        num_candidates: 5
        query_limit: 20
        train_query_limit: 20
        valid_query_limit: 10
        proposer: {model: recent_object, params: {fallback: 30}}
        abduction: {backend: none}
        ranker: {epochs: 1, width: 8}
        evaluation: {bootstrap: 50, ablations: []}
""")


@pytest.fixture
def registered():
    lamp.register_proposer("recent_object", kind="tkg", factory=fit_recent_object,
                           description="the most recent objects of the pair")
    yield
    unregister_proposer("recent_object")


def test_a_registered_proposer_runs_from_yaml(tmp_path, registered, capsys):
    from lamp.cli import main

    assert "recent_object" in proposer_names("tkg")
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 0
    metrics = json.load(open(tmp_path / "run" / "metrics.json"))["object"]
    assert metrics["base"]["n_queries"] == 20 and "lamp" in metrics
    quality = json.load(open(tmp_path / "run" / "proposer_metrics.json"))["object"]
    assert set(quality) >= {"mr", "mrr"}  # no quality method: its rank metrics among its own proposals
    fitted = CALLS["fit"]
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 0
    assert CALLS["fit"] == fitted + 1  # no save/load: fitted on every run ...
    assert "stage proposals: reusing finished output" in (tmp_path / "run" / "run.log").read_text()  # proposals reused
    # the schema reads the registry: a kind that does not fit the task, and a name that is not registered
    with pytest.raises(ConfigError, match="'recent_object' proposes for knowledge graphs; lamp.task 'next_type'"):
        loads(CONFIG, overrides=["lamp.task=next_type"])
    unregister_proposer("recent_object")
    with pytest.raises(ConfigError, match="lamp.proposer.model: 'recent_object' is not one of the choices"):
        loads(CONFIG)
    assert main(["run", str(path), "--out", str(tmp_path / "again")]) == 2
    assert "lamp: error: lamp.proposer.model: 'recent_object'" in capsys.readouterr().err


def test_the_contract_is_checked_before_proposing(tmp_path):
    from lamp.pipeline import Pipeline

    class NoPropose:
        num_entities = num_relations = 3

    lamp.register_proposer("broken", kind="tkg", factory=lambda store, task: NoPropose())
    try:
        path = tmp_path / "c.yaml"
        path.write_text(CONFIG.replace("{model: recent_object, params: {fallback: 30}}", "{model: broken}"))
        with pytest.raises(TypeError, match="NoPropose.*does not implement lamp.tpp.contract.KGProposer: it has no "
                                            "propose"):
            Pipeline.from_yaml(path, out=str(tmp_path / "run")).run()
    finally:
        unregister_proposer("broken")
    from lamp.tpp import KGHawkes

    assert isinstance(KGHawkes(), KGProposer) and isinstance(KGHawkes(), SupportsQuality)


def test_registration_errors():
    with pytest.raises(ValueError, match="already registered"):
        lamp.register_proposer("kg_hawkes", kind="tkg", factory=fit_recent_object)
    with pytest.raises(ValueError, match="kind must be one of"):
        lamp.register_proposer("x", kind="graph", factory=fit_recent_object)
    with pytest.raises(ValueError, match="both save and load"):
        lamp.register_proposer("x", kind="tkg", factory=fit_recent_object, save=lambda p, path: None)
    with pytest.raises(TypeError, match="factory must be a callable"):
        lamp.register_proposer("x", kind="tkg", factory=3)
    with pytest.raises(ValueError, match="cannot be unregistered"):
        unregister_proposer("kg_hawkes")
