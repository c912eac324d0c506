"""EasyTPP's own configs and data sets, as they are: an experiment file in the shape of EasyTPP's
``examples/configs/experiment_config.yaml`` (several model blocks, keys EasyTPP ignores, Hugging Face ids),
through ``lamp run`` and through EasyTPP's ``Runner``."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lamp import config
from lamp.cli import main
from lamp.config import ConfigError
from lamp.data import EventSequences, load_easytpp, save_easytpp_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import easytpp_example  # noqa: E402  (scripts/easytpp_example.py: the config and EasyTPP's data generator)

CONFIG = easytpp_example.CONFIG.format(max_epoch=1)


def _error_lines(capsys):
    err = capsys.readouterr().err
    return [line for line in err.splitlines() if line.startswith("lamp: error: ")]


def _run_cli(args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(cwd / "hf"),
           "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "lamp", *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=300)
    return out.returncode, [line for line in out.stderr.splitlines() if line.startswith("lamp: ")]


def test_only_the_block_being_run_is_read_and_what_easytpp_ignores_is_one_warning(tmp_path):
    path = tmp_path / "experiment_config.yaml"
    path.write_text(CONFIG)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.json").write_text("")  # resolved beside the config, where it exists
    # RMTPP_train has dropout and mc_num_sample_per_step, NHP_gen nests its configs in base_config: EasyTPP's
    # business, not an error; NHP_train's own dropout is a key EasyTPP ignores: one warning naming it
    with pytest.warns(UserWarning, match="EasyTPP ignores these keys") as record:
        cfg = config.load(path, "NHP_train")
    assert len(record) == 1
    message = str(record[0].message)
    assert "'NHP_train.model_config.dropout'" in message and "RMTPP" not in message and "NHP_gen" not in message
    # a typed data set: the task is next_type; lamp's runner named with a model: that model is the proposer
    assert cfg.lamp.task == "next_type" and cfg.lamp.proposer_model == "easytpp"
    easytpp = cfg.lamp.proposer.params["easytpp"]
    assert easytpp["experiment_id"] == "NHP_train" and easytpp["block"]["base_config"]["model_id"] == "NHP"
    assert "dropout" not in easytpp["block"]["model_config"]  # only what EasyTPP reads
    assert easytpp["data"]["train_dir"] == str(tmp_path / "data" / "train.json")  # resolved beside the config
    # the other data set's Hugging Face ids are not read for this experiment
    assert cfg.dataset_id == "hawkes5"
    # on the command line: one line
    code, lines = _run_cli(["config", "experiment_config.yaml", "--experiment", "NHP_train"], tmp_path)
    assert code == 0 and lines == ["lamp: warning: experiment_config.yaml: EasyTPP ignores these keys, and so does "
                                   "lamp: 'NHP_train.model_config.dropout'; did you mean 'dropout_rate'?"]


def test_lamp_sections_stay_strict_and_blocks_must_be_mappings(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'num_candidates'"):
        config.loads(CONFIG.replace("    num_candidates: 3", "    num_candidate: 3"), "NHP_train")
    with pytest.raises(ConfigError, match="NHP_train.model_config: expected a mapping"):
        config.loads(CONFIG.replace("  model_config:\n    hidden_size: 16", "  model_config: 16\n  x:\n    hidden_size: 16"),
                     "NHP_train")
    with pytest.raises(ConfigError, match="data.retweet: expected a mapping"):
        config.loads(CONFIG.replace("  retweet:\n    data_format: json", "  retweet: 3\n  other:\n    data_format: json"),
                     "NHP_train")


def test_typed_data_never_get_a_knowledge_graph_default():
    text = ("data: {t: {data_format: json, train_dir: a.json, test_dir: b.json, data_specs: {num_event_types: 3}}}\n"
            "E: {base_config: {dataset_id: t}, lamp: {num_candidates: 2}}\n")
    cfg = config.loads(text)
    assert cfg.lamp.task == "next_type" and cfg.lamp.proposer_model == "hawkes"
    cfg = config.loads("data: {d: {data_format: tkg, data_dir: lamp://icews14}}\nE: {lamp: {}}\n")
    assert cfg.lamp.task == "object" and cfg.lamp.proposer_model == "kg_hawkes"


def _sequences(seed, n):
    rng = np.random.default_rng(seed)
    times, marks = [], []
    for _ in range(n):
        length = int(rng.integers(3, 9))
        times.append(np.cumsum(rng.exponential(1.0, length)).tolist())
        marks.append(rng.integers(0, 3, length).tolist())
    return EventSequences.from_lists(times, marks, num_types=3)


def _hub_folder(root, splits=("train", "validation", "test")):
    """A data set built with ``datasets`` and saved as a folder ``datasets`` reads offline (a local copy of a
    Hugging Face data set, one JSON file per split), at ``root``; also each split as lamp's own JSON beside it."""
    import datasets

    root.mkdir(parents=True)
    for i, split in enumerate(splits):
        save_easytpp_json(_sequences(i, 6 + i), root.parent / f"{root.name}-{split}.json")
        with open(root.parent / f"{root.name}-{split}.json") as f:
            records = [json.loads(line) for line in f]
        datasets.Dataset.from_list(records).to_json(str(root / f"{split}.json"))
    return root


def test_a_hugging_face_id_loads_through_datasets(tmp_path):
    pytest.importorskip("datasets")
    _hub_folder(tmp_path / "easytpp" / "toy")
    (tmp_path / "c.yaml").write_text(
        "data:\n  toy:\n    data_format: json\n    train_dir: easytpp/toy\n    valid_dir: easytpp/toy\n"
        "    test_dir: easytpp/toy\n    data_specs: {num_event_types: 3}\nE: {lamp: {num_candidates: 2}}\n")
    store = config.load(tmp_path / "c.yaml").load_data()
    for split, name in (("train", "train"), ("valid", "validation"), ("test", "test")):
        expected = load_easytpp(tmp_path / "easytpp" / f"toy-{name}.json")
        got = getattr(store, split)
        # (datasets writes JSON floats with 10 significant digits)
        assert np.allclose(got.times, expected.times, rtol=1e-9, atol=0) and np.array_equal(got.marks, expected.marks)
        assert np.array_equal(got.offsets, expected.offsets)


def test_hugging_face_ids_that_cannot_be_read_are_one_line(tmp_path):
    pytest.importorskip("datasets")
    _hub_folder(tmp_path / "easytpp" / "nodev", splits=("train", "test"))
    for name, expected in (("easytpp/nothere", ["cannot be loaded", "HF_DATASETS_OFFLINE", "JSON files"]),
                           ("easytpp/nodev", ["has no split 'validation'"])):
        (tmp_path / "c.yaml").write_text(
            f"data:\n  t:\n    data_format: json\n    train_dir: {name}\n    valid_dir: {name}\n"
            f"    test_dir: {name}\n    data_specs: {{num_event_types: 3}}\nE: {{lamp: {{num_candidates: 2}}}}\n")
        code, lines = _run_cli(["run", "c.yaml", "--out", "run"], tmp_path)
        assert code == 2 and len(lines) == 1, lines
        assert lines[0].startswith(f"lamp: error: {name} (Hugging Face data set") and "Traceback" not in lines[0]
        assert all(e in lines[0] for e in expected), lines[0]


easytpp_installed = pytest.mark.skipif(
    any(__import__("importlib").util.find_spec(m) is None for m in ("torch", "easy_tpp")),
    reason="needs torch and easy-tpp (pip install torch==2.13.0 easy-tpp)")


@easytpp_installed
def test_a_model_easytpp_does_not_have_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    easytpp_example.make_data(str(tmp_path), scale=0.1)
    path = easytpp_example.write_config(str(tmp_path), max_epoch=1)
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("    model_id: NHP\n    base_dir: './checkpoints/'\n  trainer_config:\n    batch_size: 32",
                             "    model_id: NHPP\n    base_dir: './checkpoints/'\n  trainer_config:\n    batch_size: 32"))
    assert main(["run", path, "--experiment", "NHP_train", "--out", "run"]) == 2
    (line,) = _error_lines(capsys)
    assert "model_id='NHPP': EasyTPP has no such model" in line and "NHP" in line.split("it has", 1)[1]


@pytest.mark.slow
@easytpp_installed
def test_lamp_run_and_easytpp_runner_agree_and_a_rerun_reuses_the_model(tmp_path, capsys, monkeypatch):
    """EasyTPP's data generator, the example config (RMTPP and NHP_gen blocks with keys EasyTPP ignores, a Hugging
    Face id for a data set not used, local JSON for the one used): ``lamp run`` trains NHP through EasyTPP's runner
    and reports base / oracle / no_llm; a rerun reuses the trained model; EasyTPP's ``Runner`` with lamp's runner
    gives the same metrics."""
    import lamp.easytpp
    from easy_tpp.runner import Runner

    monkeypatch.chdir(tmp_path)  # EasyTPP reads relative paths from the working folder
    easytpp_example.make_data(str(tmp_path), scale=0.3)
    path = easytpp_example.write_config(str(tmp_path), max_epoch=1)
    with pytest.warns(UserWarning, match="EasyTPP ignores these keys") as record:
        assert main(["run", path, "--experiment", "NHP_train", "--out", "run"]) == 0
    assert sum("EasyTPP ignores" in str(w.message) for w in record) == 1
    assert "proposer: easytpp (fitted)" in capsys.readouterr().out
    with open(tmp_path / "run" / "metrics.json") as f:
        by_lamp = json.load(f)
    by_lamp.pop("provenance")
    assert {"base", "oracle_ceiling", "no_llm"} <= set(by_lamp["next_type"])
    assert by_lamp["next_type"]["base"]["n"] > 0

    assert main(["run", path, "--experiment", "NHP_train", "--out", "run"]) == 0
    assert "proposer: easytpp (reused)" in capsys.readouterr().out

    # stage eval with the checkpoint EasyTPP saved: the same model, so the same proposals and metrics
    (saved,) = [os.path.join(tmp_path, "checkpoints", d, "models", "saved_model")
                for d in os.listdir(tmp_path / "checkpoints")]
    with open(path) as f:
        text = f.read()
    block = text.split("NHP_train:", 1)[1]
    eval_block = block.replace("    stage: train", "    stage: eval", 1).replace(
        "    dropout: 0.0\n", f"    dropout: 0.0\n    pretrained_model_dir: {saved}\n", 1)
    with open(tmp_path / "eval.yaml", "w") as f:
        f.write(text.split("NHP_train:", 1)[0] + "NHP_train:" + eval_block)
    with pytest.warns(UserWarning):
        assert main(["run", str(tmp_path / "eval.yaml"), "--experiment", "NHP_train", "--out", "run_eval"]) == 0
    with open(tmp_path / "run_eval" / "metrics.json") as f:
        by_checkpoint = json.load(f)
    by_checkpoint.pop("provenance")
    assert by_checkpoint == by_lamp

    result = Runner.build_from_config(lamp.easytpp.build_runner_config(path, "NHP_train")).run()
    with open(os.path.join(result["output_dir"], "metrics.json")) as f:
        by_runner = json.load(f)
    by_runner.pop("provenance")
    assert by_runner == by_lamp
