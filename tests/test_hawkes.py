"""Multivariate exponential Hawkes kernels against the NumPy oracle, finite differences and quadrature."""
import numpy as np
import pytest
from scipy import integrate

from lamp._reference import hawkes as ref
from lamp.tpp import hawkes_intensity, hawkes_loglik, hawkes_loglik_grad


def _random(seed, k, n, matrix_beta=True, ties=False):
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0, 10, n))
    if ties:
        times = np.round(times)
    marks = rng.integers(0, k, n)
    mu = rng.uniform(0.1, 1.0, k)
    alpha = rng.uniform(0.0, 0.5, (k, k)) / k
    beta = rng.uniform(0.5, 3.0, (k, k)) if matrix_beta else float(rng.uniform(0.5, 3.0))
    return times, marks, mu, alpha, beta


CASES = [(1, 30, True, False), (3, 40, True, True), (3, 40, False, False), (50, 60, True, False), (4, 1, True, False)]


@pytest.mark.parametrize("k, n, matrix_beta, ties", CASES)
def test_intensity_and_loglik_match_reference(k, n, matrix_beta, ties):
    times, marks, mu, alpha, beta = _random(k * 100 + n, k, n, matrix_beta, ties)
    queries = np.concatenate([times, np.random.default_rng(0).uniform(0, 11, 20)])
    np.testing.assert_allclose(hawkes_intensity(times, marks, mu, alpha, beta, queries),
                               ref.intensity(times, marks, mu, alpha, np.asarray(beta), queries), rtol=1e-10)
    end = times[-1] + 0.5
    assert hawkes_loglik(times, marks, mu, alpha, beta, end) == pytest.approx(
        ref.loglik(times, marks, mu, alpha, np.asarray(beta), end), rel=1e-10)


def test_left_limits_and_ties():
    times, marks = np.array([1.0, 1.0]), np.array([0, 0])
    lam = hawkes_intensity(times, marks, [0.5], [[1.0]], 2.0, [1.0, 1.5])
    assert lam[0, 0] == pytest.approx(0.5)  # events at t do not count at t
    assert lam[1, 0] == pytest.approx(0.5 + 2 * 2.0 * np.exp(-1.0))
    # simultaneous events do not excite each other: both see only mu
    ll = hawkes_loglik(times, marks, [0.5], [[1.0]], 2.0, 1.0)
    assert ll == pytest.approx(2 * np.log(0.5) - 0.5 * 1.0)


@pytest.mark.parametrize("matrix_beta", [True, False])
def test_gradients_against_finite_differences(matrix_beta):
    times, marks, mu, alpha, beta = _random(7, 3, 25, matrix_beta, ties=True)
    end = 11.0
    ll, dmu, dalpha, dbeta = hawkes_loglik_grad(times, marks, mu, alpha, beta, end)
    h = 1e-6

    def f(mu_, alpha_, beta_):
        return hawkes_loglik(times, marks, mu_, alpha_, beta_, end)

    for i in range(3):
        e = np.zeros(3)
        e[i] = h
        assert dmu[i] == pytest.approx((f(mu + e, alpha, beta) - f(mu - e, alpha, beta)) / (2 * h), rel=1e-5)
    for i in range(3):
        for j in range(3):
            e = np.zeros((3, 3))
            e[i, j] = h
            assert dalpha[i, j] == pytest.approx((f(mu, alpha + e, beta) - f(mu, alpha - e, beta)) / (2 * h),
                                                 rel=1e-5, abs=1e-7)
            if matrix_beta:
                assert dbeta[i, j] == pytest.approx((f(mu, alpha, beta + e) - f(mu, alpha, beta - e)) / (2 * h),
                                                    rel=1e-5, abs=1e-7)
    if not matrix_beta:
        assert isinstance(dbeta, float)
        assert dbeta == pytest.approx((f(mu, alpha, beta + h) - f(mu, alpha, beta - h)) / (2 * h), rel=1e-5)


def test_compensator_against_quadrature():
    times, marks, mu, alpha, beta = _random(3, 2, 15)
    end = 10.5
    points = np.concatenate([[0.0], times, [end]])
    total = 0.0
    for a, b in zip(points[:-1], points[1:]):
        if b > a:
            total += integrate.quad(lambda t: hawkes_intensity(times, marks, mu, alpha, beta, [t]).sum(), a, b,
                                    epsabs=1e-12, epsrel=1e-12)[0]
    lam_events = hawkes_intensity(times, marks, mu, alpha, beta, times)[np.arange(len(times)), marks]
    assert hawkes_loglik(times, marks, mu, alpha, beta, end) == pytest.approx(np.log(lam_events).sum() - total,
                                                                              rel=1e-9)


def test_bad_input():
    t, m = np.array([0.5, 1.0]), np.array([0, 1])
    mu, alpha = np.array([0.2, 0.3]), np.full((2, 2), 0.1)
    with pytest.raises(ValueError, match="sorted"):
        hawkes_loglik(t[::-1], m, mu, alpha, 1.0, 2.0)
    with pytest.raises(ValueError, match="not finite"):
        hawkes_loglik(np.array([0.5, np.nan]), m, mu, alpha, 1.0, 2.0)
    with pytest.raises(ValueError, match=r"marks\[1\] = 2 is outside"):
        hawkes_loglik(t, np.array([0, 2]), mu, alpha, 1.0, 2.0)
    with pytest.raises(ValueError, match="mu"):
        hawkes_loglik(t, m, -mu, alpha, 1.0, 2.0)
    with pytest.raises(ValueError, match="alpha"):
        hawkes_loglik(t, m, mu, -alpha, 1.0, 2.0)
    with pytest.raises(ValueError, match="beta"):
        hawkes_loglik(t, m, mu, alpha, -1.0, 2.0)
    with pytest.raises(ValueError, match="alpha must have shape"):
        hawkes_loglik(t, m, mu, np.ones((3, 3)), 1.0, 2.0)
    with pytest.raises(ValueError, match="end_time"):
        hawkes_loglik(t, m, mu, alpha, 1.0, 0.7)
    with pytest.raises(ValueError, match="empty"):
        hawkes_loglik([], [], mu, alpha, 1.0, 2.0)
    with pytest.raises(TypeError, match="marks must be integer"):
        hawkes_loglik(t, np.array([0.0, 1.0]), mu, alpha, 1.0, 2.0)
    with pytest.raises(ValueError, match="is zero"):
        hawkes_loglik(t, m, np.zeros(2), alpha, 1.0, 2.0)
    # non-contiguous arrays are converted, not misread
    wide = np.array([0.5, 9.0, 1.0, 9.0])[::2]
    assert hawkes_loglik(wide, m, mu, alpha, 1.0, 2.0) == pytest.approx(hawkes_loglik(t, m, mu, alpha, 1.0, 2.0))


# --- HawkesProcess: fitting, thinning, simulation ---------------------------------------------

from scipy import stats  # noqa: E402

from lamp.tpp import HawkesProcess  # noqa: E402

TRUE = dict(mu=[0.3, 0.2], alpha=[[0.3, 0.2], [0.1, 0.4]], beta=1.5)


def test_fit_recovers_known_parameters():
    truth = HawkesProcess(2).set_params(**TRUE)
    t, m = truth.simulate(20000, seed=1)
    assert 15000 < len(t) < 25000
    fitted = HawkesProcess(2).fit([(t, m)], end_times=[20000.0])
    assert fitted.fit_result["converged"]
    np.testing.assert_allclose(fitted.mu, TRUE["mu"], atol=0.03)
    np.testing.assert_allclose(fitted.alpha, TRUE["alpha"], atol=0.05)
    assert fitted.beta[0, 0] == pytest.approx(1.5, rel=0.15)
    fixed = HawkesProcess(2, decay=1.5).fit([(t, m)], end_times=[20000.0])
    np.testing.assert_allclose(fixed.alpha, TRUE["alpha"], atol=0.05)


def test_thinning_matches_the_exact_next_time_distribution():
    proc = HawkesProcess(2).set_params(**TRUE)
    history_t, history_m = np.array([0.0, 0.4, 1.0, 1.1]), np.array([0, 1, 1, 0])
    times, marks = proc.sample_next(history_t, history_m, n=3000, seed=7)
    assert np.all(times > 1.1)
    mu, alpha, beta = np.array(TRUE["mu"]), np.array(TRUE["alpha"]), TRUE["beta"]

    def cdf(t):  # 1 - exp(-compensator from the last event to t)
        t = np.atleast_1d(t)
        comp = mu.sum() * (t - 1.1)
        for ti, c in zip(history_t, history_m):
            comp += alpha[:, c].sum() * (np.exp(-beta * (1.1 - ti)) - np.exp(-beta * (t - ti)))
        return 1 - np.exp(-comp)

    assert stats.kstest(times, cdf).pvalue > 0.01
    again = proc.sample_next(history_t, history_m, n=3000, seed=7)
    np.testing.assert_array_equal(again[0], times)  # seeded and reproducible
    # the mark of the next event follows the intensities at its time
    lam = proc.intensity(history_t, history_m, times)
    expected = (lam[:, 0] / lam.sum(axis=1)).mean()
    assert np.mean(marks == 0) == pytest.approx(expected, abs=0.04)


def test_propose_and_save_load(tmp_path):
    proc = HawkesProcess(3).set_params([0.1, 0.5, 0.2], np.full((3, 3), 0.1), 1.0)
    types, probs, next_time = proc.propose(np.array([0.0, 1.0]), np.array([1, 1]), m=2, n_samples=4000)
    assert types[0] == 1 and probs[0] > probs[1] and next_time > 1.0
    proc.save(tmp_path / "h.npz")
    again = HawkesProcess.load(tmp_path / "h.npz")
    np.testing.assert_array_equal(again.alpha, proc.alpha)
    with pytest.raises(ValueError, match="m must be in 1..3"):
        proc.propose(np.array([0.0]), np.array([0]), m=4)
    with pytest.raises(RuntimeError, match="no parameters"):
        HawkesProcess(2).simulate(10.0)
    with pytest.raises(ValueError, match="max_events"):
        HawkesProcess(1).set_params([5.0], [[0.5]], 1.0).simulate(1000.0, max_events=10)


def test_batched_loglik_over_the_store_equals_the_sum():
    from lamp.data import EventSequences
    from lamp.tpp import hawkes_loglik_batch

    rng = np.random.default_rng(5)
    seqs = [np.sort(rng.uniform(0, 5, rng.integers(1, 20))) for _ in range(6)]
    marks = [rng.integers(0, 3, len(t)) for t in seqs]
    data = EventSequences.from_lists([t.tolist() for t in seqs], [m.tolist() for m in marks], 3)
    mu, alpha, beta = np.array([0.2, 0.3, 0.1]), np.full((3, 3), 0.1), 1.3
    ends = np.array([t[-1] + 1 for t in seqs])
    expected = sum(hawkes_loglik(t, m, mu, alpha, beta, e) for t, m, e in zip(seqs, marks, ends))
    assert hawkes_loglik_batch(data, mu, alpha, beta, ends) == pytest.approx(expected, rel=1e-12)
    ll, dmu, dalpha, dbeta = hawkes_loglik_batch(data, mu, alpha, beta, ends, grad=True)
    parts = [hawkes_loglik_grad(t, m, mu, alpha, beta, e) for t, m, e in zip(seqs, marks, ends)]
    np.testing.assert_allclose(dalpha, sum(p[2] for p in parts), rtol=1e-12)
    assert dbeta == pytest.approx(sum(p[3] for p in parts), rel=1e-12)
    bad = ends.copy()
    bad[4] = 0.0
    with pytest.raises(ValueError, match="sequence 4: end_time"):
        hawkes_loglik_batch(data, mu, alpha, beta, bad)


# --- quadrature for intensities without a closed form -----------------------------------------

from lamp.tpp.quadrature import compensator, integrate_intervals, quadrature_nodes  # noqa: E402


@pytest.mark.parametrize("order", [1, 3, 8])
def test_gauss_legendre_is_exact_for_polynomials(order):
    nodes, weights = quadrature_nodes("gauss_legendre", order)
    assert weights.sum() == pytest.approx(1.0, rel=1e-13)
    starts, ends = np.array([0.0, 1.5]), np.array([2.0, 4.0])
    degree = 2 * order - 1
    values = ((starts[:, None] + (ends - starts)[:, None] * nodes) ** degree)
    exact = (ends ** (degree + 1) - starts ** (degree + 1)) / (degree + 1)
    np.testing.assert_allclose(integrate_intervals(starts, ends, values, weights), exact, rtol=1e-11)


def test_easytpp_parity_grid():
    rng = np.random.default_rng(0)
    starts = np.sort(rng.uniform(0, 10, 30))
    ends = starts + rng.exponential(1.0, 30)
    g = 20
    grid = np.linspace(0, 1, g)
    values = np.exp(-(starts[:, None] + (ends - starts)[:, None] * grid))
    nodes, weights = quadrature_nodes("easytpp_mean", g)
    np.testing.assert_array_equal(nodes, grid)
    # EasyTPP (use_mc_samples: true): mean of the intensities on the grid times the interval length
    expected = values.mean(axis=1) * (ends - starts)
    np.testing.assert_allclose(integrate_intervals(starts, ends, values, weights), expected, rtol=1e-14)
    _, trap = quadrature_nodes("easytpp_trapezoid", g)
    np.testing.assert_allclose(integrate_intervals(starts, ends, values, trap),
                               np.trapezoid(values, grid, axis=1) * (ends - starts), rtol=1e-13)


def test_gauss_legendre_compensator_of_a_hawkes_process_matches_the_closed_form():
    times, marks, mu, alpha, beta = _random(11, 2, 30)
    end = 11.0
    numeric = compensator(lambda t: hawkes_intensity(times, marks, mu, alpha, beta, t.ravel()).sum(axis=1),
                          times, end, "gauss_legendre", 12)
    lam = hawkes_intensity(times, marks, mu, alpha, beta, times)[np.arange(len(times)), marks]
    closed = np.log(lam).sum() - hawkes_loglik(times, marks, mu, alpha, beta, end)
    assert numeric == pytest.approx(closed, rel=1e-10)


def test_quadrature_bad_input():
    with pytest.raises(ValueError, match="scheme must be one of"):
        quadrature_nodes("simpson", 3)
    with pytest.raises(ValueError, match="order"):
        quadrature_nodes("gauss_legendre", 0)
    with pytest.raises(ValueError, match="interval 0"):
        integrate_intervals(np.array([2.0]), np.array([1.0]), np.ones((1, 2)), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="'values'"):
        integrate_intervals(np.array([0.0]), np.array([1.0]), np.ones((1, 3)), np.array([0.5, 0.5]))


def test_l1_penalty_shrinks_excitation_to_zero():
    truth = HawkesProcess(2).set_params([0.5, 0.5], [[0.0, 0.0], [0.0, 0.3]], 1.5)
    t, m = truth.simulate(5000, seed=3)
    plain = HawkesProcess(2, decay=1.5).fit([(t, m)], end_times=[5000.0])
    sparse = HawkesProcess(2, decay=1.5, l1=0.05).fit([(t, m)], end_times=[5000.0])
    assert sparse.alpha.sum() < plain.alpha.sum()
    assert (sparse.alpha < 1e-6).sum() >= 2 and sparse.alpha[1, 1] > 0.1
    with pytest.raises(ValueError, match="penalties"):
        HawkesProcess(2, l1=-1.0)


@pytest.mark.parametrize("k, n, ties", [(1, 40, False), (3, 50, True), (50, 80, False)])
def test_uniform_decay_fast_path(k, n, ties):
    """A scalar beta, or a K x K beta with equal entries, takes the one-exp-per-time path: it must agree
    with the NumPy oracle, and its per-pair dbeta with finite differences through the general path
    (perturbing one entry makes the matrix non-uniform)."""
    times, marks, mu, alpha, _ = _random(k + n, k, n, ties=ties)
    end = times[-1] + 0.7
    beta = np.full((k, k), 1.3)
    assert hawkes_loglik(times, marks, mu, alpha, beta, end) == pytest.approx(
        ref.loglik(times, marks, mu, alpha, beta, end), rel=1e-10)
    assert hawkes_loglik(times, marks, mu, alpha, 1.3, end) == pytest.approx(
        ref.loglik(times, marks, mu, alpha, beta, end), rel=1e-10)
    _, _, dalpha, dbeta = hawkes_loglik_grad(times, marks, mu, alpha, beta, end)
    _, _, _, dbeta_scalar = hawkes_loglik_grad(times, marks, mu, alpha, 1.3, end)
    assert dbeta_scalar == pytest.approx(dbeta.sum(), rel=1e-10)
    h = 1e-6
    rng = np.random.default_rng(k)
    for _ in range(4):
        i, j = rng.integers(0, k, 2)
        e = np.zeros((k, k))
        e[i, j] = h
        fd = (hawkes_loglik(times, marks, mu, alpha, beta + e, end)
              - hawkes_loglik(times, marks, mu, alpha, beta - e, end)) / (2 * h)
        assert dbeta[i, j] == pytest.approx(fd, rel=1e-5, abs=1e-7)
        fd = (hawkes_loglik(times, marks, mu, alpha + e, beta, end)
              - hawkes_loglik(times, marks, mu, alpha - e, beta, end)) / (2 * h)
        assert dalpha[i, j] == pytest.approx(fd, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("n", [16, 17, pytest.param(1033, marks=pytest.mark.slow), 3001])  # 1033: the O(n^2) oracle
def test_one_type_lanes_path(n):
    """One type with strictly increasing times runs 8 lanes of events side by side (hawkes_one.c).  Its
    log-likelihood must equal the NumPy oracle and its gradient finite differences, for lengths that
    leave partial blocks, lanes of fewer than 8 steps and a tail; a huge decay (exp arguments below
    -708) must not change that."""
    rng = np.random.default_rng(n)
    times = np.cumsum(rng.exponential(0.5, n))
    marks = np.zeros(n, dtype=np.int64)
    end = times[-1] + 0.3
    for beta in (1.3, 2000.0):
        mu, alpha = np.array([0.4]), np.array([[0.6]])
        ll, dmu, dalpha, dbeta = hawkes_loglik_grad(times, marks, mu, alpha, beta, end)
        if n <= 1033:
            assert ll == pytest.approx(ref.loglik(times, marks, mu, alpha, np.full((1, 1), beta), end), rel=1e-11)
        h = 1e-6 * beta
        fd = (hawkes_loglik(times, marks, mu, alpha, beta + h, end)
              - hawkes_loglik(times, marks, mu, alpha, beta - h, end)) / (2 * h)
        assert dbeta == pytest.approx(fd, rel=1e-5, abs=1e-9)
        fd = (hawkes_loglik(times, marks, mu, alpha + 1e-6, beta, end)
              - hawkes_loglik(times, marks, mu, alpha - 1e-6, beta, end)) / 2e-6
        assert dalpha[0, 0] == pytest.approx(fd, rel=1e-5, abs=1e-9)
        fd = (hawkes_loglik(times, marks, mu + 1e-6, alpha, beta, end)
              - hawkes_loglik(times, marks, mu - 1e-6, alpha, beta, end)) / 2e-6
        assert dmu[0] == pytest.approx(fd, rel=1e-6)
    # the same sequence with a tie gets the left-limit semantics of the general path
    tied = times.copy()
    tied[n // 2] = tied[n // 2 - 1]
    if n <= 1033:
        assert hawkes_loglik(tied, marks, mu, alpha, 1.3, end) == pytest.approx(
            ref.loglik(tied, marks, mu, alpha, np.full((1, 1), 1.3), end), rel=1e-11)


@pytest.mark.parametrize("where", [0, 5, 200, 1020, 1028, 1032])
def test_one_type_lanes_path_rejects_bad_events(where):
    """A bad time or mark anywhere in a long one-type sequence (in a lane's 8-step tiles, its last
    steps, or the tail) is reported like in a short one, never read as data."""
    n = 1033
    times = np.arange(1.0, n + 1.0)
    marks = np.zeros(n, dtype=np.int64)
    bad_marks = marks.copy()
    bad_marks[where] = 1
    with pytest.raises(ValueError, match=rf"marks\[{where}\] = 1 is outside"):
        hawkes_loglik(times, bad_marks, [0.5], [[0.3]], 1.0, n + 1.0)
    for value, message in ((np.nan, "not finite"), (np.inf, "not finite"), (-5.0, "sorted")):
        bad = times.copy()
        bad[where] = value
        if where == 0 and value == -5.0:
            continue  # a first time of -5 is a valid sequence
        with pytest.raises(ValueError, match=message):
            hawkes_loglik(bad, marks, [0.5], [[0.3]], 1.0, n + 1.0)


@pytest.mark.slow
def test_simd_width_and_its_override():
    """The vector width is reported, and LAMP_SIMD_WIDTH can only narrow it; results agree across widths."""
    import os
    import subprocess
    import sys

    from lamp import _core
    assert _core.simd_width() in (2, 4, 8)
    code = ("import numpy as np; from lamp import _core; from lamp.tpp import hawkes_loglik_grad;"
            "t = np.cumsum(np.random.default_rng(5).exponential(1.0, 999)); m = np.zeros(999, dtype=np.int64);"
            "print(_core.simd_width(), repr(hawkes_loglik_grad(t, m, [0.3], [[0.5]], 1.7, t[-1] + 1)[0]))")
    out = {}
    for width in ("2", "4", "16"):
        env = dict(os.environ, LAMP_SIMD_WIDTH=width)
        got, ll = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                 check=True).stdout.split()
        out[width] = (int(got), float(ll))
    assert out["2"][0] == 2
    assert out["4"][0] == min(4, _core.simd_width())
    assert out["16"][0] == _core.simd_width()  # not a width: ignored
    assert out["2"][1] == pytest.approx(out["16"][1], rel=1e-13)
    assert out["4"][1] == pytest.approx(out["16"][1], rel=1e-13)
