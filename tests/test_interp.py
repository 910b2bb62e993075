"""The interpolating grid engine (issue 17): every value of an interpolated grid lies within its stated bound of the
exact products' value, the bound within `tol`; cells the bound cannot vouch for (a column too far below the largest
weight, a cell that may be empty) are computed exactly; the choice of engine and its arguments are checked."""
import numpy as np
import pandas as pd
import pytest

from gmc_nb.data import example_scores
from gmc_nb.gmc.correlation import METHODS, gmc_point
from gmc_nb.gmc.inputs import gmc_inputs
from gmc_nb.gmc.points import gmc_grid
from gmc_nb.gmc.surface import correlation_surface

EX = example_scores(1200, seed=2)
INP = gmc_inputs(EX.mos, EX[['uniform', 'blind_top']], std=EX['std'])
LO, HI = EX.mos.min(), EX.mos.max()
AX = dict(Qs=np.linspace(LO, HI, 61), Ds=np.linspace(0, HI - LO, 61))


@pytest.fixture(scope='module')
def pair():
    return gmc_grid(INP, **AX), gmc_grid(INP, interp='none', **AX)


def test_auto_interpolates_a_large_grid_within_its_bound(pair):
    g, g0 = pair
    assert g.nodes is not None and g0.nodes is None and g0.error_bound is None
    assert abs(sum(g.nodes.values()) - 1) < 1e-12                      # every pair planned once
    for k, v in g.values.items():
        b = g.error_bound[k]
        assert (b <= 1e-10).all(), k
        assert (np.abs(v - g0.values[k]) <= b + 1e-13).all(), k           # + the exact engine's own rounding
        assert np.isfinite(v).all() and np.isfinite(g0.values[k]).all()
    assert np.abs(g.log_weight - g0.log_weight).max() < 1e-9
    assert 'interpolated (every value within' in repr(g).splitlines()[0]


def test_interpolated_cells_match_the_definition(pair):
    g, _ = pair
    for r, c in [(0, 0), (10, 30), (30, 60), (60, 5)]:
        for m in METHODS:
            want = gmc_point(INP, AX['Qs'][c], AX['Ds'][r], 1, m)
            assert abs(g.values['blind_top', m][r, c] - want) < 1e-10 + 1e-12, (r, c, m)


def test_a_tolerance_below_every_bound_redoes_every_cell_exactly(pair):
    _, g0 = pair
    g = gmc_grid(INP, interp='chebyshev', tol=1e-16, **AX)
    for k, v in g.values.items():
        assert (g.error_bound[k] == 0).all()
        assert np.abs(v - g0.values[k]).max() < 1e-13


def test_threads_change_only_the_rounding(pair):
    g, _ = pair
    g1 = gmc_grid(INP, workers=1, **AX)
    for k, v in g.values.items(): assert np.abs(v - g1.values[k]).max() < 1e-12


def test_floored_zero_std_pairs_take_the_grid_itself():
    "A Beta-estimated std is 0 at the extreme MOS (floored to 1e-6 of the range): those pairs are far too narrow to interpolate"
    rng = np.random.default_rng(5)
    mos = rng.uniform(0, 100, 900); mos[:3] = 100.; mos[3:6] = 0.
    inp = gmc_inputs(mos, (mos + rng.normal(0, 15, 900))[:, None])
    ax = dict(Qs=np.linspace(0, 100, 81), Ds=np.linspace(0, 100, 81))
    g, g0 = gmc_grid(inp, interp='chebyshev', **ax), gmc_grid(inp, interp='none', **ax)
    assert any(kq == 81 for kq, _ in g.nodes) and any(kq < 81 for kq, _ in g.nodes)
    for k, v in g.values.items():
        ok = np.isfinite(g0.values[k])
        assert (np.isfinite(v) == ok).all()
        assert (np.abs(v - g0.values[k])[ok] <= g.error_bound[k][ok] + 1e-13).all(), k
    for m in METHODS:                                                    # the column at the largest MOS, from the definition
        assert abs(g.values['model0', m][40, 80] - gmc_point(inp, 100., 50., 0, m)) < 1e-10


def test_columns_far_below_the_largest_weight_go_to_the_exact_engine():
    "Two tight clusters far apart: mid-scale columns weigh e^-300 and less below the largest ρ, too far for one scale"
    rng = np.random.default_rng(6)
    mos = np.r_[rng.normal(1.2, 0.05, 400), rng.normal(4.8, 0.05, 400)]
    pred = mos + rng.normal(0, 0.3, 800)
    inp = gmc_inputs(mos, pred[:, None], std=np.full(800, 0.06), rho='none')
    ax = dict(Qs=np.linspace(mos.min(), mos.max(), 41), Ds=np.linspace(0, np.ptp(mos), 41))
    g, g0 = gmc_grid(inp, interp='chebyshev', **ax), gmc_grid(inp, interp='none', **ax)
    for k, v in g.values.items():
        assert (np.isnan(v) == np.isnan(g0.values[k])).all(), k
        ok = ~np.isnan(v)
        assert (np.abs(v - g0.values[k])[ok] <= g.error_bound[k][ok] + 1e-13).all(), k
        assert (g.error_bound[k][:, 20] == 0).all()                      # the middle column: computed exactly


def test_choices_that_keep_the_exact_engine():
    small = gmc_grid(EX.mos[:300], EX.uniform[:300], std=EX['std'][:300], Qs=AX['Qs'][:5], Ds=AX['Ds'][:5])
    assert small.nodes is None                                           # too small to bother
    single = gmc_grid(INP, precision='single', **AX)
    assert single.nodes is None and single.error_bound is None
    W = np.ones((2, len(EX)))
    assert gmc_grid(INP, weights=W, Qs=AX['Qs'][:3], Ds=AX['Ds'][:3]).nodes is None


@pytest.mark.parametrize('kw, msg', [
    (dict(interp='spline'), "interp: unknown choice 'spline'"),
    (dict(tol=0.), 'tol: need a number in \\(0, 1\\)'),
    (dict(tol=2.), 'tol: need a number in \\(0, 1\\)'),
    (dict(tol=True), 'tol: need a number in \\(0, 1\\)'),
    (dict(interp='chebyshev', precision='single'), "precision='single'"),
    (dict(interp='chebyshev', weights=np.ones((1, 1200))), "does not take replicate weights"),
])
def test_bad_choices_name_the_argument(kw, msg):
    with pytest.raises(ValueError, match=msg): gmc_grid(INP, **AX, **kw)


def test_correlation_surface_passes_interp_and_tol():
    s = correlation_surface(INP, n_grid=61, methods=['SRCC'])
    assert s.error_bound is not None and max(v.max() for v in s.error_bound.values()) <= 1e-10
    s0 = correlation_surface(INP, n_grid=61, methods=['SRCC'], interp='none')
    assert s0.error_bound is None
    for k in s.values: assert np.abs(s.values[k] - s0.values[k]).max() <= 1e-10


def test_command_line_says_when_it_interpolated(tmp_path):
    "`gmc surface` interpolates a large grid by default, says so and records it; `--interp none` gives the exact products"
    import json, subprocess, sys
    f = tmp_path / 'big.csv'
    EX[['mos', 'std', 'uniform']].to_csv(f, index=False)
    out = {}
    for how in ('auto', 'none'):
        r = subprocess.run([sys.executable, '-m', 'gmc_nb.cli', 'surface', str(f), '--pred-col', 'uniform', '--grid', '61',
                            '--method', 'SRCC', '--quiet', '--interp', how, '--out', str(tmp_path / how)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        meta = json.loads((tmp_path / how / 'meta.json').read_text())
        assert meta['interpolated'] == (how == 'auto') and ('interpolated: every value within' in r.stdout) == (how == 'auto')
        out[how] = pd.read_csv(tmp_path / how / 'surface.csv')
    assert np.abs(out['auto'].SRCC - out['none'].SRCC).max() <= 1e-10
    r = subprocess.run([sys.executable, '-m', 'gmc_nb.cli', 'surface', str(f), '--interp', 'spline', '--out', str(tmp_path / 'x')],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].count('--interp') == 1


def test_without_a_c_compiler_torch_writes_the_same_factors(pair, monkeypatch):
    "The C block writer and the torch fallback give the same sums, to rounding (and the same bounds)"
    from gmc_nb.gmc import engine_interp
    g, _ = pair
    monkeypatch.setattr(engine_interp, 'c_kernel', lambda: None)
    gt = gmc_grid(INP, **AX)
    for k, v in g.values.items():
        assert np.abs(v - gt.values[k]).max() < 1e-12
        assert np.abs(g.error_bound[k] - gt.error_bound[k]).max() <= 1e-15          # a bound is a difference of O(1) ratios


def test_tol_takes_numpy_numbers():
    "A tolerance given as a numpy float is a number like any other"
    g = gmc_grid(INP, interp='chebyshev', tol=np.float32(1e-9), methods=['SRCC'], **AX)
    assert max(v.max() for v in g.error_bound.values()) <= 1e-9
