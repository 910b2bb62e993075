"""GMC numbers that must not be silently wrong (issue 12, items 11-14, 18, 20 of the GMC core)."""

import numpy as np
import pandas as pd
import pytest

from gmc_nb.data import example_scores
from gmc_nb.gmc.inputs import gmc_inputs
from gmc_nb.gmc.points import gmc_points, gmc_grid
from gmc_nb.gmc.correlation import gmc_point, METHODS
from gmc_nb.gmc.engine_c import c_kernel
from gmc_nb.gmc.std import resolve_std, floor_std
from gmc_nb.gmc.surface import correlation_surface, lhs_points, grid_points

ex = example_scores(80)
LO, HI = float(ex.mos.min()), float(ex.mos.max())
QP, DP = [1.5, 2.5, 3.5, 2.5], [0.3, 0.3, 0.3, 1.5]
KERNELS = ['torch'] + (['c'] if c_kernel() is not None else [])


# ---- item 11: scale invariance, no overflow -------------------------------------------------------------------
@pytest.mark.parametrize('scale', [1e300, 1e-300, 1e160, -1e300])
def test_scaled_predictions_give_the_same_values(scale):
    inp0 = gmc_inputs(ex.mos, ex[['uniform', 'coarse']], std=ex['std'])
    inp1 = gmc_inputs(ex.mos, ex[['uniform', 'coarse']] * abs(scale), std=ex['std'])
    for kernel in KERNELS:
        for kendall in 'ab':
            a = gmc_points(inp0, Q=QP, D=DP, kernel=kernel, kendall=kendall)
            b = gmc_points(inp1, Q=QP, D=DP, kernel=kernel, kendall=kendall)
            for m in METHODS: np.testing.assert_allclose(b[m], a[m], rtol=0, atol=1e-12, err_msg=f'{kernel} {m} x{scale}')
    g0 = gmc_grid(inp0, Qs=[1.5, 2.5, 3.5], Ds=[0.3, 1.5])
    g1 = gmc_grid(inp1, Qs=[1.5, 2.5, 3.5], Ds=[0.3, 1.5])
    for k in g0['values']: np.testing.assert_allclose(g1['values'][k], g0['values'][k], rtol=0, atol=1e-12, err_msg=str(k))
    for m in METHODS:
        np.testing.assert_allclose(gmc_point(inp1, 2.5, 0.3, 0, m), gmc_point(inp0, 2.5, 0.3, 0, m), rtol=0, atol=1e-12)


def test_scaled_mos_gives_the_same_correlations():
    "Scaling the MOS scales the axes too; the correlations at the scaled points are unchanged"
    for s in (1e150, 1e-150):
        a = gmc_points(ex.mos, ex.uniform, QP, DP, std=ex['std'], rho='none')   # the regulator bins MOS: rounding moves bins
        b = gmc_points(ex.mos * s, ex.uniform, np.array(QP) * s, np.array(DP) * s, std=ex['std'] * s, rho='none')
        for m in METHODS: np.testing.assert_allclose(b[m], a[m], rtol=0, atol=1e-10, err_msg=f'{m} x{s}')


# ---- item 12: query points outside the data ---------------------------------------------------------------
@pytest.mark.parametrize('Q,D,msg', [
    ([2.5, LO - 0.1], [0.5, 0.5], 'query point 1: Q = '),
    ([HI + 1e-9], [0.5], 'query point 0: Q = '),
    ([2.5, 2.5, 2.5], [0.5, 0.1, HI - LO + 0.5], 'query point 2: D (|ΔMOS|) = '),
])
def test_points_outside_the_data_are_refused(Q, D, msg):
    for kernel in KERNELS:
        with pytest.raises(ValueError, match=msg.replace('(', r'\(').replace(')', r'\)').replace('|', r'\|')) as e:
            gmc_points(ex.mos, ex.uniform, Q, D, std=ex['std'], kernel=kernel)
        assert 'extrapolate=True' in str(e.value)


def test_grid_outside_the_data_is_refused():
    with pytest.raises(ValueError, match=r'Qs\[1\] = '):
        gmc_grid(ex.mos, ex.uniform, Qs=[2.0, HI + 1], Ds=[0.5], std=ex['std'])
    with pytest.raises(ValueError, match=r'Ds\[0\] = '):
        gmc_grid(ex.mos, ex.uniform, Qs=[2.0], Ds=[HI - LO + 1], std=ex['std'])


def test_extrapolation_on_request_c_and_torch_agree():
    if 'c' not in KERNELS: pytest.skip('no C kernel here')
    inp = gmc_inputs(ex.mos, ex.uniform, std=ex['std'])
    # far outside: where every pair weight is below e^-708 (C flushes it to 0), torch must not keep subnormals
    # (today's torch kept subnormal weights there: PLCC 1.034 at Q=1.93, D=39.7, where C says "empty")
    Q = [LO - 1, HI + 1, 3.0, 3.0, LO - 10] + list(np.repeat(np.linspace(LO, HI, 9), 60))
    D = [0.5, 0.5, HI - LO + 1, 40., 0.5] + list(np.tile(np.linspace(0, 60, 60), 9))
    a = gmc_points(inp, Q=Q, D=D, kernel='c', extrapolate=True)
    b = gmc_points(inp, Q=Q, D=D, kernel='torch', extrapolate=True)
    for m in METHODS:
        assert (np.isnan(a[m]) == np.isnan(b[m])).all(), (m, a[m].to_numpy(), b[m].to_numpy())
        ok = np.isfinite(a[m])
        np.testing.assert_allclose(b[m][ok], a[m][ok], rtol=0, atol=1e-8)


def test_point_helpers_stay_inside_the_data():
    for s in range(30):
        for lo, hi in [(0.1, 0.7), (1.12, 4.3606), (-3.3, 1e-3), (0.0, 1.0)]:
            p = lhs_points(lo, hi, n=300, seed=s)
            assert p.Q.between(lo, hi).all() and p.D.between(0, hi - lo).all()
    for lo, hi in [(0.1, 0.7), (1.12, 4.3606)]:
        g = grid_points(lo, hi, 13, 17)
        assert g.Q.between(lo, hi).all() and g.D.between(0, hi - lo).all()
    m = ex.mos.to_numpy()
    p = lhs_points(m.min(), m.max(), n=100, seed=1)
    gmc_points(m, ex.uniform, p.Q, p.D, std=ex['std'])        # accepted as they are


# ---- item 13: zero std ------------------------------------------------------------------------------------
@pytest.mark.parametrize('std', [np.zeros(80), np.full(80, 1e-9)])
def test_all_zero_std_is_one_clear_error(std, tmp_path):
    msg = 'std: all 80 values are 0 (or below the floor 1e-06 of the MOS range'
    pat = msg.replace('(', r'\(')
    with pytest.raises(ValueError, match=pat): gmc_inputs(ex.mos, ex.uniform, std=std)
    with pytest.raises(ValueError, match=pat): gmc_inputs(ex.mos, ex.uniform, std=std, rho='none')
    with pytest.raises(ValueError, match=pat): gmc_points(ex.mos, ex.uniform, [2.5], [0.5], std=std)
    with pytest.raises(ValueError, match=pat): resolve_std(ex.mos, std)
    with pytest.raises(ValueError, match=pat): floor_std(std, ex.mos)
    f = tmp_path / 'std.txt'; f.write_text('\n'.join(map(str, std)))
    with pytest.raises(ValueError, match=r'std \(file .*\): all 80 values are 0'): gmc_inputs(ex.mos, ex.uniform, std_file=f)


def test_some_zero_std_is_fine():
    std = ex['std'].to_numpy().copy(); std[:5] = 0
    gmc_inputs(ex.mos, ex.uniform, std=std)


# ---- item 18: global KRCC uses the surface's Kendall variant -------------------------------------------------
def test_summary_global_krcc_matches_variant():
    from scipy import stats
    y = np.round(ex.mos.to_numpy(), 1); p = np.round(ex.coarse.to_numpy(), 2)          # ties in both
    n0 = len(y) * (len(y) - 1) / 2
    i, j = np.triu_indices(len(y), 1)
    tau_a = np.sum(np.sign(y[i] - y[j]) * np.sign(p[i] - p[j])) / n0
    huge = np.full(len(y), 1e6)                     # every pair weighs the same: GMC-KRCC is the global one
    for kendall, want in (('a', tau_a), ('b', stats.kendalltau(y, p)[0])):
        s = correlation_surface(y, pd.Series(p, name='coarse'), n_grid=3, std=huge, rho='none', kendall=kendall)
        row = s.summary().set_index('method').loc['KRCC']
        assert abs(row['global'] - want) < 1e-12, (kendall, row['global'], want)
        assert abs(row['GMC'] - want) < 1e-6, (kendall, row['GMC'], want)
    assert abs(tau_a - stats.kendalltau(y, p)[0]) > 1e-3        # the two variants do differ here


# ---- item 20: memory, n_grid, device ----------------------------------------------------------------------
def test_huge_grid_is_refused_before_allocating():
    with pytest.raises(ValueError, match=r'n_grid: 3000000 .* needs about .* GB of memory'):
        correlation_surface(ex.mos, ex.uniform, n_grid=3_000_000, std=ex['std'])
    with pytest.raises(ValueError, match=r'grid: .* needs about .* GB'):
        gmc_grid(ex.mos, ex.uniform, Qs=np.linspace(LO, HI, 200_000), Ds=np.linspace(0, HI - LO, 200_000), std=ex['std'])


def test_memory_limit_env(monkeypatch):
    monkeypatch.setenv('GMC_NB_MAX_MEMORY', '0.000001')
    with pytest.raises(ValueError, match='over the 1e-06 GB available'):
        correlation_surface(ex.mos, ex.uniform, n_grid=101, std=ex['std'])
    with pytest.raises(ValueError, match='query points needs about'):
        gmc_points(ex.mos, ex.uniform, np.full(2000, 2.5), np.full(2000, 0.5), std=ex['std'])


@pytest.mark.parametrize('n_grid', [1, 0, -5, 2.5, '11', True])
def test_bad_n_grid(n_grid):
    with pytest.raises(ValueError, match='n_grid'):
        correlation_surface(ex.mos, ex.uniform, n_grid=n_grid, std=ex['std'])


@pytest.mark.parametrize('device', ['foo', 'cuda:x', 'gpu'])
def test_bad_device_is_a_value_error(device):
    for f in (lambda: gmc_points(ex.mos, ex.uniform, [2.5], [0.5], std=ex['std'], device=device),
              lambda: gmc_grid(ex.mos, ex.uniform, Qs=[2.5], Ds=[0.5], std=ex['std'], device=device),
              lambda: correlation_surface(ex.mos, ex.uniform, n_grid=5, std=ex['std'], device=device)):
        with pytest.raises(ValueError, match='device'): f()


# ---- item 14: single-precision grids on real data -----------------------------------------------------------
def _single_vs_double(shared_data, dataset, tau, n_grid, model):
    from gmc_nb.analysis.datasets import load_dataset
    inp = load_dataset(dataset, models=[model], root=shared_data).gmc_inputs(tau=tau)
    axes = dict(Qs=np.linspace(inp.mos.min(), inp.mos.max(), n_grid), Ds=np.linspace(0, np.ptp(inp.mos), n_grid))
    gd, gs = gmc_grid(inp, **axes), gmc_grid(inp, **axes, precision='single')
    worst = 0.
    for k in gd['values']:
        a, b = gd['values'][k], gs['values'][k]
        assert (np.isfinite(a) == np.isfinite(b)).all(), f'{dataset} {k}: single precision lost or gained cells'
        worst = max(worst, float(np.nanmax(np.abs(a - b))))
    assert worst <= 1e-5, f'{dataset}: single differs from double by {worst:.2e}'
    print(dataset, tau, 'max |single - double|', worst)


@pytest.mark.parametrize('dataset,tau,n_grid,model', [('tid2013', 1., 21, 'ssim'), ('LIVEC', 1., 21, 'niqe'),
                                                      ('kadid10k', 0.1, 11, 'ssim')])
def test_single_precision_grid_holds(shared_data, dataset, tau, n_grid, model):
    _single_vs_double(shared_data, dataset, tau, n_grid, model)


@pytest.mark.slow
def test_single_precision_grid_holds_pipal(shared_data):
    _single_vs_double(shared_data, 'pipal', 1., 11, 'ssim')


# ---- issue 13: the definition, its engines, one vocabulary, named results ------------------------------------------
def test_engines_give_the_definitions_numbers():
    "Each engine's pair sums (torch at points and on the grid, C at points) turn into gmc_point's values"
    from gmc_nb.gmc.correlation import _sum_rows, _coefficients
    from gmc_nb.gmc.engine_torch import _torch_point_sums, _torch_grid_sums
    from gmc_nb.gmc.engine_c import _c_point_sums
    inp = gmc_inputs(ex.mos, ex[['uniform', 'coarse']], std=ex['std'])
    Q, D = np.array(QP), np.array(DP)
    for kendall in 'ab':
        rows = _sum_rows(2, METHODS, kendall)
        want = {(k, m): [gmc_point(inp, q, d, k, m, kendall) for q, d in zip(Q, D)] for k in range(2) for m in METHODS}
        engines = [_torch_point_sums(inp, Q, D, rows, workers=2, block=97)]
        if c_kernel() is not None: engines.append(_c_point_sums(inp, Q, D, rows, workers=2))
        for S, _ in engines:
            for key, v in _coefficients(S, rows, 2, METHODS, kendall).items():
                np.testing.assert_allclose(v, want[key], rtol=0, atol=1e-11, err_msg=str(key))
        S, _ = _torch_grid_sums(inp, Q[:3], D[[0, 3]], rows, workers=2, block=97)
        for (k, m), v in _coefficients(S, rows, 2, METHODS, kendall).items():
            ref = [[gmc_point(inp, q, d, k, m, kendall) for q in Q[:3]] for d in D[[0, 3]]]
            np.testing.assert_allclose(v, ref, rtol=0, atol=1e-11, err_msg=f'grid {k} {m}')
    with pytest.raises(ValueError, match="method: unknown correlation 'MSE'"): gmc_point(inp, 2.5, 0.3, 0, 'MSE')


def test_gmc_grid_is_a_named_result():
    "gmc_grid returns a GMCGrid: attributes, the old item access, and a short readable repr"
    from gmc_nb.gmc.points import GMCGrid
    g = gmc_grid(ex.mos, ex[['uniform', 'coarse']], Qs=[1.5, 2.5, 3.5], Ds=[0.3, 1.5], std=ex['std'], methods=['SRCC'])
    assert isinstance(g, GMCGrid) and g['values'] is g.values and g['Q'] is g.Q and g['methods'] == ['SRCC']
    assert g.values['coarse', 'SRCC'].shape == (2, 3) and g['log_weight'].shape == (2, 3)
    r = repr(g)
    assert r.startswith('GMCGrid: 2 × 3 cells (D × Q)') and 'coarse SRCC' in r and len(r.splitlines()) == 3
    with pytest.raises(KeyError, match='a GMCGrid has'): g['SRCC']


def test_read_points_accepts_the_references_Qd(tmp_path):
    "A points file in the reference's format (|ΔMOS| column `Qd`) is read as Q, D"
    from gmc_nb.gmc.surface import read_points
    pd.DataFrame({'Q': [2.0, 3.0], 'Qd': [0.1, 0.5]}).to_csv(tmp_path / 'ref.csv', index=False)
    pd.DataFrame({'Q': [2.0, 3.0], 'D': [0.1, 0.5]}).to_csv(tmp_path / 'ours.csv', index=False)
    a, b = read_points(tmp_path / 'ref.csv'), read_points(tmp_path / 'ours.csv')
    pd.testing.assert_frame_equal(a, b); assert list(a.columns) == ['Q', 'D']
    pd.DataFrame({'Q': [2.0]}).to_csv(tmp_path / 'bad.csv', index=False)
    with pytest.raises(ValueError, match="column 'D' missing"): read_points(tmp_path / 'bad.csv')


def test_regulator_choice_is_called_regulator():
    "`method` means a correlation; the regulator is chosen by `regulator=` (`method=` works for one release, warned)"
    from gmc_nb.gmc.regulator import regulator_weights
    y = ex.mos.to_numpy()
    lds = regulator_weights(y, regulator='lds')
    with pytest.warns(DeprecationWarning, match='`method=` is deprecated'):
        np.testing.assert_array_equal(regulator_weights(y, method='lds'), lds)
    np.testing.assert_array_equal(regulator_weights(y, None, 'lds'), lds)
    with pytest.raises(ValueError, match="regulator: unknown regulator 'kde'"): regulator_weights(y, regulator='kde')


def test_grid_defaults_are_N_GRID():
    import inspect
    from gmc_nb.gmc.surface import N_GRID
    assert N_GRID == 41
    assert inspect.signature(correlation_surface).parameters['n_grid'].default == N_GRID
    assert len(grid_points(LO, HI)) == N_GRID * N_GRID


# ---- issue 17: batched replicates, block choice, precision ------------------------------------------------------
def _sub(inp, w):
    from gmc_nb.gmc.points import _replicate_inputs
    return _replicate_inputs(inp, w)


@pytest.mark.parametrize('ranks', ['dense', 'average'])
@pytest.mark.parametrize('n_axis', [5, 50])          # 25 cells: one product for all replicates; 2500: one per replicate
def test_grid_batch_equals_each_replicate(ranks, n_axis):
    from gmc_nb.analysis.stats import resample_counts
    inp = gmc_inputs(ex.mos.round(1), ex[['uniform', 'coarse']].round(2), std=ex['std'], ranks=ranks)
    ax = dict(Qs=np.linspace(inp.mos.min(), inp.mos.max(), n_axis), Ds=np.linspace(0, np.ptp(inp.mos), n_axis))
    W = resample_counts(len(inp.mos), 3, seed=4).astype(float)
    g = gmc_grid(inp, **ax, weights=W, kendall='b')
    for b, w in enumerate(W):
        one = gmc_grid(_sub(inp, w), **ax, kendall='b')
        for k, v in one.values.items():
            np.testing.assert_array_equal(np.isnan(g.values[k][b]), np.isnan(v))
            np.testing.assert_allclose(np.nan_to_num(g.values[k][b]), np.nan_to_num(v), rtol=0, atol=1e-12, err_msg=f'{k} rep {b}')
        np.testing.assert_allclose(g.log_weight[b], one.log_weight, rtol=0, atol=1e-10)


def test_block_choice_gives_the_old_one_product_values():
    from gmc_nb.gmc.engine_torch import _torch_grid_sums, _grid_blocking
    from gmc_nb.gmc.correlation import _sum_rows
    inp = gmc_inputs(ex.mos, ex[['uniform', 'coarse', 'blind_top']], std=ex['std'])
    rows = _sum_rows(3, METHODS, 'a')
    Qg, Dg = np.linspace(LO, HI, 33), np.linspace(0, HI - LO, 31)
    old, _ = _torch_grid_sums(inp, Qg, Dg, rows, block=4096, group=len(rows))     # the old default: one product per block
    for precision in ('double', 'single'):
        new, _ = _torch_grid_sums(inp, Qg, Dg, rows, workers=2, precision=precision)
        tol = 1e-12 if precision == 'double' else 1e-6
        np.testing.assert_allclose(new, old, rtol=0, atol=tol * np.abs(old).max())
    assert _grid_blocking(38, 101) == (1024, 1) and _grid_blocking(8, 41) == (1024, 3) and _grid_blocking(2, 41, device='cuda') == (2 ** 16, 2)


def test_grouped_inplace_grid_gives_the_definitions_numbers():
    "Issue 17: the grid's groups of pair terms (Eᵀ (M_g ⊗ F), added in place), any block and group size, both precisions"
    from gmc_nb.gmc.engine_torch import _torch_grid_sums, _column_groups
    from gmc_nb.gmc.correlation import _sum_rows, _coefficients
    inp = gmc_inputs(ex.mos, ex[['uniform', 'coarse', 'blind_top']], std=ex['std'])
    Qg, Dg = np.array([1.3, 2.5, 3.7, 4.4]), np.array([0., 0.4, 1.7])
    for kendall in 'ab':
        rows = _sum_rows(3, METHODS, kendall, True)
        for precision, tol in (('double', 1e-11), ('single', 1e-5)):
            for block, group in ((None, None), (37, 1), (101, 4), (5000, 7)):
                S, _ = _torch_grid_sums(inp, Qg, Dg, rows, workers=2, block=block, precision=precision, group=group)
                for (k, m), v in _coefficients(S, rows, 3, METHODS, kendall).items():
                    ref = [[gmc_point(inp, q, d, k, m, kendall) for q in Qg] for d in Dg]
                    np.testing.assert_allclose(v, ref, rtol=0, atol=tol, err_msg=f'{precision} {block} {group} {k} {m}')
    assert _column_groups(38, 101) == (256, [5, 5, 5, 5, 5, 5, 4, 4])     # 256 × 5·101 doubles: 1 MB, one core's L2
    assert _column_groups(8, 101, 'single') == (512, [4, 4]) and _column_groups(4, 41, group=3) == (256, [2, 2])
    assert sum(_column_groups(38, 101, device='cuda')[1]) == 38


def test_correlation_surface_passes_precision(monkeypatch):
    import gmc_nb.gmc.surface as surface
    seen = []
    real = surface.gmc_grid
    monkeypatch.setattr(surface, 'gmc_grid', lambda *a, **k: seen.append(k['precision']) or real(*a, **k))
    s1 = correlation_surface(ex.mos, ex.uniform, std=ex['std'], n_grid=9, precision='single')
    s2 = correlation_surface(ex.mos, ex.uniform, std=ex['std'], n_grid=9)
    assert seen == ['single', 'double']
    for k in s2.values: np.testing.assert_allclose(np.nan_to_num(s1.values[k]), np.nan_to_num(s2.values[k]), atol=1e-5)
    with pytest.raises(ValueError, match="precision: must be 'double' or 'single'"):
        correlation_surface(ex.mos, ex.uniform, std=ex['std'], n_grid=9, precision='half')


def test_grid_weights_refused_when_malformed():
    inp = gmc_inputs(ex.mos, ex.uniform, std=ex['std'])
    ax = dict(Qs=[2.5], Ds=[0.5])
    for W, msg in [(np.ones(len(ex)), r'weights: need a \(B, 80\) array'), (np.zeros((2, len(ex))), 'replicate 0 has no image'),
                   (np.full((1, len(ex)), np.nan), 'finite non-negative')]:
        with pytest.raises(ValueError, match=msg): gmc_grid(inp, **ax, weights=W)
