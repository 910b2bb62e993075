"""ITU-T P.1401 metrics, its tests between models, Holm, and Pinson & Wolf's resolving power, each checked against a
second implementation written here from the formulas (and scipy.stats), and against numbers worked by hand."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats, special

from gmc_nb.analysis.p1401 import (MAPPINGS, map_to_mos, mos_ci95, check_n_ratings, f_test, or_z_test, fisher_z_test,
                                   holm, p1401_metrics, p1401_from_data, resolving_curve, curve_crossing,
                                   resolving_power, resolving_power_from_data)

T975_9 = 2.2621571627982   # t(0.975, 9), from a table


# ---------------------------------------------------------------- worked by hand
def test_metrics_worked_by_hand():
    "5 stimuli, 10 ratings each, scores already in MOS units (mapping 'none', d = 0)"
    mos = np.array([1., 2, 3, 4, 5]); pred = np.array([1.5, 2, 2.5, 4.5, 5]); std = np.array([.5, 1, .5, 1, 1])
    r = p1401_metrics(mos, {'m': pred}, std, 10, mapping='none').table.iloc[0]
    # errors −0.5, 0, 0.5, −0.5, 0: RMSE = √(0.75 / 5)
    assert r.d == 0 and r.RMSE == pytest.approx(math.sqrt(0.15), abs=1e-12)
    # ci95 = 2.26216 · σ / √10: 0.3576785 (σ = 0.5) and 0.715357 (σ = 1); stimuli 0 and 2 leave their interval by 0.1423215
    e_star = 0.5 - T975_9 * 0.5 / math.sqrt(10)
    assert e_star == pytest.approx(0.1423215, abs=1e-7)
    assert r.RMSE_star == pytest.approx(math.sqrt(2 * e_star ** 2 / 5), abs=1e-12)
    assert r.OR == 0.4 and r.n_outliers == 2 and r.n == 5


def test_tests_worked_by_hand():
    F, p = f_test(0.5, 0.25, 10, 10)
    assert F == 4 and p == pytest.approx(0.0195814, abs=1e-7)
    z, p = or_z_test(0.4, 0.1, 10, 10)          # P = 0.25, σ = √(0.25·0.75·0.2) = 0.193649
    assert z == pytest.approx(1.549193, abs=1e-6) and p == pytest.approx(0.121335, abs=1e-6)
    z, p = fisher_z_test(0.9, 0.8, 50, 50)      # (1.4722195 − 1.0986123) / √(2/47) = 0.3736072 / 0.2062842
    assert z == pytest.approx(1.811128, abs=1e-6) and p == pytest.approx(0.070121, abs=1e-6)


def test_holm_by_hand():
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → 0.06 (step-down keeps it monotone)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], atol=1e-15)
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    out = holm([0.01, np.nan, 0.02])            # NaN kept, not counted (m = 2)
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)
    with pytest.raises(ValueError, match='p: values must lie in'):
        holm([0.1, 1.5])


# ---------------------------------------------------------------- second implementations from the formulas
def _holm_loop(p):
    m = len(p); order = sorted(range(m), key=lambda i: p[i]); out = [0.] * m; run = 0.
    for k, i in enumerate(order):
        run = max(run, min(1., (m - k) * p[i])); out[i] = run
    return out


def test_holm_against_loop():
    p = np.random.default_rng(0).uniform(0, .2, 30)
    np.testing.assert_allclose(holm(p), _holm_loop(list(p)), atol=1e-15)


@pytest.mark.parametrize('a,b,df', [(3.1, 2.7, 58), (1.0, 1.9, 200), (0.8, 0.8, 12)])
def test_f_test_against_scipy_and_beta(a, b, df):
    F, p = f_test(a, b, df, df)
    assert F == pytest.approx(max(a, b) ** 2 / min(a, b) ** 2)
    assert p == pytest.approx(stats.f.sf(F, df, df), abs=1e-14)
    assert p == pytest.approx(special.betainc(df / 2, df / 2, df / (df + df * F)), abs=1e-12)   # F's survival function


def test_f_test_zero_rmse():
    assert f_test(0., 0., 5, 5)[1] == 1. and np.isnan(f_test(0., 0., 5, 5)[0])
    F, p = f_test(0.2, 0., 5, 5)
    assert F == np.inf and p == 0.


def test_z_tests_against_formula():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, b = rng.uniform(0.05, 0.95, 2); na, nb = rng.integers(20, 500, 2)
        P = (na * a + nb * b) / (na + nb); z = (a - b) / math.sqrt(P * (1 - P) * (1 / na + 1 / nb))
        zz, p = or_z_test(a, b, na, nb)
        assert zz == pytest.approx(z, rel=1e-12) and p == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-9)
        ra, rb = rng.uniform(-0.9, 0.95, 2)
        z = (0.5 * math.log((1 + ra) / (1 - ra)) - 0.5 * math.log((1 + rb) / (1 - rb))) / math.sqrt(1 / (na - 3) + 1 / (nb - 3))
        zz, p = fisher_z_test(ra, rb, na, nb)
        assert zz == pytest.approx(z, rel=1e-10) and p == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-9)
    assert or_z_test(0., 0., 10, 10) == (pytest.approx(np.nan, nan_ok=True), 1.)


def _synthetic(n=120, seed=2):
    rng = np.random.default_rng(seed)
    q = rng.uniform(0, 1, n); mos = 1 + 4 * q + rng.normal(0, .25, n); std = rng.uniform(.4, 1.1, n)
    preds = pd.DataFrame({'a': q + rng.normal(0, .05, n), 'b': q ** 1.5 + rng.normal(0, .1, n), 'c': -q + rng.normal(0, .2, n)})
    return mos, preds, std, rng.integers(8, 30, n)


def test_metrics_against_formulas():
    mos, preds, std, M = _synthetic()
    res = p1401_metrics(mos, preds, std, M, mapping='linear')
    N = len(mos); ci = stats.t.ppf(0.975, M - 1) * std / np.sqrt(M)
    for k in preds:
        fit = np.polyval(np.polyfit(preds[k], mos, 1), preds[k]); e = mos - fit
        r = res.table.set_index('model').loc[k]
        assert r.RMSE == pytest.approx(np.sqrt(np.sum(e ** 2) / (N - 2)), rel=1e-10)
        assert r.RMSE_star == pytest.approx(np.sqrt(np.sum(np.maximum(0, np.abs(e) - ci) ** 2) / (N - 2)), rel=1e-10)
        assert r.OR == pytest.approx(np.mean(np.abs(e) > ci)) and r.PLCC == pytest.approx(stats.pearsonr(fit, mos)[0], rel=1e-10)
    # each test, again from the formulas, and Holm per test type across the three pairs
    t = res.table.set_index('model'); tests = res.tests
    assert len(tests) == 9 and set(tests.test) == {'RMSE* F', 'OR z', 'PLCC Fisher-z'}
    for name, grp in tests.groupby('test'):
        np.testing.assert_allclose(grp.p_holm, _holm_loop(list(grp.p)), atol=1e-15)
        for _, row in grp.iterrows():
            A, B = t.loc[row.A], t.loc[row.B]
            if name == 'RMSE* F':
                F = max(A.RMSE_star, B.RMSE_star) ** 2 / min(A.RMSE_star, B.RMSE_star) ** 2
                assert row.stat == pytest.approx(F) and row.p == pytest.approx(stats.f.sf(F, N - 2, N - 2), abs=1e-14)
            elif name == 'PLCC Fisher-z':
                z = (np.arctanh(A.PLCC) - np.arctanh(B.PLCC)) / np.sqrt(2 / (N - 3))
                assert row.stat == pytest.approx(z) and row.p == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert (tests.significant == (tests.p_holm < 0.05)).all()


def test_mapped_columns_and_degrees_of_freedom():
    mos, preds, std, M = _synthetic()
    for m, d in zip(MAPPINGS, [0, 2, 4, 4, 5]):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            r = p1401_metrics(mos, preds, std, M, mapping=m)
        assert (r.table.d == d).all() and (r.table.mapping == m).all()
        assert r.mapped.shape == preds.shape
    # the cubic fit is P.1401's third-order polynomial: no worse than the linear fit, in the same direction
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        lin, cub = (p1401_metrics(mos, preds, mapping=m).table.set_index('model') for m in ('linear', 'cubic'))
    assert (cub.RMSE * np.sqrt(len(mos) - 4) <= lin.RMSE * np.sqrt(len(mos) - 2) + 1e-9).all()


def test_cubic_constrained_when_not_monotone():
    x = np.linspace(-1, 1, 80); y = 3 + 2 * x ** 2 + 0.3 * x
    free = np.polyfit(x, y, 3)
    assert (np.polyval(np.polyder(free), x) < 0).any()          # the least-squares cubic turns back
    with pytest.warns(UserWarning, match='not monotone'):
        mp = map_to_mos(x, y, 'cubic')
    assert mp.monotone and np.all(np.diff(mp.mapped) >= -1e-12)
    assert np.sum((y - mp.mapped) ** 2) <= np.sum((y - np.polyval(np.polyfit(x, y, 1), x)) ** 2)   # beats the line


def test_logistic_not_monotone_gives_nan_with_note():
    x = np.linspace(-1, 1, 200); y = 3 + x ** 2 + 0.01 * np.sin(40 * x)
    r = p1401_metrics(y, {'u': x, 'ok': y + 0.01 * np.cos(9 * x)}, mapping='logistic5')
    t = r.table.set_index('model')
    assert np.isnan(t.loc['u', 'RMSE']) and any('not monotone' in n for n in r.notes)
    assert r.tests.p.isna().all() and not r.tests.significant.any()


def test_missing_std_or_counts():
    mos, preds, std, M = _synthetic()
    for kw in (dict(), dict(std=std), dict(n_ratings=M)):
        r = p1401_metrics(mos, preds, mapping='linear', **kw)
        assert r.table.RMSE_star.isna().all() and r.table.OR.isna().all() and r.notes
        assert set(r.tests.test) == {'RMSE F', 'PLCC Fisher-z'}


def test_bad_input():
    with pytest.raises(ValueError, match='n_ratings: must be >= 2, got 1 at row 4'):
        check_n_ratings([5, 5, 5, 5, 1], 5)
    with pytest.raises(ValueError, match='n_ratings: length 2'):
        check_n_ratings([5, 5], 3)
    with pytest.raises(ValueError, match="mapping: one of"):
        p1401_metrics([1, 2, 3, 4], [1, 2, 3, 5], mapping='spline')
    with pytest.raises(ValueError, match='std'):
        mos_ci95([1, np.nan], 5)
    with pytest.raises(ValueError, match="prediction 'x': length 3"):
        p1401_metrics([1, 2, 3, 4], {'x': [1, 2, 3]})


# ---------------------------------------------------------------- resolving power against a plain loop
def _loop_resolving_power(s, mos, se2, level=0.95, n_bins=10):
    "Pinson & Wolf: every pair i < j, Δ ≥ 0 by swapping, 19 half-overlapping windows, last upward crossing of `level`"
    n = len(s); D, C = [], []
    for i in range(n):
        for j in range(i + 1, n):
            d = s[j] - s[i]; dz = mos[j] - mos[i]
            if d < 0: d, dz = -d, -dz
            se = math.sqrt(se2[i] + se2[j])
            c = 0.5 if d == 0 else (0.5 * math.erfc(-dz / se / math.sqrt(2)) if se > 0 else 0.5 + 0.5 * np.sign(dz))
            D.append(d); C.append(c)
    lo, hi = min(D), max(D); w = (hi - lo) / n_bins
    e = [lo + w / 2 * k for k in range(2 * n_bins + 1)]
    centers, means = [], []
    for k in range(2 * n_bins - 1):
        inside = [c for d, c in zip(D, C) if e[k] <= d < e[k + 2]]
        if inside: centers.append(e[k + 1]); means.append(sum(inside) / len(inside))
    i = len(centers) - 2
    while means[i] > level and i > 0: i -= 1
    j = i + 1
    if not means[i] <= level <= means[j]: return centers, means, float('nan')
    return centers, means, centers[i] + (level - means[i]) * (centers[j] - centers[i]) / (means[j] - means[i])


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_resolving_power_against_loop(seed):
    rng = np.random.default_rng(seed); n = 45
    true = rng.uniform(1, 5, n); std = rng.uniform(.3, 1.2, n); M = rng.integers(5, 25, n)
    std[3] = 0.; std[7] = 0.                             # a pair with no spread at all
    mos = true + rng.normal(0, std / np.sqrt(M)); s = np.round(true + rng.normal(0, .3, n), 1)   # ties: confidence 0.5
    assert len(np.unique(s)) < n
    se2 = std ** 2 / M
    centers, means, rp = _loop_resolving_power(list(s), list(mos), list(se2))
    cv = resolving_curve(s, mos, se2)
    np.testing.assert_allclose(cv.center, centers, atol=1e-12)
    np.testing.assert_allclose(cv.confidence, means, atol=1e-9)
    got, why = curve_crossing(cv)
    assert np.isfinite(rp) and got == pytest.approx(rp, abs=1e-9) and why == ''
    # the public function, scores already in MOS units; small blocks give the same answer
    res = resolving_power(mos, {'m': s}, std, M, mapping='none')
    assert res.table.delta_mos.iloc[0] == pytest.approx(rp, abs=1e-9)
    np.testing.assert_allclose(resolving_curve(s, mos, se2, chunk=50).confidence, means, atol=1e-9)


def test_resolving_power_linear_mapping_scales():
    "After a linear mapping Δmos = slope · Δscore; a finer model resolves a smaller Δmos"
    rng = np.random.default_rng(5); n = 200
    true = rng.uniform(0, 100, n); std = rng.uniform(10, 20, n); mos = true + rng.normal(0, std / np.sqrt(20))
    raw = 0.03 * true + rng.normal(0, .3, n); coarse = 0.03 * true + rng.normal(0, .9, n)
    res = resolving_power(mos, {'raw': raw, 'coarse': coarse}, std, 20).table.set_index('model')
    slope = np.polyfit(raw, mos, 1)[0]
    assert res.loc['raw', 'delta_mos'] == pytest.approx(slope * res.loc['raw', 'delta_score'], rel=1e-6)
    assert res.loc['raw', 'delta_mos'] < res.loc['coarse', 'delta_mos']
    with pytest.raises(ValueError, match='std, n_ratings'):
        resolving_power(mos, raw, std, None)


def test_crossing_undefined_is_nan_with_reason():
    flat = pd.DataFrame(dict(center=[1., 2, 3], confidence=[.5, .6, .7]))
    v, why = curve_crossing(flat)
    assert np.isnan(v) and 'never reaches' in why
    high = pd.DataFrame(dict(center=[1., 2, 3], confidence=[.96, .97, .99]))
    v, why = curve_crossing(high)
    assert np.isnan(v) and 'exceeds' in why


# ---------------------------------------------------------------- real data
def test_livec(shared_data):
    from gmc_nb.analysis.datasets import load_dataset
    d = load_dataset('gmc:livec', root=shared_data)
    r = p1401_from_data(d, n_ratings=175)
    t = r.table.set_index('model')
    assert len(t) == 7 and (t.n == 1162).all() and t.PLCC.idxmax() == 'qalign' and t.RMSE_star.idxmin() == 'qalign'
    assert (t.RMSE_star < t.RMSE).all() and len(r.tests) == 3 * 21 and r.n_source == 'given'
    # linear mapping: PLCC is the raw Pearson of the oriented predictions
    assert t.loc['niqe', 'PLCC'] == pytest.approx(stats.pearsonr(d.oriented()['niqe'], d.mos)[0], rel=1e-10)
    rp = resolving_power_from_data(d, models=['qalign', 'niqe'], n_ratings=175).table.set_index('model')
    assert rp.loc['qalign', 'delta_mos'] < rp.loc['niqe', 'delta_mos']
    with pytest.raises(ValueError, match='models'):
        p1401_from_data(d, models=['nosuch'], n_ratings=175)


def test_livec_counts_from_registry(shared_data):
    "n_ratings=None: the counts come from gmc_nb.analysis.krasula.n_ratings_for (helper K's registry)"
    try:
        from gmc_nb.analysis.krasula import n_ratings_for
    except ImportError as e:
        pytest.skip(f'gmc_nb.analysis.krasula not available yet ({e})')
    from gmc_nb.analysis.datasets import load_dataset
    d = load_dataset('gmc:livec', root=shared_data)
    try:
        n, src = n_ratings_for(d, None)
    except ValueError:   # no registry entry for LIVE Challenge: the metrics say so and leave RMSE_star NaN
        r = p1401_from_data(d, models=['qalign'])
        assert np.isnan(r.table.RMSE_star.iloc[0]) and 'n-ratings' in ' '.join(r.notes).replace('_', '-')
        return
    r = p1401_from_data(d, models=['qalign', 'niqe'])
    assert np.isfinite(r.table.RMSE_star).all() and r.n_source == src
    ref = p1401_from_data(d, models=['qalign', 'niqe'], n_ratings=np.asarray(n, float))
    np.testing.assert_allclose(r.table.RMSE_star, ref.table.RMSE_star)


def test_koniq_votes_give_p1401_its_std(shared_data):
    "Q-Bench's KonIQ-10k has no std column: the vote histograms give it, so rmse* and the outlier ratio are computed"
    import numpy as np
    from gmc_nb.analysis.datasets import load_dataset
    from gmc_nb.analysis.krasula import koniq_votes, rating_std
    import gmc_nb.qdebias.qbench  # noqa: F401  (registers the source)
    from gmc_nb.analysis.p1401 import p1401_from_data, p1401_metrics
    d = load_dataset('qbench:koniq').select(['qwen-vl', 'llava_v1.5'])
    d = d.subset(np.arange(0, len(d.mos), 25))
    v = koniq_votes().loc[d.images]
    np.testing.assert_allclose(rating_std(d), v['std'].to_numpy())
    r = p1401_from_data(d)
    assert r.table.RMSE_star.notna().all() and r.table.OR.notna().all()
    ref = p1401_metrics(d.mos, d.oriented(), v['std'].to_numpy(), v['n'].to_numpy())
    np.testing.assert_allclose(r.table.RMSE_star, ref.table.RMSE_star, rtol=1e-12)
