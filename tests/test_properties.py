"""Laws every GMC correlation obeys, checked by property-based tests (hypothesis) on random inputs.

Each law is checked in both point kernels (`gmc_points(kernel='c')` and `kernel='torch'`) and, where it
applies, on the grid path (`gmc_grid`, `correlation_surface`):

* GMC-PLCC is invariant under a positive affine map of the predictions (a·p + b, a > 0, a as extreme
  as 1e300 or 1e-300); GMC-SRCC and GMC-KRCC under any strictly increasing map (exp, cube, p³ + p, ...);
* every coefficient is invariant under a permutation of the images (MOS, std and predictions together)
  and changes sign when the predictions are negated;
* every value is in [-1, 1] or NaN, and NaN only where no pair of images has weight (the total pair
  weight, `log_weight`, is -inf) or the weighted pairs have no spread in MOS or prediction;
* the C kernel, the torch kernel and the grid agree at the same query points (and the grid's
  `precision='single'` stays within 1e-5 of double, losing no cell);
* a bootstrap replicate equals the statistic of its explicit resample (global: scipy on np.repeat'ed
  data; surface: `gmc_points` on the duplicated data, for both rank definitions).

Inputs are kept small (5..40 images, a few points) so the file runs in well under a minute. The
predictions are drawn on a binary grid (k/64): an affine map then moves each value by rounding only
(no two distinct values merge), so a failure is the code's, not the input's; one test draws predictions
of any magnitude (1e-320 beside 1e300) for the rank coefficients. Failing examples found by these
properties are kept at the end as plain regression tests. `GMC_PROPERTY_EXAMPLES=300` runs a longer hunt.
"""
import os
import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from scipy import special, stats

from gmc_nb.gmc.correlation import METHODS
from gmc_nb.gmc.engine_c import c_kernel
from gmc_nb.gmc.points import gmc_grid, gmc_points
from gmc_nb.gmc.inputs import gmc_inputs
from gmc_nb.analysis.surface_stats import _grid_weighted
from gmc_nb.analysis.stats import resample_counts, weighted_global
from gmc_nb.gmc.surface import correlation_surface

KERNELS = [pytest.param('c', marks=pytest.mark.skipif(c_kernel() is None, reason='C kernel unavailable')), 'torch']
SETTINGS = settings(max_examples=int(os.environ.get('GMC_PROPERTY_EXAMPLES', 40)),   # more: a longer hunt
                    deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TOL = 1e-9                # absolute, on coefficients in [-1, 1]: float64 sums of at most 780 pairs
BOUND = 1 + 1e-12         # |coefficient| may exceed 1 by rounding only


def _inputs(d, **kw):
    """`gmc_inputs` on drawn data, or None when it refuses with the documented reason: a Gaussian-regulator density
    that underflows even in double at some image's bin (then no finite weight 1/density exists; the refusal is
    checked here against a log-domain density, so no other error can pass)"""
    try: return gmc_inputs(d['mos'], d['pred'], std=d['std'], **kw)
    except ValueError as e:
        if not str(e).startswith('regulator: the MOS density'): raise
        from scipy.special import logsumexp
        from gmc_nb.gmc.regulator import mos_bins
        u, b = mos_bins(d['mos']); sig = np.asarray(d['std']) * 100 / np.ptp(d['mos']) + 1e-8
        logE = logsumexp(-(b[:, None] - u[None, :]) ** 2 / (2 * sig[None, :] ** 2), axis=1)
        assert (-logE > np.log(np.finfo(float).max)).any(), f'refused although every 1/density is finite: {e}'
        return None


# ---------------------------------------------------------------------------------------------- data

MOS = st.one_of(st.floats(1, 5), st.integers(1, 5).map(float))          # integers: many ties
PRED = st.integers(-4000, 4000).map(lambda k: k / 64)                   # binary grid: exact, ties possible
STD = st.floats(0.02, 2)


@st.composite
def gmc_data(draw, min_n=5, max_n=40, max_points=3, std=STD):
    "MOS, std and one prediction per image (MOS and prediction not constant), plus query points inside the data"
    n = draw(st.integers(min_n, max_n))
    mos = draw(arrays(np.float64, n, elements=MOS))
    assume(np.ptp(mos) > 0)
    pred = draw(arrays(np.float64, n, elements=PRED))
    assume(np.ptp(pred) > 0)
    sd = draw(arrays(np.float64, n, elements=std))
    k = draw(st.integers(1, max_points))
    u = draw(arrays(np.float64, k, elements=st.floats(0, 1)))
    v = draw(arrays(np.float64, k, elements=st.floats(0, 1)))
    lo, hi = mos.min(), mos.max()
    Q = np.clip(lo + u * (hi - lo), lo, hi)                 # inside [min MOS, max MOS]
    D = np.clip(v * (hi - lo), 0, hi - lo)                  # inside [0, range]
    return dict(mos=mos, pred=pred, std=sd, Q=Q, D=D)


def points(d, pred=None, kernel='torch', methods=METHODS, perm=None, **kw):
    "gmc_points on data `d` (optionally another prediction, or all images permuted by `perm`)"
    mos, std, p = d['mos'], d['std'], d['pred'] if pred is None else pred
    if perm is not None: mos, std, p = mos[perm], std[perm], p[perm]
    return gmc_points(mos, p, d['Q'], d['D'], std=std, methods=methods, kernel=kernel, workers=1, **kw)


def assert_same(a, b, tol=TOL, what=''):
    "Equal up to `tol`, with NaN in exactly the same places"
    a, b = np.asarray(a, float), np.asarray(b, float)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f'{what}: NaN pattern differs: {a} vs {b}')
    ok = ~np.isnan(a)
    np.testing.assert_allclose(a[ok], b[ok], rtol=0, atol=tol, err_msg=what)


def distinct(x): return len(np.unique(x))

# ------------------------------------------------------------------------- invariance under maps

AFFINE_A = st.one_of(st.sampled_from([1e-300, 1e-200, 1e-160, 1e-10, 0.3, 1., 7.5, 1e10, 1e160, 1e200, 1e300]),
                     st.floats(1e-300, 1e300))


@pytest.mark.parametrize('kernel', KERNELS)

@SETTINGS
@given(d=gmc_data(), a=AFFINE_A, c=st.floats(-10, 10))
def test_plcc_positive_affine_invariance(kernel, d, a, c):
    "GMC-PLCC(a·p + b) = GMC-PLCC(p) for a > 0 (b = c·a, so the map keeps p's binary precision)"
    q = a * d['pred'] + c * a
    assume(np.isfinite(q).all() and distinct(q) == distinct(d['pred']))
    assert_same(points(d, q, kernel, ['PLCC']).PLCC, points(d, None, kernel, ['PLCC']).PLCC, what=f'a={a!r}, b={c * a!r}')


MONOTONE = {'exp': np.exp, 'cube': lambda p: p ** 3, 'cube+p': lambda p: p ** 3 + p, 'arctan': np.arctan,
            'x1e300': lambda p: p * 1e300, 'x1e-300': lambda p: p * 1e-300, 'shift': lambda p: p + 1e6}


@pytest.mark.parametrize('kernel', KERNELS)
@SETTINGS
@given(d=gmc_data(), f=st.sampled_from(sorted(MONOTONE)), ranks=st.sampled_from(['dense', 'average']))
def test_rank_coefficients_monotone_invariance(kernel, d, f, ranks):
    "GMC-SRCC and GMC-KRCC depend on the predictions' order only: a strictly increasing map changes nothing"
    q = MONOTONE[f](d['pred'])
    assume(np.isfinite(q).all() and distinct(q) == distinct(d['pred']))   # ties are kept, none created
    a = points(d, q, kernel, ['SRCC', 'KRCC'], ranks=ranks)
    b = points(d, None, kernel, ['SRCC', 'KRCC'], ranks=ranks)
    for m in ('SRCC', 'KRCC'): assert_same(a[m], b[m], what=f'{m} under {f}')


WIDE = st.one_of(st.floats(-1e300, 1e300), st.sampled_from([0., 5e-324, -5e-324, 1e-320, 1e-300, 1e300, -1e300]))


@pytest.mark.parametrize('kernel', KERNELS)
@SETTINGS
@given(d=gmc_data(), data=st.data())
def test_rank_coefficients_depend_on_order_only(kernel, d, data):
    "Predictions of any magnitude (1e-320 next to 1e300): GMC-SRCC/KRCC equal those of their ranks (a strictly increasing map)"
    p = data.draw(arrays(np.float64, len(d['mos']), elements=WIDE))
    assume(np.ptp(p) > 0)
    r = stats.rankdata(p, 'dense')
    a, b = points(d, p, kernel, ['SRCC', 'KRCC']), points(d, r, kernel, ['SRCC', 'KRCC'])
    for m in ('SRCC', 'KRCC'): assert_same(a[m], b[m], what=f'{m}: predictions {p.tolist()} vs their ranks')


@pytest.mark.parametrize('kernel', KERNELS)
@SETTINGS
@given(d=gmc_data(), perm=st.data())
def test_permutation_invariance(kernel, d, perm):
    "Reordering the images (MOS, std, predictions together) changes no coefficient"
    p = np.array(perm.draw(st.permutations(range(len(d['mos'])))))
    a, b = points(d, kernel=kernel, perm=p), points(d, kernel=kernel)
    for m in METHODS + ('log_weight',): assert_same(a[m], b[m], what=m)


@pytest.mark.parametrize('kernel', KERNELS)
@SETTINGS
@given(d=gmc_data(), ranks=st.sampled_from(['dense', 'average']))
def test_negation_flips_sign(kernel, d, ranks):
    "GMC(−p) = −GMC(p) for every coefficient"
    a, b = points(d, -d['pred'], kernel, ranks=ranks), points(d, None, kernel, ranks=ranks)
    for m in METHODS: assert_same(a[m], -b[m], what=m)

# ------------------------------------------------------------------------------- range and NaN


def pair_logweights(inp, Q, D):
    "log w_ij(Q, D) of every pair i < j, straight from the definition, in the log domain (no underflow)"
    y, s2 = inp.mos, (inp.tau * inp.std) ** 2
    with np.errstate(divide='ignore'):
        lg = np.log(inp.rho) - (Q - y) ** 2 / (2 * s2)
    i, j = np.triu_indices(len(y), 1)
    return lg[i] + lg[j] - (D - np.abs(y[i] - y[j])) ** 2 / (2 * (s2[i] + s2[j])), i, j, lg


def check_range_and_nan(inp, res, Qs, Ds, what):
    """Every value in [-1, 1] or NaN; `log_weight` a number or -inf (no weight), never NaN; a coefficient NaN only
    where no pair has weight or the weighted pairs have no spread in MOS or prediction. "Has weight": within e^-600
    of the largest product of two image weights ρ_i G_s(i; Q), the scale both kernels and the grid work at"""
    feats = {'PLCC': (inp.mos, inp.preds[:, 0]),
             'SRCC': (stats.rankdata(inp.mos, 'dense'), stats.rankdata(inp.preds[:, 0], 'dense')),
             'KRCC': (inp.mos, inp.preds[:, 0])}
    for k, (Q, D) in enumerate(zip(Qs, Ds)):
        lw, i, j, lg = pair_logweights(inp, Q, D)
        top, scale = lw.max(), 2 * lg.max()
        klw = res['log_weight'][k]
        assert not np.isnan(klw) and klw != np.inf, (f'{what} point {k} (Q={Q!r}, D={D!r}): log_weight is {klw} '
                                                     f'(regulator weights in [{inp.rho.min()}, {inp.rho.max()}])')
        if np.isneginf(klw):   # no weight: every coefficient must say so, not give a number
            for m in METHODS: assert np.isnan(res[m][k]), f'{what} point {k}: {m} = {res[m][k]} with no pair weight'
        heavy = lw > scale - 600      # pairs whose weight no kernel may lose
        if heavy.any():               # the total is finite and right
            lw_ref = special.logsumexp(lw)
            assert np.isfinite(klw), f'{what} point {k}: log_weight {klw} but the heaviest pair has log weight {top}'
            assert abs(klw - lw_ref) <= 1e-9 * max(1, abs(lw_ref)), f'{what} point {k}: log_weight {klw} vs {lw_ref}'
        for m in METHODS:
            v = res[m][k]
            assert np.isnan(v) or abs(v) <= BOUND, f'{what} point {k}: {m} = {v!r} outside [-1, 1]'
            if np.isnan(v) and heavy.any():
                a, b = feats[m]
                if m == 'KRCC': spread = True   # tau-a: NaN only with no weight at all
                else: spread = (a[i] != a[j])[heavy].any() and (b[i] != b[j])[heavy].any()
                assert not spread, (f'{what} point {k} (Q={Q!r}, D={D!r}): {m} is NaN though {int(heavy.sum())} pairs '
                                    f'have weight (heaviest log weight {top:.4g}) and differ in MOS and prediction')


@pytest.mark.parametrize('kernel', KERNELS)
@SETTINGS
@given(d=gmc_data(std=st.one_of(STD, st.floats(1e-3, 0.05))))
def test_values_in_range_or_nan_with_reason(kernel, d):
    "Values lie in [-1, 1]; NaN only with no pair weight (log_weight = -inf) or no spread among weighted pairs"
    inp = _inputs(d)
    if inp is None: return
    res = gmc_points(inp, Q=d['Q'], D=d['D'], kernel=kernel, workers=1)
    check_range_and_nan(inp, res, d['Q'], d['D'], kernel)


@SETTINGS
@given(d=gmc_data(max_n=25, std=st.one_of(STD, st.floats(1e-3, 0.05))))
def test_grid_values_in_range_or_nan_with_reason(d):
    inp = _inputs(d)
    if inp is None: return
    g = gmc_grid(inp, Qs=d['Q'], Ds=d['D'], workers=1)
    k = np.arange(len(d['Q']))
    res = {m: g['values']['prediction', m][k, k] for m in METHODS}
    res['log_weight'] = g['log_weight'][k, k]
    check_range_and_nan(inp, res, d['Q'], d['D'], 'grid')

# ----------------------------------------------------------------------------- kernels agree


@SETTINGS
@given(d=gmc_data(), kendall=st.sampled_from(['a', 'b']), ranks=st.sampled_from(['dense', 'average']))
def test_c_torch_grid_agree(d, kendall, ranks):
    "C kernel, torch kernel and the grid give the same coefficients at the same points"
    if c_kernel() is None: pytest.skip('C kernel unavailable')
    inp = _inputs(d, ranks=ranks)
    if inp is None: return
    Qg, Dg = np.unique(d['Q']), np.unique(d['D'])
    Qm, Dm = np.meshgrid(Qg, Dg)                                       # grid cell (iD, iQ) = point
    c = gmc_points(inp, Q=Qm.ravel(), D=Dm.ravel(), kendall=kendall, kernel='c', workers=1)
    t = gmc_points(inp, Q=Qm.ravel(), D=Dm.ravel(), kendall=kendall, kernel='torch', workers=1)
    g = gmc_grid(inp, Qs=Qg, Ds=Dg, kendall=kendall, workers=1)
    for m in METHODS:
        assert_same(c[m], t[m], what=f'{m}: C vs torch')
        assert_same(g['values']['prediction', m].ravel(), c[m], what=f'{m}: grid vs C')
    lw = c.log_weight.to_numpy()
    tol = 1e-9 * max(1., np.abs(lw[np.isfinite(lw)]).max(initial=1.))   # relative, on the log of the total weight
    assert_same(t.log_weight, lw, tol=tol, what='log_weight: torch vs C')
    assert_same(g['log_weight'].ravel(), lw, tol=tol, what='log_weight: grid vs C')


@SETTINGS
@given(d=gmc_data(max_n=25), n_grid=st.integers(2, 4))
def test_correlation_surface_equals_points(d, n_grid):
    "Every cell of `correlation_surface` is `gmc_points` at that cell's (Q, D), in both kernels"
    s = correlation_surface(d['mos'], d['pred'], n_grid=n_grid, std=d['std'], workers=1)
    Qm, Dm = np.meshgrid(s.Q, s.D)
    for kernel in ('c', 'torch') if c_kernel() is not None else ('torch',):
        p = gmc_points(d['mos'], d['pred'], Qm.ravel(), Dm.ravel(), std=d['std'], kernel=kernel, workers=1)
        for m in METHODS: assert_same(s.values['prediction', m].ravel(), p[m], what=f'{m}: surface vs {kernel}')


@SETTINGS
@given(d=gmc_data(std=st.one_of(STD, st.floats(1e-3, 0.05))))
def test_single_precision_grid_close_to_double(d):
    "precision='single' loses no cell and stays within 1e-5 of double"
    inp = _inputs(d)
    if inp is None: return
    Qg, Dg = np.unique(d['Q']), np.unique(d['D'])
    a = gmc_grid(inp, Qs=Qg, Ds=Dg, workers=1)
    b = gmc_grid(inp, Qs=Qg, Ds=Dg, workers=1, precision='single')
    for m in METHODS: assert_same(b['values']['prediction', m], a['values']['prediction', m], tol=1e-5, what=m)

# ------------------------------------------------------------------------- bootstrap replicates


@SETTINGS
@given(d=gmc_data(), seed=st.integers(0, 2 ** 16))
def test_global_replicate_equals_explicit_resample(d, seed):
    "weighted_global on multiplicities = scipy's Pearson, Spearman, Kendall tau-b on the np.repeat'ed data"
    P = np.stack([d['pred'], d['pred'] ** 3 - d['mos']], 1)
    C = resample_counts(len(d['mos']), 3, seed)
    w = weighted_global(C, d['mos'], P)
    for b in range(len(C)):
        i = np.repeat(np.arange(len(d['mos'])), C[b])
        y = d['mos'][i]
        for k in range(P.shape[1]):
            x = P[i, k]
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')          # constant resample: scipy warns and returns NaN
                ref = dict(PLCC=stats.pearsonr(y, x)[0] if np.ptp(y) and np.ptp(x) else np.nan,
                           SRCC=stats.spearmanr(y, x)[0], KRCC=stats.kendalltau(y, x)[0])
            for m in METHODS: assert_same([w[m][b, k]], [ref[m]], tol=1e-10, what=f'{m}, replicate {b}, model {k}')


@SETTINGS
@given(d=gmc_data(max_n=25), seed=st.integers(0, 2 ** 16), ranks=st.sampled_from(['dense', 'average']),
       kendall=st.sampled_from(['a', 'b']))
def test_surface_replicate_equals_explicit_resample(d, seed, ranks, kendall):
    "A GMC surface replicate (multiplicity-weighted regulator) = GMC of the data with each image repeated"
    inp = _inputs(d, ranks=ranks)
    if inp is None: return
    n = len(inp.mos)
    c = resample_counts(n, 1, seed)[0]
    i = np.repeat(np.arange(n), c)
    assume(np.ptp(inp.mos[i]) > 0 and np.ptp(inp.preds[i, 0]) > 0)
    Qg, Dg = np.unique(d['Q']), np.unique(d['D'])
    g = _grid_weighted(inp, c.astype(float), Qg, Dg, list(METHODS), c, kendall=kendall, workers=1)
    dup = gmc_inputs(inp.mos[i], inp.preds[i, 0], std=inp.std[i], rho=inp.rho[i], std_floor=1e-6, ranks=ranks)
    if hasattr(dup, 'extent'): dup = replace(dup, extent=inp.extent)   # a resample is queried on the full data's grid
    Qm, Dm = np.meshgrid(Qg, Dg)
    for kernel in ('c', 'torch') if c_kernel() is not None else ('torch',):
        pt = gmc_points(dup, Q=Qm.ravel(), D=Dm.ravel(), kendall=kendall, kernel=kernel, workers=1)
        for m in METHODS:
            assert_same(g['values']['prediction', m].ravel(), pt[m], tol=1e-10, what=f'{m} ({ranks} ranks, {kernel})')

# --------------------------------------------------------------------- regression examples


@pytest.mark.parametrize('kernel', KERNELS)
@pytest.mark.parametrize('a', [1e300, 1e-300, 1e160, 1e-160])
def test_regression_plcc_extreme_scale(kernel, a):
    "Item 11: predictions ×1e300 gave PLCC 0.0 and ×1e-300 gave inf; the coefficient must not move at all"
    r = np.random.default_rng(3)
    mos = r.uniform(1, 5, 30); pred = mos + r.normal(0, .5, 30); std = r.uniform(.2, .8, 30)
    d = dict(mos=mos, pred=pred, std=std, Q=np.array([2., 3., 4.]), D=np.array([.5, 1., 2.]))
    for m in METHODS: assert_same(points(d, a * pred, kernel)[m], points(d, None, kernel)[m], what=f'{m} ×{a}')


@pytest.mark.parametrize('kernel', KERNELS)
def test_regression_regulator_weight_overflow(kernel):
    """Found by `test_values_in_range_or_nan_with_reason`: with a small std, an image alone in its MOS bin but far
    from the bin's integer centre gets a Gaussian-regulator density that underflows, ρ = float32(1/E) = inf, and
    every coefficient and log_weight at every point became NaN with no reason (inf·0 in the weights)"""
    mos = np.array([1, 1.0796, 2, 3, 4, 5.]); pred = np.array([0, 1, 2, 3, 5, 4.]); std = np.full(6, .002)
    try: inp = gmc_inputs(mos, pred, std=std)
    except ValueError as e:                 # an error naming the input is a valid answer too
        assert any(w in str(e) for w in ('rho', 'regulator', 'std')), str(e)
        return
    assert np.isfinite(inp.rho).all(), f'regulator weights {inp.rho}'
    Q, D = np.array([1.04, 1.0796, 2.5]), np.array([0.0796, 0.0796, 1.])
    check_range_and_nan(inp, gmc_points(inp, Q=Q, D=D, kernel=kernel, workers=1), Q, D, kernel)


def test_regression_single_precision_keeps_cell():
    """Found by `test_single_precision_grid_close_to_double` (item 14): the only pairs that differ in MOS and
    prediction weigh e^-192 of the heaviest (below float32's 1e-38): double gives PLCC 1, single gave NaN"""
    mos = np.r_[np.ones(23), 1.5]; pred = np.r_[np.zeros(23), 1 / 64]; std = np.full(24, 1 / 32)
    inp = gmc_inputs(mos, pred, std=std)
    a = gmc_grid(inp, Qs=[1.], Ds=[0.], workers=1)
    b = gmc_grid(inp, Qs=[1.], Ds=[0.], workers=1, precision='single')
    assert a['values']['prediction', 'PLCC'][0, 0] == pytest.approx(1.)
    for m in METHODS: assert_same(b['values']['prediction', m], a['values']['prediction', m], tol=1e-5, what=m)


@pytest.mark.parametrize('ranks', ['dense', 'average'])
def test_regression_surface_replicate_average_ranks(ranks):
    """Found by `test_surface_replicate_equals_explicit_resample` (item 15): with ranks='average' the replicate
    ranked the distinct drawn images only (SRCC 0.668 vs 0.682 on the duplicated data)"""
    mos = np.r_[np.ones(15), 2., 1.5]; pred = np.r_[np.zeros(16), 1 / 64]; std = np.ones(17)
    inp = gmc_inputs(mos, pred, std=std, ranks=ranks)
    c = resample_counts(17, 1, 0)[0]; i = np.repeat(np.arange(17), c)
    g = _grid_weighted(inp, c.astype(float), np.array([1.]), np.array([0.]), list(METHODS), c, workers=1)
    dup = gmc_inputs(inp.mos[i], inp.preds[i, 0], std=inp.std[i], rho=inp.rho[i], std_floor=1e-6, ranks=ranks)
    if hasattr(dup, 'extent'): dup = replace(dup, extent=inp.extent)
    pt = gmc_points(dup, Q=[1.], D=[0.], workers=1)
    for m in METHODS: assert_same(g['values']['prediction', m].ravel(), pt[m], tol=1e-10, what=f'{m} ({ranks} ranks)')


def test_regression_global_replicate_constant_mos():
    """Found by `test_global_replicate_equals_explicit_resample`: a replicate that drew only images of one MOS
    gave weighted PLCC = inf (rounding residue over a zero variance) where Pearson is undefined (scipy: NaN)"""
    mos = np.array([1., 1., 1., 5., 1.]); pred = np.array([0, 0, 0, 0, 1 / 64])
    P = np.stack([pred, pred ** 3 - mos], 1)
    C = np.array([[4, 0, 0, 0, 1]])                    # resample_counts(5, 3, seed=0)[1]: image 3 (MOS 5) not drawn
    w = weighted_global(C, mos, P)
    for m in METHODS:
        assert np.isnan(w[m]).all(), f'{m}: {w[m]} on a replicate with constant MOS'


@pytest.mark.parametrize('kernel', KERNELS)
def test_regression_krcc_tiny_next_to_huge(kernel):
    """Found by `test_rank_coefficients_depend_on_order_only` (item 11's power-of-two scaling): next to 1e300,
    1e-320 and 2e-320 are scaled to 0 and tie, so GMC-KRCC (signs of value differences) changed (0.0841 vs 0.0816
    for the ranks) although the order of the predictions did not"""
    r = np.random.default_rng(1); n = 12
    mos = r.uniform(1, 5, n); std = np.ones(n)
    p = np.r_[0., 1e-320, 2e-320, 1e-300, 1e300, r.uniform(-1, 1, n - 5)]
    d = dict(mos=mos, std=std, Q=np.array([3.]), D=np.array([1.]))
    a, b = points(d, p, kernel, ['SRCC', 'KRCC']), points(d, stats.rankdata(p), kernel, ['SRCC', 'KRCC'])
    for m in ('SRCC', 'KRCC'): assert_same(a[m], b[m], what=m)


def test_regression_grid_subnormal_weights():
    """Found by `test_correlation_surface_equals_points`: at (Q=2.5, D=1.5) the one weighted pair weighs e^-730
    (a subnormal double). The point kernels drop it (NaN, log_weight -inf); the grid summed subnormals and gave
    PLCC 1.000006, outside [-1, 1]. The paths must agree, and no value may leave [-1, 1]"""
    mos = np.array([1, 1, 1, 1, 1, 1, 1.8125, 2.5]); pred = np.r_[np.zeros(7), 1 / 64]; std = np.full(8, 0.0234375)
    s = correlation_surface(mos, pred, n_grid=2, std=std, workers=1)
    Qm, Dm = np.meshgrid(s.Q, s.D)
    for kernel in ('c', 'torch') if c_kernel() is not None else ('torch',):
        p = gmc_points(mos, pred, Qm.ravel(), Dm.ravel(), std=std, kernel=kernel, workers=1)
        for m in METHODS:
            v = s.values['prediction', m]
            assert (np.isnan(v) | (np.abs(v) <= BOUND)).all(), f'{m}: {v}'
            assert_same(v.ravel(), p[m], what=f'{m}: surface vs {kernel}')
