"""lamp.easytpp against the real easy-tpp package: a tiny NHP trained for one epoch by EasyTPP's own runner."""
import json
import os
import subprocess
import sys
import textwrap
import types as pytypes

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="lamp.easytpp needs PyTorch (pip install torch==2.13.0)")
pytest.importorskip("easy_tpp", reason="lamp.easytpp tests need easy-tpp (pip install easy-tpp)")

from easy_tpp.config_factory import Config as EasyTPPConfig  # noqa: E402
from easy_tpp.runner import Runner  # noqa: E402

import lamp.easytpp as le  # noqa: E402
from lamp import config as lamp_config  # noqa: E402
from lamp.data import EventSequences, load_easytpp, save_easytpp_json  # noqa: E402

K = 3
# type k is mostly followed by type k + 1: a history-dependent process a model can learn from
TRANSITIONS = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
RATES = np.array([1.0, 2.0, 0.5])


def simulate(rng, num_sequences):
    times, marks = [], []
    for _ in range(num_sequences):
        t, k, ts, ms = 0.0, int(rng.integers(K)), [], []
        for _ in range(int(rng.integers(6, 14))):
            t += rng.exponential(1.0 / RATES[k])
            ts.append(t)
            ms.append(k)
            k = int(rng.choice(K, p=TRANSITIONS[k]))
        times.append(ts)
        marks.append(ms)
    return EventSequences.from_lists(times, marks, num_types=K)


def write_config(folder, experiment, *, runner_id="std_tpp", stage="train", extra_base="", lamp_block="",
                 pretrained=None):
    pretrained_line = f"    pretrained_model_dir: {pretrained}\n" if pretrained else ""
    text = f"""\
pipeline_config_id: runner_config
data:
  toy:
    data_format: json
    train_dir: {folder}/train.json
    valid_dir: {folder}/dev.json
    test_dir: {folder}/test.json
    data_specs: {{num_event_types: {K}, pad_token_id: {K}, padding_side: right, truncation_side: right}}
{experiment}:
  base_config:
    stage: {stage}
    backend: torch
    dataset_id: toy
    runner_id: {runner_id}
    model_id: NHP
    base_dir: {folder}/{experiment}_ckpt/
{extra_base}  trainer_config: {{seed: 3, gpu: -1, batch_size: 16, max_epoch: 1, optimizer: adam,
                   learning_rate: 1.e-2, metrics: [acc, rmse]}}
  model_config:
    hidden_size: 8
    loss_integral_num_sample_per_step: 10
{pretrained_line}    thinning: {{num_seq: 10, num_sample: 1, num_exp: 50, look_ahead_time: 10, patience_counter: 5,
               over_sample_rate: 5, num_samples_boundary: 5, dtime_max: 5, num_step_gen: 1}}
{lamp_block}"""
    path = os.path.join(folder, f"{experiment}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("easytpp"))
    rng = np.random.default_rng(7)
    for name, n in (("train", 40), ("dev", 8), ("test", 10)):
        save_easytpp_json(simulate(rng, n), os.path.join(folder, f"{name}.json"))
    path = write_config(folder, "NHP_train")
    runner = Runner.build_from_config(EasyTPPConfig.build_from_yaml_file(path, experiment_id="NHP_train"))
    runner.run()
    saved = runner.runner_config.base_config.specs["saved_model_dir"]
    assert os.path.exists(saved)
    return pytypes.SimpleNamespace(folder=folder, model=runner.model, saved=saved,
                                   test=load_easytpp(os.path.join(folder, "test.json")))


def direct_intensities(model, seqs, s, i, dt):
    """The model's own intensities after the history of event i (unpadded, one sequence), at offset dt."""
    b = int(seqs.offsets[s])
    deltas = seqs.time_deltas()
    ts = torch.tensor(seqs.times[b:b + i], dtype=torch.float32)[None]
    dts = torch.tensor(deltas[b:b + i], dtype=torch.float32)[None]
    marks = torch.tensor(seqs.marks[b:b + i])[None]
    if i == 1:  # NHP needs two columns; a trailing pad event does not change position 0
        ts, dts = torch.cat([ts, ts], 1), torch.cat([dts, torch.zeros(1, 1)], 1)
        marks = torch.cat([marks, torch.full((1, 1), K)], 1)
    with torch.no_grad():
        lam = model.compute_intensities_at_sample_times(ts, dts, marks, torch.full((1, ts.shape[1], 1), float(dt)))
    return lam[0, i - 1, 0].double().numpy()


@pytest.mark.slow
def test_shapes_dtypes_order(trained):
    proposer = le.EasyTPPProposer(trained.model, K, num_samples=8)
    queries = le.next_event_queries(trained.test)
    assert len(queries) == int(np.sum(trained.test.lengths - 1))
    assert np.all(queries[:, 1] >= 1)
    types, scores, next_times = proposer.propose_batch(trained.test, queries, 2)
    assert types.shape == (len(queries), 2) and types.dtype == np.int64
    assert scores.shape == (len(queries), 2) and scores.dtype == np.float64
    assert next_times.shape == (len(queries),) and next_times.dtype == np.float64
    assert np.all((types >= 0) & (types < K)) and np.all(types[:, 0] != types[:, 1])
    assert np.all(np.diff(scores, axis=1) <= 0)
    # the full ranking: probabilities of all K types sum to one, and the top-2 are the two largest
    full = proposer.type_probabilities(trained.test, queries)
    np.testing.assert_allclose(full.sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_array_equal(types, np.argsort(-full, axis=1, kind="stable")[:, :2])
    # a predicted time lies after the last history event
    last = trained.test.times[trained.test.offsets[queries[:, 0]] + queries[:, 1] - 1]
    assert np.all(next_times > last)
    assert np.all(np.isfinite(next_times))


@pytest.mark.slow
def test_scores_are_the_models_intensities(trained):
    seqs = trained.test
    queries = le.next_event_queries(seqs)[[0, 1, 5, 17, 30]]
    assert 1 in queries[:, 1]  # includes a one-event history
    deltas = seqs.time_deltas()
    proposer = le.EasyTPPProposer(trained.model, K)
    types, scores, _ = proposer.propose_batch(seqs, queries, K)
    raw = le.EasyTPPProposer(trained.model, K, score="intensity").type_probabilities(seqs, queries)
    for row, (s, i) in enumerate(queries):
        lam = direct_intensities(trained.model, seqs, s, i, deltas[seqs.offsets[s] + i])
        np.testing.assert_allclose(raw[row], lam, rtol=1e-5)
        np.testing.assert_allclose(scores[row], np.sort(lam / lam.sum())[::-1], rtol=1e-5)
        assert set(types[row]) == set(range(K))
        np.testing.assert_allclose(lam[types[row]] / lam.sum(), scores[row], rtol=1e-5)
    # and EasyTPP's own whole-sequence pass (the causal model reads position i - 1) agrees
    s = int(queries[-1, 0])
    b, e = seqs.offsets[s], seqs.offsets[s + 1]
    full = torch.tensor(seqs.times[b:e], dtype=torch.float32)[None]
    with torch.no_grad():
        lam_all = trained.model.compute_intensities_at_sample_times(
            full, torch.tensor(deltas[b:e], dtype=torch.float32)[None], torch.tensor(seqs.marks[b:e])[None],
            torch.tensor(np.r_[deltas[b + 1:e], 0.0], dtype=torch.float32)[None, :, None])
    i = int(queries[-1, 1])
    np.testing.assert_allclose(raw[-1], lam_all[0, i - 1, 0].double().numpy(), rtol=1e-5)


@pytest.mark.slow
def test_queries_never_see_future_events(trained):
    seqs = trained.test
    s = int(np.argmax(seqs.lengths))
    b, n = int(seqs.offsets[s]), int(seqs.lengths[s])
    query = np.array([[s, n // 2]])
    proposer = le.EasyTPPProposer(trained.model, K, num_samples=16, type_ranking="sampled", seed=5)
    before = proposer.propose_batch(seqs, query, K)

    def altered(first):
        times, marks = seqs.times.copy(), seqs.marks.copy()
        marks[b + first:b + n] = (marks[b + first:b + n] + 1) % K
        times[b + first:b + n] = times[b + first - 1] + np.cumsum(np.full(n - first, 0.01))
        return EventSequences(times, marks, seqs.offsets, K)

    # the queried event's type and time and everything after it changed: same proposals, same samples
    after = proposer.propose_batch(altered(n // 2), query, K)
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)
    # the same change one event earlier reaches the history, and the model notices
    earlier = proposer.propose_batch(altered(n // 2 - 1), query, K)
    assert not np.array_equal(before[1], earlier[1])


@pytest.mark.slow
def test_sampled_ranking_is_seeded_and_keeps_global_rng(trained):
    queries = le.next_event_queries(trained.test)[:12]
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    a = le.EasyTPPProposer(trained.model, K, type_ranking="sampled", seed=1, num_samples=10)
    torch.manual_seed(123)
    first = a.propose_batch(trained.test, queries, 2)
    assert torch.equal(torch.rand(1), expected_next)  # torch's global random state is untouched
    second = a.propose_batch(trained.test, queries, 2)
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    other = le.EasyTPPProposer(trained.model, K, type_ranking="sampled", seed=2, num_samples=10)
    assert not np.array_equal(first[2], other.propose_batch(trained.test, queries, 2)[2])
    # the sampled score is the probability averaged over next-time samples: a distribution
    probs = a.type_probabilities(trained.test, queries)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)
    # ranked by what is reported: mean intensities over the samples are sorted too
    by_intensity = le.EasyTPPProposer(trained.model, K, type_ranking="sampled", score="intensity", seed=1,
                                      num_samples=10)
    t_int, s_int, _ = by_intensity.propose_batch(trained.test, queries, K)
    assert np.all(np.diff(s_int, axis=1) <= 0)
    np.testing.assert_allclose(np.take_along_axis(by_intensity.type_probabilities(trained.test, queries), t_int, 1),
                               s_int, rtol=1e-9)
    # batching does not change the answer
    small = le.EasyTPPProposer(trained.model, K, batch_size=3)
    np.testing.assert_allclose(small.type_probabilities(trained.test, queries),
                               le.EasyTPPProposer(trained.model, K).type_probabilities(trained.test, queries),
                               rtol=1e-6)


@pytest.mark.slow
def test_time_scale(trained):
    # a model trained on times / c sees the same inputs when the data is rescaled by c and time_scale=c
    seqs = trained.test
    queries = le.next_event_queries(seqs)[:10]
    c = 7.0
    scaled = EventSequences(seqs.times * c, seqs.marks, seqs.offsets, K, dtimes=seqs.time_deltas() * c)
    plain = le.EasyTPPProposer(trained.model, K, seed=4).propose_batch(seqs, queries, K)
    rescaled = le.EasyTPPProposer(trained.model, K, seed=4, time_scale=c).propose_batch(scaled, queries, K)
    np.testing.assert_array_equal(plain[0], rescaled[0])
    np.testing.assert_allclose(plain[1], rescaled[1], rtol=1e-5)
    np.testing.assert_allclose(rescaled[2], plain[2] * c, rtol=1e-5)


@pytest.mark.slow
def test_bad_input(trained):
    seqs = trained.test
    proposer = le.EasyTPPProposer(trained.model, K)
    good = np.array([[0, 1]])
    with pytest.raises(ValueError, match="sequence index"):
        proposer.propose_batch(seqs, np.array([[seqs.num_sequences, 1]]), 2)
    with pytest.raises(ValueError, match="event index"):
        proposer.propose_batch(seqs, np.array([[0, int(seqs.lengths[0])]]), 2)
    with pytest.raises(ValueError, match="event index"):
        proposer.propose_batch(seqs, np.array([[0, -1]]), 2)
    with pytest.raises(ValueError, match="no history|fewer than 1 earlier"):
        proposer.propose_batch(seqs, np.array([[0, 0]]), 2)
    with pytest.raises(ValueError, match=r"m must be in \[1, 3\]"):
        proposer.propose_batch(seqs, good, K + 1)
    for m in (0, -2):
        with pytest.raises(ValueError, match="m must be"):
            proposer.propose_batch(seqs, good, m)
    with pytest.raises(TypeError, match="m must be an integer"):
        proposer.propose_batch(seqs, good, 1.5)
    with pytest.raises(ValueError, match=r"queries must have shape \(Q, 2\)"):
        proposer.propose_batch(seqs, np.array([0, 1]), 2)
    with pytest.raises(TypeError, match="queries must be integers"):
        proposer.propose_batch(seqs, np.array([[0.0, 1.0]]), 2)
    with pytest.raises(TypeError, match="seqs must be EventSequences"):
        proposer.propose_batch(seqs.times, good, 2)
    empty = proposer.propose_batch(seqs, np.zeros((0, 2), np.int64), 2)
    assert [x.shape for x in empty] == [(0, 2), (0, 2), (0,)]
    with pytest.raises(ValueError, match="num_event_types=4 but the model has 3"):
        le.EasyTPPProposer(trained.model, 4)
    with pytest.raises(ValueError, match="pad_token_id=0 but the model pads with 3"):
        le.EasyTPPProposer(trained.model, K, pad_token_id=0)
    with pytest.raises(TypeError, match="model must be a trained EasyTPP torch model"):
        le.EasyTPPProposer(torch.nn.Linear(2, 2), K)
    with pytest.raises(ValueError, match="type_ranking"):
        le.EasyTPPProposer(trained.model, K, type_ranking="argmax")
    with pytest.raises(ValueError, match="score must be"):
        le.EasyTPPProposer(trained.model, K, score="logit")
    with pytest.raises(ValueError, match="num_samples"):
        le.EasyTPPProposer(trained.model, K, num_samples=0)
    with pytest.raises(ValueError, match="time_scale"):
        le.EasyTPPProposer(trained.model, K, time_scale=0.0)
    with pytest.raises(ValueError, match="thinning has unknown keys"):
        le.EasyTPPProposer(trained.model, K, thinning={"num_exps": 3})


def test_base_metrics_by_hand():
    types = np.array([[2, 0], [1, 2], [0, 1]])
    metrics = le.base_metrics(types, np.array([0, 1, 2]), 2)  # ranks 2, 1, miss
    assert metrics["n"] == 2 and metrics["n_queries"] == 3
    assert metrics["coverage"] == pytest.approx(2 / 3)
    assert metrics["mr"] == pytest.approx(1.5) and metrics["mrr"] == pytest.approx(0.75)
    assert metrics["hits@1"] == pytest.approx(0.5) and metrics["mr_all"] == pytest.approx(2.0)


@pytest.mark.slow
def test_runner_id_dotted_path_end_to_end(trained, tmp_path):
    folder = trained.folder
    path = write_config(folder, "NHP_lamp", runner_id="lamp.easytpp.LampRunner",
                        extra_base="    specs: {lamp: {num_candidates: 2, query_limit: 25, train_query_limit: 60, "
                                   "abduction: {backend: none}, ranker: {width: 8, epochs: 2}}}\n")
    cfg = EasyTPPConfig.build_from_yaml_file(path, experiment_id="NHP_lamp")
    runner = Runner.build_from_config(cfg)
    assert type(runner) is le.LampRunner
    result = runner.run()
    out = result["output_dir"]
    assert out == os.path.join(runner.runner_config.base_config.specs["log_folder"], "lamp")
    with open(os.path.join(out, "base_metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    assert metrics["m"] == 2
    # the LAMP pipeline ran on the model's proposals: base, lamp and the ablations on the same test queries
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
        pipeline = json.load(f)
    assert set(pipeline.pop("provenance")) == {"stages", "settings"}  # on disk, not in the runner's result
    assert pipeline == result["pipeline"]
    assert {"base", "lamp", "no_llm", "random_evidence"} <= set(pipeline["next_type"])
    assert len({m["n_queries"] for m in pipeline["next_type"].values()}) == 1
    saved = np.load(os.path.join(out, "proposals.npz"))
    assert saved["types"].shape == (25, 2) and saved["scores"].shape == (25, 2)
    np.testing.assert_array_equal(saved["queries"], le.next_event_queries(trained.test, 25))
    # the metrics are those of the written proposals, and the proposals are those of the trained model
    np.testing.assert_array_equal(saved["truth_types"],
                                  trained.test.marks[trained.test.offsets[saved["queries"][:, 0]]
                                                     + saved["queries"][:, 1]])
    assert metrics["next_type"]["base"] == pytest.approx(le.base_metrics(saved["types"], saved["truth_types"], 2))
    again = le.EasyTPPProposer(runner.model, K).propose_batch(trained.test, saved["queries"], 2)
    np.testing.assert_array_equal(again[0], saved["types"])
    np.testing.assert_allclose(again[1], saved["scores"], rtol=1e-6)
    rmse = np.sqrt(np.mean((saved["next_times"] - saved["truth_times"]) ** 2))
    assert metrics["next_time"]["base"]["rmse"] == pytest.approx(rmse)
    # an EasyTPP model proposes types of typed sequences: a knowledge-graph task is a config error
    with pytest.raises(lamp_config.ConfigError, match="next_type or next_time"):
        le._lamp_config_for(runner.runner_config, {"lamp": {}, "experiment": {"task": "object"}})


@pytest.mark.slow
def test_lamp_block_beside_easytpp_keys(trained, monkeypatch):
    """A `lamp` block inside an EasyTPP experiment: EasyTPP loads the file, lamp reads the block, and
    LampRunner (with a pretrained model, stage test) hands everything to lamp.pipeline.run_typed."""
    folder = trained.folder
    block = "  lamp: {task: next_type, num_candidates: 3, proposer: {params: {num_samples: 4, seed: 9}}}\n"
    path = write_config(folder, "NHP_block", runner_id="lamp.easytpp.LampRunner", stage="test",
                        pretrained=trained.saved, lamp_block=block)
    with open(path, "a", encoding="utf-8") as f:
        f.write("lamp: {query_limit: 7}\n")
    easytpp_cfg = EasyTPPConfig.build_from_yaml_file(path, experiment_id="NHP_block")  # does not choke
    assert easytpp_cfg.model_config.hidden_size == 8
    cfg = lamp_config.load(path, "NHP_block")
    assert cfg.lamp.num_candidates == 3 and cfg.lamp.query_limit == 7
    runner_config = le.build_runner_config(path, "NHP_block")
    assert runner_config.lamp_sections == {"lamp": {"query_limit": 7},
                                           "experiment": {"task": "next_type", "num_candidates": 3,
                                                          "proposer": {"params": {"num_samples": 4, "seed": 9}}}}
    calls = []
    fake = pytypes.ModuleType("lamp.pipeline")
    fake.run_typed = lambda store, proposer, config, out=None: calls.append((store, proposer, config)) or {"ok": True}
    monkeypatch.setitem(sys.modules, "lamp.pipeline", fake)
    result = Runner.build_from_config(runner_config).run()
    assert result["pipeline"] == {"ok": True} and len(calls) == 1
    store, proposer, config = calls[0]
    assert store.kind == "typed" and store.num_types == K and len(store.test) == len(trained.test)
    assert config.lamp.num_candidates == 3 and config.lamp.task == "next_type"
    assert config.lamp.query_limit == 7  # the top-level lamp section reaches the runner too
    assert proposer.num_samples == 4 and proposer.seed == 9
    # the runner's model is the pretrained one
    queries = le.next_event_queries(trained.test)[:5]
    np.testing.assert_allclose(proposer.type_probabilities(trained.test, queries),
                               le.EasyTPPProposer(trained.model, K).type_probabilities(trained.test, queries),
                               rtol=1e-6)
    # a typo in the lamp block is an error naming it, not silently ignored
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace("num_candidates: 3", "num_candidate: 3"))
    with pytest.raises(lamp_config.ConfigError, match="num_candidate"):
        le.build_runner_config(path, "NHP_block")


def test_layout_and_missing_package(monkeypatch):
    layout = le.easytpp_layout()
    assert layout["line"] == ("0.3" if hasattr(__import__("easy_tpp.model", fromlist=["BaseModel"]), "BaseModel")
                              else "0.2")
    monkeypatch.setitem(sys.modules, "easy_tpp", None)
    with pytest.raises(ImportError, match="pip install easy-tpp"):
        le.easytpp_layout()


LEGACY = os.environ.get("LAMP_EASYTPP_LEGACY")


@pytest.mark.skipif(not LEGACY, reason="set LAMP_EASYTPP_LEGACY to an unpacked easy-tpp 0.2.x wheel "
                                       "(pip download --no-deps easy-tpp==0.2.1; unzip) to test the 0.2 line")
@pytest.mark.slow
def test_legacy_line(trained):
    path = write_config(trained.folder, "NHP_legacy", runner_id="lamp.easytpp.LampRunner")
    script = textwrap.dedent(f"""
        import numpy as np
        from easy_tpp.config_factory import Config
        from easy_tpp.runner import Runner
        import lamp.easytpp as le
        from lamp.data import load_easytpp
        assert le.easytpp_layout()["line"] == "0.2", le.easytpp_layout()
        runner = Runner.build_from_config(Config.build_from_yaml_file({path!r}, experiment_id="NHP_legacy"))
        result = runner.run()
        assert "metrics" in result and result["metrics"]["next_type"]["base"]["n_queries"] > 0
        test = load_easytpp({os.path.join(trained.folder, "test.json")!r})
        types, scores, times = le.EasyTPPProposer(runner.model, 3, type_ranking="sampled").propose_batch(
            test, le.next_event_queries(test), 3)
        assert np.all(np.diff(scores, axis=1) <= 0)
        print("legacy ok")
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([LEGACY, root])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "legacy ok" in done.stdout, done.stderr[-3000:]
