"""Krasula et al. 2016 pair-based accuracy: against a plain pair-loop check written here (the reference code's rules,
as read in Netflix's VMAF port), DeLong's O(mn) definition, the VMAF port's own published numbers, and real KonIQ data."""
import numpy as np
import pandas as pd
import pytest

from gmc_nb.analysis.datasets import IQAData
from gmc_nb.analysis.krasula import (krasula_auc, krasula_from_data, fast_delong, delong_test, cc0_test, koniq_votes,
                                     ratings_from_histogram, n_ratings_for, get_rating_count, pair_significance)


def _signif(ma, mb, va, vb, na, nb, z_crit=2.0):
    "The reference code's pair rule: z of the two means, |z| > 2, a zero denominator replaced by 1e-8"
    den = va / na + vb / nb
    z = (ma - mb) / np.sqrt(den if den != 0 else 1e-8)
    return 1 if z > z_crit else (-1 if z < -z_crit else 0)


def _auc_count(pos, neg, block=2000):
    "Mann-Whitney AUC by counting: #{pos > neg} + 1/2 #{pos == neg}, over all (pos, neg) combinations"
    pos, neg = np.asarray(pos, float), np.asarray(neg, float); tot = 0.
    for k in range(0, len(pos), block):
        p = pos[k:k + block, None]; tot += (p > neg[None]).sum() + .5 * (p == neg[None]).sum()
    return tot / (len(pos) * len(neg))


def _plain(mos, var, n, preds, ordered=False):
    "Quadratic loops: pair labels and score differences, then the three measures by counting (unordered pairs, or the VMAF n^2)"
    N = len(mos); out = {}
    pairs = [(i, j) for i in range(N) for j in range(N)] if ordered else [(i, j) for i in range(N) for j in range(i)]
    sig = np.array([_signif(mos[i], mos[j], var[i], var[j], n[i], n[j]) for i, j in pairs])
    for m, p in preds.items():
        p = np.asarray(p, float); dif = np.array([p[i] - p[j] for i, j in pairs])
        D, S = np.abs(dif[sig != 0]), np.abs(dif[sig == 0])
        B = np.r_[dif[sig == 1], -dif[sig == -1]]
        out[m] = dict(AUC_DS=_auc_count(D, S), AUC_BW=_auc_count(B, -B), CC_0=((B > 0).sum() + (-B < 0).sum()) / (2 * len(B)))
    return pd.DataFrame(out).T


def _check(res, ref):
    t = res.table.set_index('model')
    for c in ('AUC_DS', 'AUC_BW', 'CC_0'): np.testing.assert_allclose(t[c].to_numpy(), ref.loc[t.index, c].to_numpy(), rtol=0, atol=1e-9)


def test_synthetic_raw_ratings_match_the_pair_loop():
    rng = np.random.default_rng(3); N = 60
    raw = [rng.normal(mu, sd, k).clip(1, 5) for mu, sd, k in zip(rng.uniform(1, 5, N), rng.uniform(.2, 1.2, N), rng.integers(3, 40, N))]
    mos = np.array([r.mean() for r in raw]); var = np.array([r.var(ddof=1) for r in raw]); n = np.array([len(r) for r in raw])
    preds = pd.DataFrame({'close': mos + rng.normal(0, .3, N), 'coarse': np.round(mos + rng.normal(0, .8, N)),
                          'few': rng.integers(0, 3, N) * 1., 'noise': rng.normal(size=N)})
    res = krasula_auc(mos, preds, np.sqrt(var), n, chunk=97)       # tiny blocks: block boundaries exercised
    _check(res, _plain(mos, var, n, preds))
    assert res.table['n_pairs'].iloc[0] == N * (N - 1) // 2


def test_vmaf_port_numbers():
    "VMAF's test_auc_perf_multiple_metrics data; BW and CC_0 agree, AUC_DS differs only by the n self-pairs the port adds"
    np.random.seed(1)
    gt = np.random.normal(0, 1.0, [4, 10]) + np.tile(np.array([1, 2, 3, 4]), [10, 1]).T
    mos, var, n = gt.mean(1), gt.var(1, ddof=1), np.full(4, 10)
    preds = {'m1': [1., 2, 3, 4], 'm2': [3., 1, 2, 4]}
    port = _plain(mos, var, n, preds, ordered=True)                  # the port's n^2 ordered pairs with the diagonal
    np.testing.assert_allclose(port['AUC_DS'], [0.9375, 0.625], atol=1e-12)
    np.testing.assert_allclose(port['AUC_BW'], [1., 0.8125], atol=1e-12); np.testing.assert_allclose(port['CC_0'], [1., .75])
    res = krasula_auc(mos, pd.DataFrame(preds), np.sqrt(var), n)
    _check(res, _plain(mos, var, n, preds))
    np.testing.assert_allclose(res.table['AUC_BW'], [1., 0.8125], atol=1e-12); np.testing.assert_allclose(res.table['CC_0'], [1., .75])


def _delong_definition(X, Y):
    psi = lambda x, y: (x[:, None] > y[None]) + .5 * (x[:, None] == y[None])
    v10 = np.stack([psi(X[:, k], Y[:, k]).mean(1) for k in range(X.shape[1])], 1)
    v01 = np.stack([psi(X[:, k], Y[:, k]).mean(0) for k in range(X.shape[1])], 1)
    return v10.mean(0), np.cov(v10.T) / len(X) + np.cov(v01.T) / len(Y)


def test_fast_delong_matches_the_definition():
    rng = np.random.default_rng(0)
    X, Y = np.round(rng.normal(1, 1, (9, 3)), 1), np.round(rng.normal(0, 1, (7, 3)), 1)   # rounded: ties
    a, c = fast_delong(X, Y); a0, c0 = _delong_definition(X, Y)
    np.testing.assert_allclose(a, a0, atol=1e-12); np.testing.assert_allclose(c, c0, atol=1e-14)


def test_engine_covariance_and_symmetry():
    rng = np.random.default_rng(5); N = 45
    mos = rng.uniform(1, 5, N); sd = rng.uniform(.2, 1, N); n = rng.integers(4, 20, N)
    preds = pd.DataFrame({'a': mos + rng.normal(0, .4, N), 'b': np.round(mos + rng.normal(0, .9, N))})
    res = krasula_auc(mos, preds, sd, n, chunk=50)
    i, j = np.tril_indices(N, -1); s = pair_significance(mos, sd, n); D = s != 0
    dp = np.stack([preds[m].to_numpy()[i] - preds[m].to_numpy()[j] for m in preds], 1)
    B = np.where(s[D, None] > 0, dp[D], -dp[D])
    np.testing.assert_allclose(res.cov['AUC_DS'].to_numpy(), _delong_definition(np.abs(dp[D]), np.abs(dp[~D]))[1], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(res.cov['AUC_BW'].to_numpy(), _delong_definition(B, -B)[1], rtol=1e-10, atol=1e-15)
    sw = krasula_auc(mos, preds[['b', 'a']], sd, n).tests.set_index('measure')
    t = res.tests.set_index('measure')
    np.testing.assert_allclose(sw['p'], t['p'], rtol=1e-12); np.testing.assert_allclose(sw['diff'], -t['diff'], rtol=1e-12)
    np.testing.assert_allclose(sw['z'], -t['z'], rtol=1e-12)
    z, p = cc0_test(.8, .7, 100); assert np.isclose(p, cc0_test(.7, .8, 100)[1]) and z > 0
    assert np.isnan(delong_test([.6, .6], [[0., 0], [0, 0]])['p'][0])


def test_bad_input_names_the_field():
    mos, sd = np.linspace(1, 5, 6), np.full(6, .5)
    with pytest.raises(ValueError, match='n_ratings: must be >= 2, got 1 at row 4'):
        krasula_auc(mos, pd.DataFrame({'m': mos}), sd, [5, 5, 5, 5, 1, 5])
    with pytest.raises(ValueError, match='preds: 3 rows'):
        krasula_auc(mos, pd.DataFrame({'m': mos[:3]}), sd, 5)
    no = krasula_auc(mos, pd.DataFrame({'m': mos}), sd, 5, z_crit=1e9)
    assert no.table[['AUC_DS', 'AUC_BW', 'CC_0']].isna().all().all()


def _iqa(name, k=6, scale=None, std=None):
    idx = pd.Index([f'i{j}.jpg' for j in range(k)])
    return IQAData(name, idx, np.linspace(1, 5, k), pd.DataFrame({'m': np.arange(k) * 1.}, index=idx), {'m': 'higher'}, {'m': 't'},
                   std=std, scale=scale)


def test_rating_counts_and_n_ratings_for():
    assert get_rating_count('kadid').n == 30 and get_rating_count('livec').kind == 'average'
    np.testing.assert_array_equal(n_ratings_for(_iqa('kadid'))[0], np.full(6, 30.))
    assert n_ratings_for(_iqa('spaq'), 12)[1] == 'given: 12 per image'
    with pytest.raises(ValueError, match='--n-ratings'): n_ratings_for(_iqa('spaq'))
    with pytest.raises(ValueError, match='std: '): krasula_from_data(_iqa('spaq'), n_ratings=10)
    r = krasula_from_data(_iqa('kadid', std=np.full(6, .3)))
    assert 'Lin, Hosu & Saupe 2019' in r.n_source and r.table['CC_0'].iloc[0] == 1


def test_histogram_std_is_the_koniq_sd(shared_data):
    raw = pd.read_csv(shared_data / 'mos' / 'koniq10k_distributions_sets.csv')
    m, s, n = ratings_from_histogram(raw[['c1', 'c2', 'c3', 'c4', 'c5']], raw['c_total'])
    assert np.abs(s - raw['SD']).max() < 1e-9                            # ddof = 1 ...
    assert np.abs(s * np.sqrt((n - 1) / n) - raw['SD']).max() > 1e-3      # ... not ddof = 0
    v = koniq_votes(shared_data); assert len(v) == 10073 and v['n'].min() >= 2


def test_real_koniq_subsample(shared_data):
    from gmc_nb.qdebias.qbench import read_qbench                        # in the test only: analysis does not import qdebias
    d = read_qbench('koniq', models=['internlm_xcomposer_vl', 'qwen-vl', 'llava_v1.5'], root=shared_data)
    rows = np.random.default_rng(0).choice(len(d.mos), 300, replace=False); d = d.subset(rows)
    v = koniq_votes(shared_data).loc[list(d.images)]
    np.testing.assert_allclose(d.mos, v['mos'], atol=1e-5)              # Q-Bench's gt_score: the vote mean, 5 decimals
    res = krasula_from_data(d, root=shared_data)
    assert 'c_total' in res.n_source
    _check(res, _plain(v['mos'].to_numpy(), v['std'].to_numpy() ** 2, v['n'].to_numpy(), {m: d.preds[m].to_numpy() for m in d.models}))
