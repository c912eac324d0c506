"""lamp run on an EasyTPP experiment config as EasyTPP's examples write them (docs/easytpp.md).

    python scripts/easytpp_example.py [FOLDER] [--record]

Writes into FOLDER (default: a new temporary folder) a data set made by EasyTPP's own generator
(``easy_tpp.utils.gen_utils``: a multivariate Hawkes process, 5 event types) as local JSON files, and
``experiment_config.yaml`` in the shape of EasyTPP's ``examples/configs/experiment_config.yaml``: several model
blocks (keys EasyTPP ignores included), Hugging Face ids for the data sets not used, and one added ``lamp``
section in ``NHP_train`` with ``runner_id: lamp.easytpp.LampRunner``.  Then runs

    lamp run FOLDER/experiment_config.yaml --experiment NHP_train --out FOLDER/run

and prints its output.  With ``--record`` the output and the config go to ``docs/recorded/easytpp_example.txt``
and the table between the ``easytpp-example`` markers of docs/easytpp.md is rewritten from it
(``tests/test_docs_numbers.py`` checks the page against the recorded file).  ``tests/test_easytpp_configs.py``
runs the same config, smaller, through ``lamp run`` and EasyTPP's ``Runner``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from recording import table, write_record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDED = os.path.join(ROOT, "docs", "recorded", "easytpp_example.txt")
PAGE = os.path.join(ROOT, "docs", "easytpp.md")
START, END = "<!-- easytpp-example:start -->", "<!-- easytpp-example:end -->"
COMMAND = "lamp run experiment_config.yaml --experiment NHP_train --out run"

# the split sizes (simulated time) and the generator's settings
SPLITS = {"train": 3000.0, "dev": 600.0, "test": 600.0}
GENERATOR = dict(n_nodes=5, baseline=0.2, adjacency=0.3, decay=2.0, max_seq_len=20)

CONFIG = """\
pipeline_config_id: runner_config

data:
  hawkes5:
    data_format: json
    train_dir: ./data/train.json
    valid_dir: ./data/dev.json
    test_dir: ./data/test.json
    data_specs:
      num_event_types: 5
      pad_token_id: 5
      padding_side: right
  retweet:
    data_format: json
    train_dir: easytpp/retweet
    valid_dir: easytpp/retweet
    test_dir: easytpp/retweet
    data_specs:
      num_event_types: 3
      pad_token_id: 3
      padding_side: right
      truncation_side: right

RMTPP_train:
  base_config:
    stage: train
    backend: torch
    dataset_id: hawkes5
    runner_id: std_tpp
    model_id: RMTPP
    base_dir: './checkpoints/'
  trainer_config:
    batch_size: 256
    max_epoch: 20
    seed: 2019
    gpu: -1
  model_config:
    hidden_size: 32
    mc_num_sample_per_step: 20
    dropout: 0.0

NHP_gen:
  base_config:
    stage: eval
    backend: torch
    dataset_id: retweet
    runner_id: std_tpp
    model_id: NHP
    base_dir: './checkpoints/'
    model_config:
      hidden_size: 64

NHP_train:
  base_config:
    stage: train
    backend: torch
    dataset_id: hawkes5
    runner_id: lamp.easytpp.LampRunner
    model_id: NHP
    base_dir: './checkpoints/'
  trainer_config:
    batch_size: 32
    max_epoch: {max_epoch}
    shuffle: False
    optimizer: adam
    learning_rate: 1.e-2
    valid_freq: 1
    use_tfb: False
    metrics: [ 'acc', 'rmse' ]
    seed: 2019
    gpu: -1
  model_config:
    hidden_size: 16
    loss_integral_num_sample_per_step: 10
    dropout: 0.0
    thinning:
      num_seq: 10
      num_sample: 1
      num_exp: 50
      look_ahead_time: 10
      patience_counter: 5
      over_sample_rate: 5
      num_samples_boundary: 5
      dtime_max: 5
      num_step_gen: 1
  lamp:
    num_candidates: 3
    abduction: {{backend: oracle}}
    evaluation: {{ablations: [no_llm]}}
"""


def make_data(folder: str, scale: float = 1.0) -> None:
    """The three splits as EasyTPP JSON, by EasyTPP's generator (each split its own seed)."""
    import numpy as np
    from easy_tpp.utils.gen_utils import format_tick_data_to_hf, generate_synthetic_data
    from easy_tpp.utils.misc import save_json

    os.makedirs(os.path.join(folder, "data"), exist_ok=True)
    settings = {k: v for k, v in GENERATOR.items() if k != "max_seq_len"}
    for seed, (name, end_time) in enumerate(SPLITS.items(), start=1):
        np.random.seed(seed)
        events = generate_synthetic_data(end_time=end_time * scale, **settings)
        records = format_tick_data_to_hf(events, dim_process=GENERATOR["n_nodes"],
                                         max_seq_len=GENERATOR["max_seq_len"])
        save_json(records, os.path.join(folder, "data", f"{name}.json"))


def write_config(folder: str, max_epoch: int = 5) -> str:
    path = os.path.join(folder, "experiment_config.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(CONFIG.format(max_epoch=max_epoch))
    return path


def main(argv: list[str]) -> int:
    record = "--record" in argv
    args = [a for a in argv if a != "--record"]
    folder = args[0] if args else tempfile.mkdtemp(prefix="lamp-easytpp-example-")
    os.makedirs(folder, exist_ok=True)
    make_data(folder)
    write_config(folder)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "lamp", *COMMAND.split()[1:]], cwd=folder, env=env,
                         capture_output=True, text=True)
    lamp_lines = [line for line in run.stderr.splitlines() if line.startswith("lamp: warning:")]
    lamp_lines += [line for line in run.stdout.splitlines() if line.startswith(("[lamp]", "task:", "  "))]
    print("\n".join(lamp_lines))
    if run.returncode != 0:
        print(run.stderr[-3000:], file=sys.stderr)
        return run.returncode
    if record:
        write_record(RECORDED, f"python scripts/easytpp_example.py --record (in it: {COMMAND})", lamp_lines, PAGE,
                     (START, END), table(run.stdout))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
