"""The EasyTPP batch builder against EasyTPP's own tokenizer (easy-tpp from PyPI)."""
import numpy as np
import pytest

from lamp.batching import BatchBuilder, build_batch
from lamp.data import EventSequences


def _random_sequences(seed, k=5, n_seq=7, max_len=9):
    rng = np.random.default_rng(seed)
    times, marks, deltas = [], [], []
    for _ in range(n_seq):
        n = int(rng.integers(1, max_len + 1))
        t = np.cumsum(rng.exponential(1.0, size=n))
        times.append(t.tolist())
        # EasyTPP's time_since_last_event need not be diff(times): use independent values
        deltas.append(rng.exponential(1.0, size=n).round(3).tolist())
        marks.append(rng.integers(0, k, size=n).tolist())
    flat_d = np.array([x for d in deltas for x in d])
    return EventSequences.from_lists(times, marks, k, dtimes=flat_d), times, deltas, marks


def _easytpp_batch(times, deltas, marks, specs, padding, truncation, max_length):
    easy_tpp = pytest.importorskip("easy_tpp.preprocess.event_tokenizer",
                                   reason="easy-tpp is not installed (pip install '.[easytpp]' after torch)")
    from omegaconf import OmegaConf

    tokenizer = easy_tpp.EventTokenizer(OmegaConf.create(specs))
    features = [{"time_seqs": t, "time_delta_seqs": d, "type_seqs": m} for t, d, m in zip(times, deltas, marks)]
    return tokenizer.pad(features, padding=padding, truncation=truncation, max_length=max_length,
                         return_tensors="np")


CASES = [
    dict(padding_side="right", truncation_side="right", padding_strategy="longest", max_len=None, truncation=False),
    dict(padding_side="right", truncation_side="right", padding_strategy="max_length", max_len=12,
         truncation=False),
    dict(padding_side="right", truncation_side="left", padding_strategy="max_length", max_len=4, truncation=True),
    dict(padding_side="right", truncation_side="right", padding_strategy="longest", max_len=3, truncation=True),
    dict(padding_side="left", truncation_side="right", padding_strategy="longest", max_len=None, truncation=False),
    dict(padding_side="left", truncation_side="left", padding_strategy="max_length", max_len=5, truncation=True),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_easytpp_tokenizer(case, seed):
    k = 5
    data, times, deltas, marks = _random_sequences(seed, k=k)
    specs = {"num_event_types": k, "pad_token_id": k, "padding_side": case["padding_side"],
             "truncation_side": case["truncation_side"], "max_len": case["max_len"],
             "padding_strategy": None, "truncation_strategy": None}
    padding = True if case["padding_strategy"] == "longest" else "max_length"
    ours = BatchBuilder(num_event_types=k, pad_token_id=k, **case)(data)
    theirs = dict(_easytpp_batch(times, deltas, marks, specs, padding, case["truncation"], case["max_len"]))
    width = ours["type_seqs"].shape[1]
    if np.asarray(theirs["type_seqs"]).shape[1] > width:
        # EasyTPP's "longest" padding measures lengths before truncating: its extra columns are all padding
        assert case["truncation"] and case["padding_strategy"] == "longest"
        assert np.all(np.asarray(theirs["type_seqs"])[:, width:] == k)
        theirs = {key: np.asarray(v)[:, :width] if key != "attention_mask" else np.asarray(v)[:, :width, :width]
                  for key, v in theirs.items()}
    for key in ("time_seqs", "time_delta_seqs", "type_seqs", "attention_mask"):
        assert ours[key].dtype == np.asarray(theirs[key]).dtype, key
        np.testing.assert_array_equal(ours[key], np.asarray(theirs[key]), err_msg=key)
    real = ours["type_seqs"] != k
    np.testing.assert_array_equal(ours["seq_non_pad_mask"], real)
    if case["padding_side"] == "right":
        np.testing.assert_array_equal(ours["seq_non_pad_mask"], np.asarray(theirs["seq_non_pad_mask"]))
    else:
        # EasyTPP marks the first seq_len positions, which are padding on the left: a known defect
        lengths = real.sum(axis=1)
        easy = np.asarray(theirs["seq_non_pad_mask"])
        np.testing.assert_array_equal(easy.sum(axis=1), lengths)


def test_attention_mask_semantics():
    data = EventSequences.from_lists([[0.0, 1.0, 2.0], [0.5]], [[0, 1, 0], [1]], 2)
    batch = build_batch(data)
    mask = batch["attention_mask"]
    assert mask.shape == (2, 3, 3) and mask.dtype == bool
    assert not mask[0].diagonal().any()
    assert mask[0, 0, 1] and not mask[0, 1, 0]  # the future is masked, the past is not
    assert mask[1, 0, 1] and mask[1, 0, 2]      # padding keys are masked
    np.testing.assert_array_equal(batch["type_seqs"][1], [1, 2, 2])
    np.testing.assert_array_equal(batch["seq_non_pad_mask"][1], [True, False, False])


def test_bad_options():
    data = EventSequences.from_lists([[0.0, 1.0]], [[0, 1]], 2)
    with pytest.raises(ValueError, match="pad_token_id=1 is a real event type"):
        build_batch(data, pad_token_id=1)
    with pytest.raises(ValueError, match="pad_token_id=0"):
        build_batch(data, pad_token_id=0)
    with pytest.raises(ValueError, match="padding_side"):
        build_batch(data, padding_side="middle")
    with pytest.raises(ValueError, match="max_len is required"):
        build_batch(data, padding_strategy="max_length")
    with pytest.raises(ValueError, match="more than max_len"):
        build_batch(data, padding_strategy="max_length", max_len=1)
    with pytest.raises(IndexError, match="indices"):
        build_batch(data, [3])
    with pytest.raises(ValueError, match="num_event_types=1"):
        BatchBuilder(num_event_types=1, pad_token_id=5)(data)


def test_from_data_specs():
    builder = BatchBuilder.from_data_specs({"num_event_types": 3, "pad_token_id": 3, "padding_side": "left",
                                            "truncation_strategy": "longest_first", "max_len": 2})
    assert builder.truncation and builder.padding_side == "left" and builder.max_len == 2
