"""The pipeline with abduction per event type (LLM, rules, oracle) and with batch jobs, on the bundled ICEWS14
data and the LLM test server: one prompt per event type, instantiated causes, resume, the plan, bad settings."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from lamp.config import ConfigError, loads
from lamp.llm.testserver import TestServer
from lamp.pipeline import Pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = textwrap.dedent("""
    data:
      icews14: {{data_format: tkg, data_dir: lamp://icews14}}
    E:
      base_config: {{dataset_id: icews14}}
      lamp:
        task: object
        num_candidates: 5
        query_limit: 30
        train_query_limit: 30
        valid_query_limit: 10
        proposer: {{model: recurrency}}
        abduction: {{backend: openai, base_url: "{url}", model: test, num_shots: 2, unit: event_type{extra}}}
        ranker: {{epochs: 2, width: 8}}
        evaluation: {{bootstrap: 50, ablations: [no_llm]}}
""")
REPLY = "1. event type: Make a visit\n   subject: Y\n   object: X\n2. Consult(X -> someone else)\n3. Dance(X -> Y)"


def _config(tmp_path, url="http://127.0.0.1:9/v1", extra=""):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(url=url, extra=extra))
    return path


def _asked_types(server) -> list[str]:
    return [r["messages"][-1]["content"] for r in server.requests if "messages" in r]


def test_one_prompt_per_event_type_instantiated_for_every_candidate(tmp_path):
    with TestServer(reply=REPLY) as server:
        path = _config(tmp_path, server.base_url)
        pipe = Pipeline.from_yaml(path, out=str(tmp_path / "run"))
        metrics = pipe.run()["object"]
        asked = _asked_types(server)
        result = json.load(open(tmp_path / "run" / "abduction" / "result.json"))
        assert len(asked) == len(set(asked)) == result["stats"]["event_types"] == server.total  # once per type
        assert result["stats"]["unknown_event_types"] == len(asked)  # "Dance" in every reply, dropped and counted
        # every asked candidate's causes are its type's two patterns with its own entities in their roles
        texts = pipe.context.store
        props = np.load(tmp_path / "run" / "proposals" / "arrays.npz")
        from lamp.text import display_name

        causes, cands, truth = result["test_causes"], props["test_candidates"], props["test_truth"]
        row = int(np.flatnonzero(truth >= 0)[0])
        cause = causes[row * cands.shape[1] + 1]
        candidate = display_name(texts.entity_names[cands[row, 1]])
        assert len(cause) == 2 and cause[0].startswith(candidate + " | Make a visit | ")
        assert cause[1].endswith(" | Consult") and candidate not in cause[1]
        assert all(causes[i * cands.shape[1] + j] == [] for i in np.flatnonzero(truth < 0) for j in range(5))
        assert set(metrics) == {"base", "lamp", "no_llm"}
        sent = server.total
        assert Pipeline.from_yaml(path, out=str(tmp_path / "run")).plan()["to_send"] == 0  # all cached
        Pipeline.from_yaml(path, out=str(tmp_path / "run")).run()
        assert server.total == sent  # a rerun sends nothing
        # the unit is part of the stage's fingerprint: per candidate, the stage is recomputed (and asks more)
        path.write_text(path.read_text().replace("unit: event_type", "unit: candidate"))
        Pipeline.from_yaml(path, out=str(tmp_path / "run")).run()
        assert server.total - sent > 2 * sent


def test_plan_counts_one_prompt_per_event_type_and_prices_batch_jobs(tmp_path):
    path = _config(tmp_path, extra=", price_per_mtok: {prompt: 1.0, completion: 2.0}")
    per_type = Pipeline.from_yaml(path, out=str(tmp_path / "a")).plan()
    test = per_type["splits"]["test"]
    assert per_type["unit"] == "event_type" and test["unique"] <= 30 < test["to_ask"]
    assert per_type["to_send"] == sum(s["unique"] for s in per_type["splits"].values())  # types across splits once
    path.write_text(path.read_text().replace("unit: event_type", "unit: candidate"))
    per_candidate = Pipeline.from_yaml(path, out=str(tmp_path / "b")).plan()
    assert per_candidate["to_send"] > 3 * per_type["to_send"]
    path.write_text(path.read_text().replace("unit: candidate", "unit: candidate, batch: true"))
    batch = Pipeline.from_yaml(path, out=str(tmp_path / "c")).plan()
    assert batch["to_send"] == per_candidate["to_send"] and batch["wall_seconds"] is None
    assert batch["cost"] == pytest.approx(0.5 * per_candidate["cost"])
    from lamp.pipeline.plan import plan_text

    assert "as a batch job (x 0.5" in plan_text(batch) and "one prompt per event type" in plan_text(per_type)


@pytest.mark.slow
def test_rules_and_the_event_type_oracle_need_no_llm(tmp_path):
    path = _config(tmp_path)
    for backend, row, mined_from in (("rules", "lamp", "train"), ("oracle", "oracle_ceiling", "test")):
        path.write_text(CONFIG.format(url="http://127.0.0.1:9/v1", extra="").replace(
            "backend: openai", f"backend: {backend}"))
        metrics = Pipeline.from_yaml(path, out=str(tmp_path / backend)).run()["object"]
        result = json.load(open(tmp_path / backend / "abduction" / "result.json"))
        assert result["stats"]["mined_from"] == mined_from and result["stats"]["patterns"] > 0
        assert row in metrics and "vs_base" in metrics[row]
        assert any(result["test_causes"])


@pytest.mark.parametrize("sets, words", [
    (["lamp.abduction.unit=per_type"], "lamp.abduction.unit: 'per_type' is not one of the choices"),
    (["lamp.abduction.backend=rules"], "lamp.abduction.backend 'rules' mines cause patterns per event type: it needs "
                                       "lamp.abduction.unit 'event_type'"),
    (["lamp.abduction.backend=local", "lamp.abduction.batch=true"], "lamp.abduction.batch sends an OpenAI Batch job: "
                                                                     "it needs lamp.abduction.backend 'openai'"),
    (["lamp.abduction.price_per_mtok.batch_discount=0"], "batch_discount: 0 is too small"),
    (["lamp.abduction.window_steps=0"], "lamp.abduction.window_steps: 0 is too small"),
])
def test_bad_settings_are_clear_errors(sets, words):
    text = "data: {d: {data_format: tkg, data_dir: lamp://icews14}}\nE: {lamp: {}}\n"
    with pytest.raises(ConfigError) as info:
        loads(text, overrides=sets)
    assert words in str(info.value) and len(str(info.value).splitlines()) == 1


def test_bad_settings_from_the_command_line_have_no_traceback(tmp_path):
    path = _config(tmp_path)
    out = subprocess.run([sys.executable, "-m", "lamp", "run", str(path), "--set", "lamp.abduction.backend=rules",
                          "--set", "lamp.abduction.unit=candidate"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("lamp: error: lamp.abduction.backend 'rules'")


# --------------------------------------------------------------------------------------- batch jobs

_RUN = textwrap.dedent("""
    import sys
    from lamp.pipeline import Pipeline
    Pipeline.from_yaml(sys.argv[1], out=sys.argv[2]).run()
""")


def _batch_config(tmp_path, url):
    return _config(tmp_path, url, extra=", batch: true, batch_poll_seconds: 0.05").read_text().replace(
        "unit: event_type", "unit: candidate")


@pytest.mark.slow
def test_batch_run_is_one_job_and_a_killed_run_resumes_it(tmp_path):
    """Per-candidate abduction as one OpenAI Batch job; a run killed while it polls resumes the same job (the
    server sees one upload and one job), and its answers are the chat endpoint's (a rerun without batch sends
    nothing)."""
    with TestServer(faults={"batch_latency": 3.0}) as server:
        path = tmp_path / "c.yaml"
        path.write_text(_batch_config(tmp_path, server.base_url))
        run = str(tmp_path / "run")
        proc = subprocess.Popen([sys.executable, "-c", _RUN, str(path), run], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        state = os.path.join(run, "abduction_batch", "batch_state.json")
        deadline = time.time() + 120
        while time.time() < deadline and not (os.path.exists(state) and '"batch_id": "batch_' in open(state).read()):
            time.sleep(0.05)
        assert os.path.exists(state), proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert server.batches_created == 1
        metrics = Pipeline.from_yaml(path, out=run).run()["object"]
        assert server.batches_created == 1 and server.files_uploaded == 1  # resumed, nothing submitted twice
        assert "lamp" in metrics
        chat_requests = server.total
        path.write_text(path.read_text().replace("batch: true", "batch: false"))
        Pipeline.from_yaml(path, out=run).run()
        assert server.total == chat_requests  # the batch's answers are the cache's: nothing is asked again
