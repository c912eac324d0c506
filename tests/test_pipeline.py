"""The pipeline end to end on the bundled ICEWS14 data: metrics files, resume, invalidation."""
import json
import textwrap

import pytest

from lamp.pipeline import Pipeline

CONFIG = textwrap.dedent("""
    data:
      icews14: {{data_format: tkg, data_dir: lamp://icews14}}
    E:
      base_config: {{dataset_id: icews14}}
      lamp:
        task: object
        num_candidates: {m}
        query_limit: 60
        train_query_limit: 80
        proposer: {{model: kg_hawkes, params: {{half_lives: [1, 30, 365]}}}}
        evaluation: {{bootstrap: 200}}
""")


def _run(tmp_path, m=20):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(m=m))
    pipe = Pipeline.from_yaml(path, out=str(tmp_path / "run"))
    return pipe, pipe.run()


def test_run_writes_metrics_and_resumes(tmp_path, capsys):
    pipe, metrics = _run(tmp_path)
    base = metrics["object"]["base"]
    assert base["n_queries"] == 60 and 0 < base["coverage"] <= 1
    assert 1 <= base["mr"] <= 20 and base["random_mr"] == 10.5
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["object"]["base"]["mr"] == pytest.approx(base["mr"])
    assert (tmp_path / "run" / "metrics.png").exists() and (tmp_path / "run" / "metrics.csv").exists()
    assert "task: object" in capsys.readouterr().out
    log = (tmp_path / "run" / "run.log").read_text()
    assert log.count("stage proposer: computing") == 1
    # a rerun reuses every finished stage
    _, again = _run(tmp_path)
    assert again["object"]["base"]["mr"] == pytest.approx(base["mr"])
    log = (tmp_path / "run" / "run.log").read_text()
    assert "stage proposer: reusing" in log and "stage proposals: reusing" in log
    # changing M recomputes the proposals but not the proposer
    _, smaller = _run(tmp_path, m=5)
    log = (tmp_path / "run" / "run.log").read_text()
    assert log.count("stage proposer: computing") == 1 and log.count("stage proposals: computing") == 2
    assert smaller["object"]["base"]["random_mr"] == 3.0


def test_bad_settings(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(m=1))
    with pytest.raises(ValueError, match="num_candidates must be at least 2"):
        Pipeline.from_yaml(path, out=str(tmp_path / "run"))
    path.write_text(CONFIG.format(m=20))
    with pytest.raises(ValueError, match="limit must be a positive"):
        Pipeline.from_yaml(path, out=str(tmp_path / "run"), limit=0)
