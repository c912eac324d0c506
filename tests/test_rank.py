"""The energy ranker: gradients against finite differences, parity with NumPy, learning, save/load, bad input."""
import numpy as np
import pytest

from lamp._reference import rank as ref
from lamp.rank import EnergyRanker, EvidenceCountRanker, IdentityRanker, RankingSamples, mean_rank

NE, NR = 6, 3


def _samples(seed, q=3, m=4, length=5, signal=False, with_prior=False):
    rng = np.random.default_rng(seed)
    ev = np.stack([rng.integers(0, NE, (q, m, length)), rng.integers(0, NR, (q, m, length)),
                   rng.integers(0, NE, (q, m, length))], axis=-1)
    lengths = rng.integers(0, length + 1, (q, m))
    lengths[0, 0] = 0  # a candidate with no evidence at all
    for i in range(q):
        for j in range(m):
            ev[i, j, lengths[i, j]:] = -1
    times = rng.uniform(0, 10, (q, m, length))
    cand = np.stack([rng.integers(0, NE, (q, m)), rng.integers(0, NR, (q, m)), rng.integers(0, NE, (q, m))], -1)
    ctimes = np.full((q, m), 12.0)
    labels = rng.integers(0, m, q)
    if signal:  # the true candidate's evidence is all relation 0; the others never are
        for i in range(q):
            for j in range(m):
                rel = 0 if j == labels[i] else rng.integers(1, NR, length)
                ev[i, j, :, 1] = rel
                ev[i, j, :, 0] = rng.integers(0, NE, length)
                ev[i, j, :, 2] = rng.integers(0, NE, length)
    prior = -rng.exponential(1.0, (q, m)) if with_prior else None
    return RankingSamples(ev, times, cand, ctimes, labels, prior)


def _model(width=4, **kw):
    kw.setdefault("precision", "float64")  # the exact path; float32 is tested against it below
    kw.setdefault("agreement", False)  # the model without agreement features (tested on its own further down)
    # w2 drawn at random (not the pipeline's start from the prior): every parameter gets a gradient to check
    return EnergyRanker(NE, NR, width=width, time_scale=2.0, progress=False, **{"start_from_prior": False, **kw})


def _check_gradients(model, s):
    """Every parameter's analytic gradient against central differences of the loss; returns the gradients."""
    _, _, grads = model._forward(s, grad=True)
    h = 1e-6
    for i in range(len(model.params)):
        p_plus, p_minus = model.params.copy(), model.params.copy()
        p_plus[i] += h
        p_minus[i] -= h
        numeric = (model._forward(s, params=p_plus)[1] - model._forward(s, params=p_minus)[1]) / (2 * h)
        assert grads[i] == pytest.approx(numeric, rel=1e-4, abs=1e-8), f"parameter {i}"
    return grads


def _gappy(samples):
    """Padding inside the evidence too (a -1 row between valid ones), besides short and empty evidence."""
    samples.evidence[1, 1, :] = samples.evidence[1, 2, :] = np.array([0, 1, 2])
    samples.evidence[1, 1, 1] = -1
    samples.evidence[1, 2, 3:] = -1
    return samples


@pytest.mark.parametrize("layers", [0, 1, 2])
@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("with_prior", [False, True])
def test_forward_matches_numpy_reference(layers, heads, with_prior):
    model = _model(width=6, heads=heads, layers=layers)
    model.params = np.random.default_rng(1).normal(0, 0.5, model.params.shape)
    s = _gappy(_samples(2, with_prior=with_prior))
    got = model.energy(s)
    expected = ref.energies(model.params, model.offsets, 6, 2.0, s.evidence, s.evidence_times, s.candidates,
                            s.candidate_times, s.prior, heads=heads, layers=layers)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    _, loss, _ = model._forward(s)
    assert loss == pytest.approx(ref.softmax_loss(expected, s.labels), rel=1e-10)
    binary = _model(width=6, heads=heads, layers=layers, loss="binary")
    _, loss, _ = binary._forward(s, params=model.params)
    assert loss == pytest.approx(ref.binary_loss(expected, s.labels), rel=1e-10)


def test_layers_change_the_energy_and_zero_layers_is_the_single_readout():
    s = _samples(2)
    single = _model(width=6, heads=1, layers=0)
    assert len(single.offsets) == 12  # the first version's layout: Ent, Rel, Obj, Wq, Wk, Wv, W1, b1, w2, b2, gamma
    deep = _model(width=6, heads=1, layers=1)
    np.testing.assert_array_equal(deep.params[:len(single.params)], single.params)  # same draws for shared blocks
    assert not np.allclose(deep.energy(s), single.energy(s))
    # a block whose attention output and feed-forward are zero is the identity: energies of the single readout
    lo = deep.offsets[11 + 3]  # Ao of layer 0
    deep.params[lo:] = 0.0
    np.testing.assert_allclose(deep.energy(s), single.energy(s), rtol=0, atol=1e-15)


@pytest.mark.parametrize("layers", [0, 1, 2])
@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("loss", ["softmax", "binary"])
@pytest.mark.parametrize("with_prior", [False, True])
def test_gradient_of_every_parameter_against_finite_differences(layers, heads, loss, with_prior):
    model = _model(width=4, heads=heads, layers=layers, loss=loss, dropout=0.0)
    rng = np.random.default_rng(3)
    model.params = rng.normal(0, 0.5, model.params.shape)
    s = _gappy(_samples(4, with_prior=with_prior))
    assert (s.evidence[..., 0] < 0).all(axis=2).any()  # a candidate without evidence
    grads = _check_gradients(model, s)
    if not with_prior:
        assert np.all(grads[model.offsets[10]:model.offsets[11]] == 0.0)  # gamma unused without a prior


@pytest.mark.parametrize("layers", [0, 1, 2])
@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("loss", ["softmax", "binary"])
def test_float32_matches_float64(layers, heads, loss):
    """The float32 path (the default for fit/energy) agrees with the float64 one to about 1e-5 relative."""
    exact = _model(width=8, heads=heads, layers=layers, loss=loss)
    exact.params = np.random.default_rng(7).normal(0, 0.5, exact.params.shape)
    fast = _model(width=8, heads=heads, layers=layers, loss=loss, precision="float32")
    fast.params = exact.params.copy()
    s = _gappy(_samples(8, with_prior=True))
    e64, l64, g64 = exact._forward(s, grad=True)
    e32, l32, g32 = fast._forward(s, grad=True)
    scale = np.abs(e64).max()
    np.testing.assert_allclose(e32, e64, rtol=0, atol=2e-5 * scale)
    assert l32 == pytest.approx(l64, rel=2e-5)
    np.testing.assert_allclose(g32, g64, rtol=0, atol=2e-5 * np.abs(g64).max())


@pytest.mark.parametrize("width,heads", [(64, 2), (32, 2), (64, 1), (40, 2)])
def test_float32_matches_float64_at_full_head_widths(width, heads):
    """The same at real widths: head widths e = 32, 16 and 64 (the attention loops compiled for a fixed
    width) and e = 20 (the general loops), with up to 20 evidence events, so that the in-place scoring and
    backward buffers are exercised at their real sizes."""
    exact = _model(width=width, heads=heads, layers=2)
    exact.params = np.random.default_rng(3).normal(0, 0.15, exact.params.shape)
    fast = _model(width=width, heads=heads, layers=2, precision="float32")
    fast.params = exact.params.copy()
    s = _gappy(_samples(4, q=4, m=5, length=20, with_prior=True))
    e64, l64, g64 = exact._forward(s, grad=True)
    e32, l32, g32 = fast._forward(s, grad=True)
    np.testing.assert_allclose(e32, e64, rtol=0, atol=2e-5 * np.abs(e64).max())
    assert l32 == pytest.approx(l64, rel=2e-5)
    np.testing.assert_allclose(g32, g64, rtol=0, atol=2e-5 * np.abs(g64).max())
    # scoring alone (one token buffer updated in place) gives the energies of the training pass
    np.testing.assert_array_equal(fast.energy(s), e32)


def _adam_reference(p, g, m1, m2, lr, b1, b2, eps, wd, clip, step):
    norm = np.sqrt(np.sum(g * g))
    g = g * (clip / norm if clip > 0 and norm > clip else 1.0)
    m1[:] = b1 * m1 + (1 - b1) * g
    m2[:] = b2 * m2 + (1 - b2) * g * g
    p -= lr * ((m1 / (1 - b1 ** step)) / (np.sqrt(m2 / (1 - b2 ** step)) + eps) + wd * p)


@pytest.mark.parametrize("n", [1, 13, 70001])  # tails of the 8-wide sums; 70001 is split over two threads
@pytest.mark.parametrize("clip,wd", [(0.0, 0.0), (1.0, 0.01), (1e3, 0.0)])
def test_adam_step_matches_numpy(n, clip, wd):
    """_core.ranker_adam (clipped by the global norm, decoupled weight decay, bias-corrected) against the
    same update written in NumPy, over several steps with gradients of mixed sizes."""
    from lamp import _core

    rng = np.random.default_rng(n)
    p = rng.normal(0, 1, n)
    m1, m2 = np.zeros(n), np.zeros(n)
    rp, rm1, rm2 = p.copy(), m1.copy(), m2.copy()
    for step in range(1, 6):
        g = rng.normal(0, 1, n) * rng.choice([0.0, 1e-3, 1.0, 30.0], n)
        _core.ranker_adam(p, g, m1, m2, 1e-2, 0.9, 0.999, 1e-8, wd, clip, step)
        _adam_reference(rp, g, rm1, rm2, 1e-2, 0.9, 0.999, 1e-8, wd, clip, step)
        # (FMA contraction may round a cancelling b1 m1 + (1 - b1) g differently: absolute tolerances)
        for got, want in ((m1, rm1), (m2, rm2), (p, rp)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * np.abs(want).max())


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_chunked_batch_matches_query_by_query(precision, monkeypatch):
    """A batch of several chunks (split over two threads) gives the energies and the mean gradient of its
    queries computed one by one, and exactly the same result on one thread."""
    model = _model(width=8, heads=2, layers=2, precision=precision)
    model.params = np.random.default_rng(9).normal(0, 0.3, model.params.shape)
    s = _samples(17, q=24, m=30, length=40, with_prior=True)
    assert (s.evidence[..., 0] >= 0).sum() > 8192  # chunks of about 4096 tokens
    energies, loss, grads = model._forward(s, grad=True)
    parts = [model._forward(s.subset([i]), grad=True) for i in range(len(s))]
    tol = 1e-12 if precision == "float64" else 1e-5
    np.testing.assert_allclose(energies, np.concatenate([p[0] for p in parts]), rtol=0,
                               atol=tol * np.abs(energies).max())
    assert loss == pytest.approx(np.mean([p[1] for p in parts]), rel=tol)
    mean_grad = np.mean([p[2] for p in parts], axis=0)
    np.testing.assert_allclose(grads, mean_grad, rtol=0, atol=tol * np.abs(grads).max())
    again = model._forward(s, grad=True)
    np.testing.assert_array_equal(again[0], energies)  # deterministic
    np.testing.assert_array_equal(again[2], grads)
    out = np.full_like(grads, np.nan)
    assert model._forward(s, grad=True, grads_out=out)[2] is out  # a reused gradient buffer: fully overwritten
    np.testing.assert_array_equal(out, grads)
    with pytest.raises(TypeError, match="grads_out"):
        model._forward(s, grad=True, grads_out=out[:-1])
    monkeypatch.setenv("LAMP_RANKER_THREADS", "1")
    serial = model._forward(s, grad=True)
    np.testing.assert_array_equal(serial[0], energies)  # the same on one thread
    np.testing.assert_array_equal(serial[2], grads)
    assert serial[1] == loss


def test_candidate_itself_changes_the_energy():
    model = _model(width=8)
    s = _samples(5)
    s.evidence[0, 1] = s.evidence[0, 0]
    s.evidence_times[0, 1] = s.evidence_times[0, 0]
    s.candidates[0, 1] = (s.candidates[0, 0] + 1) % [NE, NR, NE]
    e = model.energy(s)
    assert e[0, 0] != e[0, 1]  # same evidence, different candidate: different energy


@pytest.mark.parametrize("loss,precision", [("softmax", "float64"), ("binary", "float64"), ("softmax", "float32")])
def test_learns_planted_signal_but_not_noise(loss, precision):
    train, valid = _samples(10, q=300, m=5, signal=True), _samples(11, q=100, m=5, signal=True)
    model = _model(width=16, layers=2, heads=2, loss=loss, epochs=8, learning_rate=1e-2, dropout=0.0,
                   precision=precision)
    model.fit(train, valid)
    assert model.best_valid_mr < 2.0  # random is 3
    noise_train, noise_valid = _samples(12, q=300, m=5), _samples(13, q=300, m=5)
    noise = _model(width=16, layers=2, heads=2, loss=loss, epochs=8, learning_rate=1e-2, dropout=0.0,
                   precision=precision)
    noise.fit(noise_train, noise_valid)
    fresh = _samples(14, q=400, m=5)
    assert mean_rank(noise.energy(fresh), fresh.labels) == pytest.approx(3.0, abs=0.35)


def test_single_readout_still_learns():
    train, valid = _samples(10, q=300, m=5, signal=True), _samples(11, q=100, m=5, signal=True)
    model = _model(width=16, layers=0, heads=1, epochs=8, learning_rate=1e-2, dropout=0.0).fit(train, valid)
    assert model.best_valid_mr < 2.0


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_training_is_deterministic_for_a_seed(precision):
    train, valid = _samples(15, q=40, m=4, signal=True), _samples(16, q=10, m=4, signal=True)
    a = _model(width=8, epochs=2, dropout=0.2, seed=5, precision=precision).fit(train, valid)
    b = _model(width=8, epochs=2, dropout=0.2, seed=5, precision=precision).fit(train, valid)
    np.testing.assert_array_equal(a.params, b.params)
    assert a.history == b.history


def test_untrained_ranker_with_prior_follows_the_prior():
    s = _samples(50, q=20, m=5, with_prior=True)
    model = _model(width=8)
    model.params[model.offsets[8]:model.offsets[9]] = 0.0  # no evidence contribution yet
    order = model.rerank(s)
    np.testing.assert_array_equal(order, np.argsort(-s.prior, axis=1, kind="stable"))


@pytest.mark.parametrize("heads, layers, loss", [(1, 0, "softmax"), (2, 2, "binary"), (4, 1, "softmax")])
def test_save_load_round_trip(tmp_path, heads, layers, loss):
    import json

    model = _model(width=4, heads=heads, layers=layers, loss=loss, epochs=1).fit(_samples(20, q=20),
                                                                                 _samples(21, q=5))
    model.save(tmp_path / "r.npz")
    again = EnergyRanker.load(tmp_path / "r.npz")
    assert (again.config["heads"], again.config["layers"], again.config["loss"]) == (heads, layers, loss)
    assert again.config == model.config
    s = _samples(22)
    np.testing.assert_array_equal(model.energy(s), again.energy(s))
    with np.load(tmp_path / "r.npz") as f:
        config = json.loads(str(f["header"]))["config"]
    assert (config["heads"], config["layers"], config["loss"]) == (heads, layers, loss)
    np.savez(tmp_path / "bad.npz", params=np.zeros(3))
    with pytest.raises(ValueError, match="not a EnergyRanker checkpoint"):
        EnergyRanker.load(tmp_path / "bad.npz")


def test_load_rejects_mismatched_shapes_and_reads_old_checkpoints(tmp_path):
    from lamp.checkpoint import save_checkpoint
    from lamp.rank import _FORMAT

    deep = _model(width=4, heads=2, layers=2)
    config = dict(deep.config, layers=1)
    save_checkpoint(tmp_path / "mismatch.npz", "EnergyRanker", _FORMAT, {"config": config}, params=deep.params)
    with pytest.raises(ValueError, match="heads 2, layers 1"):
        EnergyRanker.load(tmp_path / "mismatch.npz")
    # a checkpoint of the first version (no heads/layers/loss in its config) is the single readout
    single = _model(width=4, heads=1, layers=0)
    old = {k: v for k, v in single.config.items() if k not in ("heads", "layers", "loss")}
    save_checkpoint(tmp_path / "old.npz", "EnergyRanker", _FORMAT, {"config": old}, params=single.params)
    loaded = EnergyRanker.load(tmp_path / "old.npz")
    assert (loaded.config["heads"], loaded.config["layers"], loaded.config["loss"]) == (1, 0, "softmax")
    s = _samples(23)
    np.testing.assert_array_equal(loaded.energy(s), single.energy(s))


def test_baselines():
    s = _samples(30)
    assert np.array_equal(np.argsort(IdentityRanker().energy(s), axis=1), np.tile(np.arange(4), (3, 1)))
    counts = (s.evidence[..., 0] >= 0).sum(axis=2)
    order = np.argsort(EvidenceCountRanker().energy(s), axis=1, kind="stable")
    assert np.all(np.diff(np.take_along_axis(counts, order, axis=1), axis=1) <= 0)


def test_bad_input():
    s = _samples(40)
    with pytest.raises(ValueError, match="M >= 2"):
        RankingSamples(s.evidence[:, :1], s.evidence_times[:, :1], s.candidates[:, :1], s.candidate_times[:, :1],
                       np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="L = 0"):
        RankingSamples(s.evidence[:, :, :0], s.evidence_times[:, :, :0], s.candidates, s.candidate_times, s.labels)
    with pytest.raises(ValueError, match="evidence must have shape"):
        RankingSamples(s.evidence[:2], s.evidence_times, s.candidates, s.candidate_times, s.labels)
    bad_times = s.candidate_times.copy()
    bad_times[0, 0] = np.nan
    with pytest.raises(ValueError, match="candidate_times"):
        RankingSamples(s.evidence, s.evidence_times, s.candidates, bad_times, s.labels)
    with pytest.raises(TypeError, match="candidates must hold integer"):
        RankingSamples(s.evidence, s.evidence_times, s.candidates.astype(float), s.candidate_times, s.labels)
    with pytest.raises(ValueError, match="labels must be in"):
        RankingSamples(s.evidence, s.evidence_times, s.candidates, s.candidate_times, np.array([9, 0, 0]))
    big = _samples(41)
    big.candidates[0, 0, 0] = NE + 5
    with pytest.raises(ValueError, match="out of the vocabulary"):
        _model().energy(big)
    with pytest.raises(ValueError, match="width must be even"):
        EnergyRanker(NE, NR, width=5)
    with pytest.raises(ValueError, match="width 6 is not divisible by heads 4"):
        EnergyRanker(NE, NR, width=6, heads=4)
    with pytest.raises(ValueError, match="heads must be"):
        EnergyRanker(NE, NR, width=6, heads=0)
    with pytest.raises(ValueError, match="layers must be"):
        EnergyRanker(NE, NR, width=6, layers=-1)
    with pytest.raises(ValueError, match=r"loss must be one of \('softmax', 'binary'\)"):
        EnergyRanker(NE, NR, width=6, loss="hinge")
    with pytest.raises(ValueError, match="precision must be"):
        EnergyRanker(NE, NR, width=6, precision="float16")
    from lamp import _core

    m = _model(width=4)
    args = (m.params, NE, NR, 4, 2.0, 2, 2, s.evidence, s.evidence_times, s.candidates, s.candidate_times, None,
            s.labels, "softmax", 0.0, 0, False)
    with pytest.raises(ValueError, match="heads"):
        _core.ranker_forward(*args[:5], 3, *args[6:])
    with pytest.raises(ValueError, match="layers"):
        _core.ranker_forward(*args[:6], -1, *args[7:])
    with pytest.raises(ValueError, match="loss must be"):
        _core.ranker_forward(*args[:13], "hinge", *args[14:])
    with pytest.raises(ValueError, match="params"):
        _core.ranker_forward(*args[:6], 1, *args[7:])  # a layer fewer: the parameter vector is too long
    with pytest.raises(ValueError, match="precision must be"):
        _core.ranker_forward(*args, "float16")
    with pytest.raises(TypeError, match="RankingSamples"):
        _model().energy("samples")


def test_concurrent_threads_give_the_serial_energies():
    """The kernel releases the GIL; calls from several threads must not disturb each other."""
    from concurrent.futures import ThreadPoolExecutor

    model = _model(width=8, heads=2, layers=2, precision="float32")
    batches = [_samples(60 + i, q=20, m=5, length=40) for i in range(4)]  # long enough to use two threads each
    serial = [model.energy(s) for s in batches]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(model.energy, batches))
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)


def test_ranker_from_a_config_section():
    """EnergyRanker.from_settings builds exactly what a config's lamp.ranker section says, and the
    constructor's own defaults are the section's defaults (one place: lamp.config.schema.Ranker)."""
    import inspect

    from lamp.config import loads
    from lamp.config.schema import Ranker

    cfg = loads("data: {d: {data_format: tkg, data_dir: lamp://icews14}}\nE: {lamp: {ranker: {width: 8, "
                "precision: float64, agreement: false, start_from_prior: false}}}\n")
    model = EnergyRanker.from_settings(cfg.lamp.ranker, NE, NR, time_scale=2.0, seed=3, progress=False)
    c = model.config
    assert (c["width"], c["heads"], c["layers"], c["loss"]) == (8, 2, 2, "softmax")
    assert c["precision"] == "float64" and c["agreement"] is False and c["time_scale"] == 2.0 and c["seed"] == 3
    assert not model._start_from_prior
    defaults = Ranker()
    for name, parameter in inspect.signature(EnergyRanker).parameters.items():
        if name in Ranker.model_fields:
            assert parameter.default == getattr(defaults, name), name
    assert EnergyRanker(NE, NR, progress=False)._start_from_prior is True  # as the pipeline's default
    with pytest.raises(TypeError, match="lamp.ranker section"):
        EnergyRanker.from_settings({"width": 8}, NE, NR)


# --- agreement-aware energy (csrc/ranker/ranker.h: agree = 1) ---------------------------------------------------------


def _agree_samples(seed, aux=0, **kw):
    """_gappy samples with some evidence agreeing with its candidate (exact, reversed, half) and, with aux > 0,
    caller-supplied features per evidence event (NaN at padding rows, which must not be read)."""
    s = _gappy(_samples(seed, **kw))
    rng = np.random.default_rng(seed + 100)
    q, m, length, _ = s.evidence.shape
    for _ in range(q * m // 2):
        i, j, k = rng.integers(0, q), rng.integers(0, m), rng.integers(0, length)
        if s.evidence[i, j, k, 0] < 0:
            continue
        s_, r_, o_ = s.candidates[i, j]
        s.evidence[i, j, k] = [(s_, r_, o_), (o_, r_, s_), (s_, (r_ + 1) % NR, rng.integers(0, NE))][rng.integers(3)]
    if aux:
        values = rng.normal(0, 1, s.evidence.shape[:3] + (aux,))
        values[s.evidence[..., 0] < 0] = np.nan
        s = RankingSamples(s.evidence, s.evidence_times, s.candidates, s.candidate_times, s.labels, s.prior, values)
    return s


def _agree_model(width=4, **kw):
    kw.setdefault("precision", "float64")
    return EnergyRanker(NE, NR, width=width, time_scale=2.0, progress=False, agreement=True,
                        **{"start_from_prior": False, **kw})


def test_agreement_layout_appends_blocks_after_the_layers():
    from lamp import _core

    plain = _model(width=6, heads=2, layers=1)
    agree = _agree_model(width=6, heads=2, layers=1, aux=2)
    f = 9 + 2
    np.testing.assert_array_equal(agree.offsets[:len(plain.offsets)], plain.offsets)
    sizes = np.diff(agree.offsets[len(plain.offsets) - 1:])
    np.testing.assert_array_equal(sizes, [6 * f, 2 * f, 6, 6, 6 * 3 * f, 3 * f])  # WKF, UB, K0, V0, W1P, WP
    np.testing.assert_array_equal(agree.params[:len(plain.params)], plain.params)  # the same draws for shared blocks
    np.testing.assert_array_equal(_core.ranker_layout(NE, NR, 6, 2, 1), plain.offsets)
    a0 = len(plain.offsets) - 1
    assert np.all(agree.params[agree.offsets[a0 + 1]:agree.offsets[a0 + 2]] == 0)  # UB = 0
    assert np.all(agree.params[agree.offsets[a0 + 5]:agree.offsets[a0 + 6]] == 0)  # WP = 0


def test_exported_layout_constants_name_the_blocks():
    """lamp._core's RANKER_* constants (which lamp/rank.py and the NumPy oracle read) point at blocks of the sizes
    ranker.h gives them, in a layout of RANKER_READOUT_BLOCKS + layers * RANKER_LAYER_BLOCKS (+ RANKER_AGREE_BLOCKS)."""
    from lamp import _core

    d, heads, layers, aux = 6, 2, 2, 3
    f = _core.RANKER_ID_FEATURES + aux
    assert f == 9 + aux
    sizes = np.diff(_core.ranker_layout(NE, NR, d, heads, layers, True, aux))
    first_layer = _core.RANKER_READOUT_BLOCKS
    first_agree = first_layer + layers * _core.RANKER_LAYER_BLOCKS
    assert len(sizes) == first_agree + _core.RANKER_AGREE_BLOCKS
    readout = {"ENT": NE * d, "REL": NR * d, "OBJ": NE * d, "WQ": d * d, "WK": d * d, "WV": d * d, "W1": 2 * d * d,
               "B1": d, "W2": d, "B2": 1, "GAMMA": 1}
    layer = {"AQ": d * d, "AK": d * d, "AV": d * d, "AO": d * d, "F1": d * d, "FB1": d, "F2": d * d, "FB2": d}
    agree = {"WKF": d * f, "UB": heads * f, "K0": d, "V0": d, "W1P": 3 * d * f, "WP": 3 * f}
    for first, prefix, blocks, count in [(0, "RANKER_BLOCK_", readout, _core.RANKER_READOUT_BLOCKS),
                                         (first_layer, "RANKER_LAYER_BLOCK_", layer, _core.RANKER_LAYER_BLOCKS),
                                         (first_layer + _core.RANKER_LAYER_BLOCKS, "RANKER_LAYER_BLOCK_", layer,
                                          _core.RANKER_LAYER_BLOCKS),
                                         (first_agree, "RANKER_AGREE_BLOCK_", agree, _core.RANKER_AGREE_BLOCKS)]:
        indices = {name: getattr(_core, prefix + name) for name in blocks}
        assert sorted(indices.values()) == list(range(count)), prefix
        for name, size in blocks.items():
            assert sizes[first + indices[name]] == size, prefix + name


@pytest.mark.parametrize("layers", [0, 1, 2])
@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("aux", [0, 3])
def test_agreement_forward_matches_numpy_reference(layers, heads, aux):
    model = _agree_model(width=6, heads=heads, layers=layers, aux=aux)
    model.params = np.random.default_rng(1).normal(0, 0.5, model.params.shape)
    s = _agree_samples(2, aux=aux, with_prior=True)
    assert (s.evidence[..., 0] < 0).all(axis=2).any()  # a candidate without evidence: h = V0
    got = model.energy(s)
    expected = ref.energies(model.params, model.offsets, 6, 2.0, s.evidence, s.evidence_times, s.candidates,
                            s.candidate_times, s.prior, heads=heads, layers=layers, agree=True,
                            evidence_aux=s.evidence_aux)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    _, loss, _ = model._forward(s)
    assert loss == pytest.approx(ref.softmax_loss(expected, s.labels), rel=1e-10)
    fast = _agree_model(width=6, heads=heads, layers=layers, aux=aux, precision="float32")
    fast.params = model.params
    np.testing.assert_allclose(fast.energy(s), expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_agreement_features_by_hand():
    """With every parameter 0 but one entry of WP, the energy is that entry of the pooled summary p."""
    ev = np.array([[[[1, 0, 2], [2, 1, 1], [1, 0, 2], [-1, -1, -1]],
                    [[-1, -1, -1], [-1, -1, -1], [-1, -1, -1], [-1, -1, -1]]]])
    times = np.array([[[3.0, 5.0, 5.0, 0.0], [0.0] * 4]])
    cand = np.array([[[1, 0, 2], [3, 2, 4]]])
    aux = np.zeros((1, 2, 4, 1))
    aux[0, 0, :3, 0] = [0.5, -2.0, 1.5]
    s = RankingSamples(ev, times, cand, np.array([[7.0, 7.0]]), np.array([0]), None, aux)
    model = _agree_model(width=4, aux=1)
    nf = 10
    f = np.array([[1, 1, 1, 1, 0, 1, 1, 1, np.log1p(2.0), 0.5],     # the candidate itself
                  [0, 0, 0, 0, 1, 0, 1, 1, np.log1p(1.0), -2.0],    # the pair reversed, another relation
                  [1, 1, 1, 1, 0, 1, 1, 1, np.log1p(1.0), 1.5]])    # itself again, as recent as the second
    p = np.concatenate([f.sum(axis=0) / 4, f.max(axis=0), f[2]])  # ties in time: the later slot
    np.testing.assert_allclose(ref.agreement_features(ev[0, 0, :3], times[0, 0, :3], cand[0, 0], 7.0, 2.0,
                                                      aux[0, 0, :3]), f)
    wp = model.offsets[-2]
    for k in range(3 * nf):
        model.params[:] = 0.0
        model.params[wp + k] = 1.0
        e = model.energy(s)
        assert e[0, 0] == pytest.approx(p[k], abs=1e-14), k
        assert e[0, 1] == 0.0  # no evidence: p = 0


@pytest.mark.parametrize("layers,heads,aux", [(0, 1, 0), (1, 2, 2), (2, 2, 0)])
@pytest.mark.parametrize("loss", ["softmax", "binary"])
def test_agreement_gradient_of_every_parameter_against_finite_differences(layers, heads, aux, loss):
    model = _agree_model(width=4, heads=heads, layers=layers, aux=aux, loss=loss, dropout=0.0)
    model.params = np.random.default_rng(3).normal(0, 0.5, model.params.shape)
    s = _agree_samples(4, aux=aux, with_prior=True)
    grads = _check_gradients(model, s)
    a0 = 11 + 8 * layers
    for block in range(a0, a0 + 6):  # every agreement block gets a gradient
        assert np.any(grads[model.offsets[block]:model.offsets[block + 1]] != 0.0), block


@pytest.mark.parametrize("width,heads,layers", [(8, 2, 0), (8, 1, 2), (64, 2, 2), (40, 2, 1)])
def test_agreement_float32_matches_float64(width, heads, layers):
    exact = _agree_model(width=width, heads=heads, layers=layers, aux=3)
    exact.params = np.random.default_rng(7).normal(0, 0.15 if width > 8 else 0.5, exact.params.shape)
    fast = _agree_model(width=width, heads=heads, layers=layers, aux=3, precision="float32")
    fast.params = exact.params.copy()
    s = _agree_samples(8, aux=3, q=4, m=5, length=20 if width > 8 else 5, with_prior=True)
    e64, l64, g64 = exact._forward(s, grad=True)
    e32, l32, g32 = fast._forward(s, grad=True)
    np.testing.assert_allclose(e32, e64, rtol=0, atol=2e-5 * np.abs(e64).max())
    assert l32 == pytest.approx(l64, rel=2e-5)
    np.testing.assert_allclose(g32, g64, rtol=0, atol=2e-5 * np.abs(g64).max())
    np.testing.assert_array_equal(fast.energy(s), e32)  # scoring alone: the training pass's energies


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_agreement_chunked_batch_matches_query_by_query(precision, monkeypatch):
    model = _agree_model(width=8, heads=2, layers=1, aux=2, precision=precision)
    model.params = np.random.default_rng(9).normal(0, 0.3, model.params.shape)
    s = _agree_samples(17, aux=2, q=24, m=30, length=40, with_prior=True)
    energies, loss, grads = model._forward(s, grad=True)
    parts = [model._forward(s.subset([i]), grad=True) for i in range(len(s))]
    tol = 1e-12 if precision == "float64" else 1e-5
    np.testing.assert_allclose(energies, np.concatenate([p[0] for p in parts]), rtol=0,
                               atol=tol * np.abs(energies).max())
    np.testing.assert_allclose(grads, np.mean([p[2] for p in parts], axis=0), rtol=0, atol=tol * np.abs(grads).max())
    monkeypatch.setenv("LAMP_RANKER_THREADS", "1")
    serial = model._forward(s, grad=True)
    np.testing.assert_array_equal(serial[0], energies)
    np.testing.assert_array_equal(serial[2], grads)


def _agreement_queries(seed, q, agree=True, ne=500, nr=50, m=5, length=10):
    """Queries whose true candidate's evidence holds its own (s, r, o) once, at a random slot, among random
    triples (agree=False: only random triples); the other candidates' evidence holds random triples only."""
    rng = np.random.default_rng(seed)
    cand = np.stack([rng.integers(0, ne, (q, m)), rng.integers(0, nr, (q, m)), rng.integers(0, ne, (q, m))], -1)
    ev = np.stack([rng.integers(0, ne, (q, m, length)), rng.integers(0, nr, (q, m, length)),
                   rng.integers(0, ne, (q, m, length))], -1)
    labels = rng.integers(0, m, q)  # the true candidate's position is random
    if agree:
        ev[np.arange(q), labels, rng.integers(0, length, q)] = cand[np.arange(q), labels]
    return RankingSamples(ev, rng.uniform(0, 100, (q, m, length)), cand, np.full((q, m), 101.0), labels)


@pytest.mark.slow
def test_agreement_learns_that_evidence_agrees_with_its_candidate():
    """No single id carries the signal (500 entities, 50 relations, random true position, no prior): only the
    comparison of a candidate with its evidence does.  The default ranker (agreement on) finds it; without
    the agreement in the data it stays at chance."""
    train, valid, test = (_agreement_queries(seed, n) for seed, n in ((1, 1200), (2, 300), (3, 400)))
    model = EnergyRanker(500, 50, progress=False).fit(train, valid)
    assert model.config["agreement"]
    assert mean_rank(model.energy(test), test.labels) <= 1.2
    train, valid, test = (_agreement_queries(seed, n, agree=False) for seed, n in ((1, 1200), (2, 300), (3, 400)))
    blind = EnergyRanker(500, 50, progress=False).fit(train, valid)
    assert 2.7 <= mean_rank(blind.energy(test), test.labels) <= 3.3


def test_agreement_aux_from_samples_save_load_and_old_checkpoints(tmp_path):
    from lamp.checkpoint import save_checkpoint
    from lamp.rank import _FORMAT

    train = _agree_samples(20, aux=2, q=20)
    model = EnergyRanker(NE, NR, width=4, epochs=1, progress=False, precision="float64").fit(train,
                                                                                          _agree_samples(21, aux=2))
    assert (model.config["agreement"], model.config["aux"]) == (True, 2)  # A taken from the training samples
    model.save(tmp_path / "r.npz")
    again = EnergyRanker.load(tmp_path / "r.npz")
    assert again.config == model.config
    s = _agree_samples(22, aux=2)
    np.testing.assert_array_equal(model.energy(s), again.energy(s))
    with pytest.raises(ValueError, match="A = 0 features per event, but the ranker was built for A = 2"):
        model.energy(_agree_samples(22))
    # a checkpoint written before agreement existed is the model without it
    plain = _model(width=4)
    old = {k: v for k, v in plain.config.items() if k not in ("agreement", "aux")}
    save_checkpoint(tmp_path / "old.npz", "EnergyRanker", _FORMAT, {"config": old}, params=plain.params)
    loaded = EnergyRanker.load(tmp_path / "old.npz")
    assert loaded.config["agreement"] is False
    np.testing.assert_array_equal(loaded.energy(s), plain.energy(s))  # evidence_aux is ignored without agreement


def test_agreement_bad_input():
    from lamp import _core

    s = _agree_samples(40, aux=2)
    with pytest.raises(ValueError, match=r"evidence_aux must have shape \(3, 4, 5, A\)"):
        RankingSamples(s.evidence, s.evidence_times, s.candidates, s.candidate_times, s.labels, None,
                       s.evidence_aux[:, :, :4])
    with pytest.raises(TypeError, match="evidence_aux must hold real numbers"):
        RankingSamples(s.evidence, s.evidence_times, s.candidates, s.candidate_times, s.labels, None,
                       s.evidence_aux.astype(str))
    bad = s.evidence_aux.copy()
    bad[tuple(np.argwhere(s.evidence[..., 0] >= 0)[0]) + (1,)] = np.inf
    assert np.isfinite(bad[s.evidence[..., 0] >= 0]).sum() == bad[s.evidence[..., 0] >= 0].size - 1
    with pytest.raises(ValueError, match="evidence_aux has a NaN or infinite value at a non-padding position"):
        RankingSamples(s.evidence, s.evidence_times, s.candidates, s.candidate_times, s.labels, None, bad)
    ev = s.evidence.copy()
    ev[2, 1, 0] = [-2, -2, -2]
    with pytest.raises(ValueError, match=r"evidence\[2, 1, 0, 0\] = -2"):
        RankingSamples(ev, s.evidence_times, s.candidates, s.candidate_times, s.labels)
    with pytest.raises(TypeError, match="agreement must be a bool"):
        EnergyRanker(NE, NR, width=4, agreement="yes")
    with pytest.raises(ValueError, match="needs agreement=True"):
        EnergyRanker(NE, NR, width=4, agreement=False, aux=2)
    # the kernel itself: only -1 is padding; ids outside the vocabulary name the array and the position
    m = _agree_model(width=4, aux=2)
    args = [m.params, NE, NR, 4, 2.0, 2, 2, s.evidence, s.evidence_times, s.candidates, s.candidate_times, None,
            s.labels, "softmax", 0.0, 0, False]
    for pos, value, message in (((1, 2, 3, 0), -3, r"evidence\[1, 2, 3, 0\] = -3 is negative and not the padding"),
                                ((0, 3, 4, 2), -1, r"evidence\[0, 3, 4, 2\] = -1 is negative in a row that is not"),
                                ((2, 0, 1, 1), NR, rf"evidence\[2, 0, 1, 1\] = {NR} is out of the vocabulary")):
        ev = s.evidence.copy()
        ev[pos[:3]] = [1, 1, 1]
        ev[pos] = value
        with pytest.raises(ValueError, match=message):
            _core.ranker_forward(*args[:7], ev, *args[8:], agree=True, evidence_aux=s.evidence_aux)
        with pytest.raises(ValueError, match=message):  # the model without agreement checks the same
            _core.ranker_forward(_model(width=4, heads=2, layers=2).params, *args[1:7], ev, *args[8:])
    cand = s.candidates.copy()
    cand[1, 2, 2] = NE
    with pytest.raises(ValueError, match=rf"candidates\[1, 2, 2\] = {NE} is out of the vocabulary"):
        _core.ranker_forward(*args[:9], cand, *args[10:], agree=True, evidence_aux=s.evidence_aux)
    for negative in (-1, -2, -(2 ** 62)):  # a candidate is never padding: any negative id is an error
        cand = s.candidates.copy()
        cand[0, 1, 0] = negative
        with pytest.raises(ValueError, match=rf"candidates\[0, 1, 0\] = {negative}"):
            _core.ranker_forward(*args[:9], cand, *args[10:], agree=True, evidence_aux=s.evidence_aux)
    with pytest.raises(ValueError, match="evidence_aux' needs agree"):
        _core.ranker_forward(_model(width=4, heads=2, layers=2).params, *args[1:], evidence_aux=s.evidence_aux)
    with pytest.raises(ValueError, match="evidence_aux"):
        _core.ranker_forward(*args, agree=True, evidence_aux=s.evidence_aux[:, :2])
    with pytest.raises(ValueError, match="params"):  # the layout of A = 2 does not fit A = 1
        _core.ranker_forward(*args, agree=True, evidence_aux=s.evidence_aux[..., :1])


