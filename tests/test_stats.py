"""gmc_nb.stats: multiplicity bootstrap equals explicit resampling; intervals, tests, logistic fits."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gmc_nb.data import example_scores
from gmc_nb.gmc.inputs import gmc_inputs
from gmc_nb.gmc.points import gmc_points
from gmc_nb.analysis.stats import resample_counts, weighted_global, bootstrap_global, compare_models, williams_test, ci_bca
from gmc_nb.analysis.surface_stats import bootstrap_surface, _grid_weighted
from gmc_nb.analysis.logistic import fit_logistic


@pytest.fixture(scope='module')
def ex():
    return example_scores(150, seed=4)


def test_weighted_equals_resampled_with_ties(ex):
    y = ex.mos.round(1).to_numpy(); P = ex[['uniform', 'coarse']].round(2).to_numpy()   # many ties
    C = resample_counts(len(y), 4, seed=9)
    w = weighted_global(C, y, P)
    for b in range(4):
        i = np.repeat(np.arange(len(y)), C[b])
        for k in range(2):
            assert w['PLCC'][b, k] == pytest.approx(stats.pearsonr(y[i], P[i, k])[0], abs=1e-10)
            assert w['SRCC'][b, k] == pytest.approx(stats.spearmanr(y[i], P[i, k])[0], abs=1e-10)
            assert w['KRCC'][b, k] == pytest.approx(stats.kendalltau(y[i], P[i, k])[0], abs=1e-6)


def test_grouped_resampling_keeps_groups():
    g = np.repeat(['r1', 'r2', 'r3', 'r4'], 5)
    C = resample_counts(20, 30, seed=1, groups=g)
    assert (C.reshape(30, 4, 5).std(-1) == 0).all()


def test_seeded(ex):
    a = bootstrap_global(ex.mos, ex[['uniform']], B=100, seed=7)
    b = bootstrap_global(ex.mos, ex[['uniform']], B=100, seed=7)
    np.testing.assert_array_equal(a.reps['SRCC'], b.reps['SRCC'])


def test_ci_coverage_of_truth():
    # normal data, true rho = 0.6: the BCa interval should usually cover it (10 seeds, allow 2 misses)
    hits = 0
    for s in range(10):
        r = np.random.default_rng(s); x = r.normal(size=200); y = .6 * x + .8 * r.normal(size=200)
        gb = bootstrap_global(y, {'x': x}, B=400, seed=s, methods=['PLCC'])
        lo, hi = gb.ci('PLCC', 'bca'); hits += lo[0] < .6 < hi[0]
    assert hits >= 8


def test_compare_verdicts(ex):
    P = ex[['uniform', 'blind_top']]
    gb = bootstrap_global(ex.mos, P, B=300)
    t = compare_models(gb, ex.mos, P)
    assert (t.verdict == 'A better').all()
    assert williams_test(.5, .5, .2, 50)[1] == pytest.approx(1.)


def test_surface_replicate_equals_duplicated_data(ex):
    inp = gmc_inputs(ex.mos, ex[['uniform']], std=ex['std'])
    c = resample_counts(len(ex), 1, seed=3)[0]; i = np.repeat(np.arange(len(ex)), c)
    Qs, Ds = np.array([2.0, 3.0]), np.array([0.3, 0.8])
    g = _grid_weighted(inp, c.astype(float), Qs, Ds, ['PLCC', 'SRCC', 'KRCC'], c)
    dup = gmc_inputs(inp.mos[i], inp.preds[i, 0], std=inp.std[i], rho=inp.rho[i], std_floor=1e-6)
    Qm, Dm = np.meshgrid(Qs, Ds)
    pt = gmc_points(dup, Q=Qm.ravel(), D=Dm.ravel(), methods=['PLCC', 'SRCC', 'KRCC'])
    np.testing.assert_allclose(g['values']['uniform', 'PLCC'].ravel(), pt.PLCC, atol=1e-9)
    np.testing.assert_allclose(g['values']['uniform', 'KRCC'].ravel(), pt.KRCC, atol=1e-9)
    np.testing.assert_allclose(g['values']['uniform', 'SRCC'].ravel(), pt.SRCC, atol=1e-9)


def test_surface_bootstrap_shapes_and_bca(ex):
    inp = gmc_inputs(ex.mos, ex[['uniform', 'coarse']], std=ex['std'])
    sb = bootstrap_surface(inp, B=6, n_grid=7, methods=['SRCC'], jackknife_groups=5)
    assert sb.reps['uniform', 'SRCC'].shape == (6, 7, 7)
    lo, hi = sb.point_ci('uniform', 'SRCC', 'bca')
    assert lo.shape == (7, 7)
    d = sb.difference('uniform', 'coarse')
    assert set(np.unique(d['mask'][np.isfinite(d['mask'])])) <= {-1., 0., 1.}
    with pytest.raises(ValueError, match='models'):
        bootstrap_surface(inp, B=2, models=['nosuch'])


def test_logistic_reports_failure():
    x = np.r_[np.zeros(10), np.ones(10)]; y = np.r_[np.ones(10), 2 * np.ones(10)] + np.linspace(0, .01, 20)
    f = fit_logistic(x + np.linspace(0, 1e-9, 20), y, 5)
    assert isinstance(f.converged, bool)
    if not f.converged: assert f.plcc_mapped == f.plcc_raw
    with pytest.raises(ValueError, match='constant'):
        fit_logistic(np.ones(5), np.arange(5.), 4)


@pytest.mark.parametrize('ranks', ['dense', 'average'])
def test_surface_bootstrap_batch_equals_one_by_one(ranks):
    "Issue 17: the batched replicates (one gmc_grid pass) are the replicates computed one at a time"
    d = example_scores(90, seed=2)
    inp = gmc_inputs(d.mos.round(1), d[['uniform', 'coarse']].round(2), std=d['std'], ranks=ranks)
    kw = dict(B=5, n_grid=7, methods=['PLCC', 'SRCC', 'KRCC'], rep_precision='double', jackknife_groups=3, seed=3)
    a, b = bootstrap_surface(inp, **kw), bootstrap_surface(inp, batch=False, **kw)
    for k in a.reps:
        np.testing.assert_allclose(np.nan_to_num(a.reps[k]), np.nan_to_num(b.reps[k]), rtol=0, atol=1e-6)   # stored as float32
        np.testing.assert_allclose(np.nan_to_num(a.jack[k]), np.nan_to_num(b.jack[k]), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(a.estimate[k], b.estimate[k])
    s = bootstrap_surface(inp, **{**kw, 'rep_precision': 'single', 'precision': 'single'})
    for k in a.reps:
        np.testing.assert_allclose(np.nan_to_num(s.reps[k]), np.nan_to_num(a.reps[k]), rtol=0, atol=1e-5)
        np.testing.assert_allclose(np.nan_to_num(s.estimate[k]), np.nan_to_num(a.estimate[k]), rtol=0, atol=1e-5)
