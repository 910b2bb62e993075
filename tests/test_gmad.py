"""gmc_nb.analysis.gmad: the O(n)-per-level pair choice equals a brute-force O(n²) pair search; levels, windows,
NaN rows, orientation, the figure on synthetic PNGs and the files for a rating session."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gmc_nb.data import shared_data_dir
from gmc_nb.analysis.datasets import from_frame
from gmc_nb.analysis.gmad import (gmad_levels, gmad_tol, gmad_pairs, gmad_from_data, gmad_figure, write_gmad,
                                  PAIR_COLUMNS, QUANTILES, TOL_FRAC)


def _brute(D, A, levels, tol):
    "The definition: every ordered pair (i, j), i != j, in each window; the one with the largest A_i - A_j"
    out = []
    for lv in levels:
        w = [i for i in range(len(D)) if abs(D[i] - lv) <= tol]
        best = None
        for i in w:
            for j in w:
                if i != j and (best is None or A[i] - A[j] > best[0]): best = (A[i] - A[j], i, j)
        out.append(best)
    return out


def _table(n, seed, rho=.6):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2)) @ np.linalg.cholesky([[1, rho], [rho, 1]]).T
    return pd.DataFrame({'D': z[:, 0] * 3 + 50, 'A': z[:, 1]}, index=[f'im{i:04d}.png' for i in range(n)])


@pytest.mark.parametrize('seed,k,tol_frac', [(0, 5, .02), (1, 7, .05), (2, 3, .01), (3, 1, .1)])
def test_pairs_equal_brute_force(seed, k, tol_frac):
    t = _table(400, seed)
    g = gmad_pairs(t, 'D', 'A', k=k, tol_frac=tol_frac)
    assert len(g) == 2 * k and list(g.columns) == list(PAIR_COLUMNS)
    for dn, an in (('D', 'A'), ('A', 'D')):
        role = g[g.defender == dn].reset_index(drop=True)
        assert (role.attacker == an).all()
        ref = _brute(t[dn].to_numpy(), t[an].to_numpy(), g.attrs['levels'][dn], g.attrs['tol'][dn])
        for r, b in zip(role.itertuples(), ref):
            if b is None: assert pd.isna(r.image_a) and r.n_level < 2; continue
            assert (r.image_a, r.image_b) == (t.index[b[1]], t.index[b[2]])
            assert r.attacker_diff == pytest.approx(b[0], abs=1e-12)
            assert r.attacker_a == t[an][r.image_a] and r.defender_b == t[dn][r.image_b]
            assert abs(r.defender_a - r.defender_score) <= r.tol and abs(r.defender_b - r.defender_score) <= r.tol


def test_levels_and_default_tol():
    x = _table(500, 5).D.to_numpy()
    lo, hi = np.quantile(x, QUANTILES)
    np.testing.assert_allclose(gmad_levels(x, 4), np.linspace(lo, hi, 4))
    np.testing.assert_allclose(gmad_levels(x, 2, quantiles=(0, 1)), [x.min(), x.max()])
    np.testing.assert_allclose(gmad_levels(x, 1), [(lo + hi) / 2])
    assert gmad_tol(x) == pytest.approx(TOL_FRAC * (hi - lo))
    g = gmad_pairs(pd.DataFrame({'D': x, 'A': -x}), 'D', 'A', both=False)
    assert g.attrs['tol'] == {'D': pytest.approx(TOL_FRAC * (hi - lo))}
    np.testing.assert_allclose(g.defender_score, np.linspace(lo, hi, 5))
    with pytest.raises(ValueError, match=r'k: number of levels must be an int >= 1, got 2.5'): gmad_levels(x, 2.5)
    with pytest.raises(ValueError, match=r'quantiles: need 0 <= lo < hi <= 1'): gmad_levels(x, quantiles=(0, 2))
    with pytest.raises(ValueError, match='defender scores: constant'): gmad_levels(np.r_[np.zeros(200), 1.])


def test_scale_free_default_tol():
    "The default window scales with the defender: multiplying its scores by 1000 picks the same images"
    t = _table(300, 8)
    a, b = gmad_pairs(t, 'D', 'A'), gmad_pairs(t.assign(D=t.D * 1000), 'D', 'A')
    assert a.image_a.tolist() == b.image_a.tolist() and a.image_b.tolist() == b.image_b.tolist()


def test_empty_level_is_a_nan_row_with_a_note():
    t = pd.DataFrame({'D': [0., .1, .2, 5, 9.9, 10], 'A': [1., 2, 3, 4, 5, 5]}, index=list('uvwxyz'))
    g = gmad_pairs(t, 'D', 'A', k=3, tol=.5, both=False, quantiles=(0, 1))
    assert g.n_level.tolist() == [3, 1, 2] and g.image_a.isna().tolist() == [False, True, False]
    assert g.attacker_diff.isna().tolist() == [False, True, False]
    assert g.attrs['notes'] == ["defender 'D' level 2 (5): 1 image(s) within tol 0.5 (< 2): no pair, NaN row"]
    assert (g.image_a[2], g.image_b[2], g.attacker_diff[2]) == ('y', 'z', 0)   # a tie still gives two distinct images


def test_tol_per_model_and_errors():
    t = _table(200, 3)
    g = gmad_pairs(t, 'D', 'A', tol={'D': .3})
    assert g.attrs['tol'] == {'D': .3, 'A': pytest.approx(gmad_tol(t.A))}
    assert (g.defender_diff.abs() <= 2 * g.tol)[g.image_a.notna()].all() and len(g.attrs["notes"]) == g.image_a.isna().sum()
    for bad, msg in [(dict(attacker='B'), r"models: \['B'\] not in preds"), (dict(attacker='D'), 'attacker: must differ'),
                     (dict(tol=0), "tol: must be a positive number in the defender's units .* got 0 for 'D'"),
                     (dict(tol={'A': np.inf}), "got inf for 'A'"), (dict(min_images=1), 'min_images'),
                     (dict(images=['a'] * 200), "images: image name 'a' repeated"), (dict(images=['a']), 'images: 1 names for 200 rows')]:
        with pytest.raises(ValueError, match=msg): gmad_pairs(t, **{'defender': 'D', 'attacker': 'A', **bad})
    with pytest.raises(ValueError, match="prediction 'A': non-finite value nan at row 7"):
        gmad_pairs(t.assign(A=t.A.where(t.index != 'im0007.png')), 'D', 'A')
    with pytest.raises(ValueError, match='preds: expected a DataFrame'): gmad_pairs(t.to_numpy(), 'D', 'A')


def test_from_data_orients_higher_better():
    t = _table(300, 4)
    frame = t.rename_axis('image').reset_index().assign(mos=(t.D + t.A).to_numpy(), niqe=-t.A.to_numpy())
    ref = gmad_pairs(t, 'D', 'A')
    same = gmad_from_data(from_frame(frame, models=['D', 'niqe'], directions={'niqe': 'lower'}), 'D', 'niqe')
    assert same.image_a.tolist() == ref.image_a.tolist() and same.image_b.tolist() == ref.image_b.tolist()
    np.testing.assert_allclose(same.attacker_a[:5], ref.attacker_a[:5])       # NIQE negated: higher = better
    dmos = gmad_from_data(from_frame(frame.assign(mos=-frame.mos), models=['D', 'A'], mos_direction='lower'), 'D', 'A')
    assert dmos.image_a.tolist() == ref.image_a.tolist() and 'DMOS' in dmos.attrs['orientation']
    with pytest.raises(ValueError, match=r"models: \['B'\] not in table"): gmad_from_data(from_frame(frame), 'D', 'B')


@pytest.fixture
def toy(tmp_path):
    t = _table(60, 6)
    d = tmp_path / 'img'; d.mkdir()
    for i, name in enumerate(t.index):
        Image.fromarray(np.full((20, 30, 3), i * 4, np.uint8)).save(d / name)
    return t, d


def test_figure_and_missing_file(toy, tmp_path):
    t, d = toy
    g = gmad_pairs(t, 'D', 'A', k=3)
    full = g.dropna(subset=['image_a'])
    fig = gmad_figure(g, d)
    assert len(fig.axes) == 2 * len(full)
    assert fig.axes[0].get_title().startswith(full.image_a.iloc[0]) and fig.axes[1].get_title().startswith(full.image_b.iloc[0])
    assert np.asarray(fig.axes[0].images[0].get_array()).shape == (20, 30, 3)
    (d / full.image_b.iloc[0]).unlink()
    with pytest.raises(ValueError, match='image file not found: .*' + full.image_b.iloc[0]): gmad_figure(g, d)
    with pytest.raises(ValueError, match='pairs: columns'): gmad_figure(g.drop(columns='image_a'), d)
    with pytest.raises(ValueError, match='no complete pair'): gmad_figure(g.iloc[:0], d)
    with pytest.raises(ValueError, match='pairs: no complete pair'): write_gmad(g.iloc[:0], tmp_path / 'o', d)
    assert not (tmp_path / 'o').exists()
    with pytest.raises(ValueError, match='image file not found'): write_gmad(g, tmp_path / 'o2', d)
    assert not (tmp_path / 'o2').exists()                      # files checked before anything is written


def test_write_gmad(toy, tmp_path):
    t, d = toy
    g = gmad_pairs(t, 'D', 'A', k=4)
    files = write_gmad(g, tmp_path / 'out', d)
    assert [f.name for f in files] == ['gmad_pairs.csv', 'gmad.png'] and all(f.stat().st_size > 0 for f in files)
    assert Image.open(files[1]).size[0] > 100
    s = pd.read_csv(files[0])
    n = int(g.image_a.notna().sum())
    assert len(s) == n and s.pair_id.tolist() == [f'P{i + 1:03d}' for i in range(n)]
    assert (s.left == s.image_b).sum() == n // 2                           # balanced left/right
    assert all({l, r} == {a, b} for l, r, a, b in zip(s.left, s.right, s.image_a, s.image_b))
    assert pd.read_csv(write_gmad(g, tmp_path / 'again', seed=0)[0]).left.tolist() == s.left.tolist()   # seeded
    assert [f.name for f in write_gmad(g, tmp_path / 'csv')] == ['gmad_pairs.csv']


def test_spaq_two_best_lmms():
    root = shared_data_dir()
    if root is None: pytest.skip('shared data folder (../shared/data) absent: no Q-Bench logits')
    from gmc_nb.qdebias.qbench import read_qbench
    spaq = read_qbench('spaq', models=['internlm_xcomposer_vl', 'instructblip_vicuna'])
    g = gmad_from_data(spaq, 'internlm_xcomposer_vl', 'instructblip_vicuna', k=5)
    assert len(g) == 10 and (g.n_level.to_numpy() >= 0).all()
    full = g.dropna(subset=['image_a'])
    assert (full.attacker_diff > 0).all() and (full.defender_diff.abs() <= 2 * full.tol).all()
    assert len(g.attrs['notes']) == 10 - len(full)
    P = spaq.preds
    for r in full.itertuples():     # the attacker's max and min over the window, checked directly
        w = P[(P[r.defender] - r.defender_score).abs() <= r.tol][r.attacker]
        assert (r.attacker_a, r.attacker_b) == (w.max(), w.min())
