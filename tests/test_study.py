"""A study (lamp/study.py): literature rows and several pipeline runs in one table; resume; errors."""
import json
import os
import textwrap

import numpy as np
import pytest

from lamp import cli
from lamp import config as lamp_config
from lamp.errors import ConfigError
from lamp.study import LITERATURE, parse_study, run_study, study_table

STUDY = textwrap.dedent("""
    data:
      icews14: {data_format: tkg, data_dir: lamp://icews14}
    S:
      base_config: {dataset_id: icews14}
      lamp:
        task: object
        num_candidates: 5
        query_limit: 120
        train_query_limit: 120
        valid_query_limit: 40
        proposer: {model: kg_hawkes, params: {half_lives: [1, 30, 365]}}
        abduction: {backend: oracle, num_shots: 2}
        ranker: {epochs: 6, width: 16, heads: 1, layers: 0}
        evaluation: {bootstrap: 200, ablations: [no_llm]}
      study:
        literature: [recurrency]
        runs:
          ceiling: {abduction.backend: oracle, ranker.selection: ranker}
          few: {train_query_limit: 20, ranker.init_from: "{study}/ceiling/ranker_no_llm",
                evaluation.ablations: []}
""")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    path = folder / "s.yaml"
    path.write_text(STUDY)
    cfg = lamp_config.load(path)
    return path, folder / "out", run_study(cfg, out=str(folder / "out"))


@pytest.mark.slow
def test_study_table_json_csv_and_figure(study):
    _, out, metrics = study
    lit = metrics["literature"]["measured"]["recurrency"]
    assert lit["n"] == 2 * 7371 and 0.3 < lit["mrr"] < 0.45  # whole test split, both directions
    assert metrics["literature"]["published"]["TLogic"] == {"mrr": 0.425, "hits@10": 0.603}
    rows = {(r["run"], r["method"]): r for r in metrics["rows"]}
    assert {("ceiling", "base"), ("ceiling", "oracle_ceiling"), ("ceiling", "no_llm"), ("few", "base"),
            ("few", "oracle_ceiling")} <= set(rows)
    # and a row of a trained ranker's own order exactly where the selection kept the proposer's
    kept = {(r["run"], r["method"]) for r in metrics["rows"] if r["used"] == "proposer"}
    assert set(rows) - {("ceiling", "base"), ("ceiling", "oracle_ceiling"), ("ceiling", "no_llm"), ("few", "base"),
                        ("few", "oracle_ceiling")} == {(run, f"{method}@ranker") for run, method in kept}
    assert all(rows[key]["used"] == "not used" for key in rows if key[1].endswith("@ranker"))
    ceiling = rows[("ceiling", "oracle_ceiling")]
    assert ceiling["used"] == "ranker" and ceiling["mr"] < rows[("ceiling", "base")]["mr"]
    assert ceiling["delta_mr"] == pytest.approx(ceiling["mr"] - rows[("ceiling", "base")]["mr"])
    assert ceiling["grounded_true"] > 0.5 > ceiling["grounded_other"]
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["rows"] == json.loads(json.dumps(metrics["rows"]))
    assert (out / "metrics.csv").read_text().count("\n") == len(rows) + 2  # header, rows, literature
    assert (out / "metrics.png").stat().st_size > 5000
    table = study_table(on_disk)
    assert "TiRGN (published)" in table and "lamp recurrency (this run)" in table and "Gastinger" in table
    assert f"{100 * lit['mrr']:.1f}" in table
    assert set(metrics["timings"]) >= {"data", "literature", "ceiling", "few", "total"}


@pytest.mark.slow
def test_init_from_starts_from_the_other_runs_ranker(study):
    _, out, _ = study
    log = (out / "few" / "run.log").read_text()
    assert "starting from the parameters of " + str(out / "ceiling" / "ranker_no_llm") in log
    settings = json.loads((out / "few" / "ranker_lamp" / "fingerprint.json").read_text())["settings"]
    assert settings["init_params"]  # the pre-trained parameters are part of the stage's fingerprint


@pytest.mark.slow
def test_rerun_recomputes_nothing(study, capsys):
    path, out, metrics = study
    stamps = {p: os.path.getmtime(p) for p in out.glob("*/*/DONE")} | {out / "literature" / "DONE": 0}
    stamps[out / "literature" / "DONE"] = os.path.getmtime(out / "literature" / "DONE")
    again = run_study(lamp_config.load(path), out=str(out))
    assert again["rows"] == metrics["rows"]
    assert {p: os.path.getmtime(p) for p in stamps} == stamps  # no stage was written again
    assert "reusing" in (out / "run.log").read_text() or "reusing" in (out / "few" / "run.log").read_text()


@pytest.mark.slow
def test_cli_runs_a_study_and_rejects_limit(study, capsys):
    path, out, metrics = study
    assert cli.main(["run", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Reranking the proposer's top M" in printed and "oracle_ceiling" in printed
    assert cli.main(["run", str(path), "--out", str(out), "--limit", "5"]) == 2
    assert "is a study" in capsys.readouterr().err


@pytest.mark.parametrize("section, message", [
    ("[1, 2]", "expected a mapping"),
    ("{runs: {a: {x: 1}}, extra: 1}", "unknown keys"),
    ("{literature: [tlogic]}", "study.literature"),
    ("{runs: {'a/b': {}}}", "must be letters"),
    ("{runs: {a: [1]}}", "expected a mapping of lamp keys"),
    ("{}", "nothing to run"),
])
def test_bad_study_sections(section, message):
    import yaml

    with pytest.raises(ConfigError, match=message):
        parse_study(yaml.safe_load(section))


def test_a_bad_run_setting_fails_before_any_work(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(STUDY.replace("ceiling: {abduction.backend: oracle, ranker.selection: ranker}", "ceiling: {num_candidates: -3}"))
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "num_candidates" in err and not (tmp_path / "out" / "literature").exists()


def test_init_from_errors(tmp_path):
    from lamp.pipeline.rank import load_ranker_params

    with pytest.raises(ConfigError, match="no such file"):
        load_ranker_params(str(tmp_path / "missing"))
    (tmp_path / "stage").mkdir()
    with pytest.raises(ConfigError, match="not a finished ranker stage"):
        load_ranker_params(str(tmp_path / "stage"))
    from lamp.rank import EnergyRanker

    model = EnergyRanker(10, 4, width=8, heads=1, layers=0)
    with pytest.raises(ValueError, match="shape"):
        model.warm_start(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        model.warm_start(np.full(model.params.shape, np.nan))
    start = np.random.default_rng(0).normal(size=model.params.shape)
    assert np.array_equal(model.warm_start(start).params, start)


def test_literature_constants_are_the_cited_table():
    assert LITERATURE["RecurrencyBaseline"] == (37.4, 51.5) and LITERATURE["TiRGN"] == (44.0, 63.8)
    assert len(LITERATURE) == 6
