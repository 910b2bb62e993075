"""Issue 12, the analysis layer: multiplicity ranks in the bootstrap, full-reference resampling, DMOS,
level/groups/minimum checks, the non-monotone logistic, Q-Bench's temperature, zero std."""
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from gmc_nb.gmc.inputs import gmc_inputs
from gmc_nb.gmc.points import gmc_grid
from gmc_nb.data import example_scores
from gmc_nb.analysis.datasets import from_frame, load_dataset
from gmc_nb.analysis.report import compare, report
from gmc_nb.analysis.surface_stats import _grid_weighted, bootstrap_surface
from gmc_nb.analysis.stats import bootstrap_global, ci_bca, ci_percentile, resample_counts, weighted_global
from gmc_nb.analysis.logistic import fit_logistic


def _ties(n=60, seed=1):
    "example data with ties in MOS and predictions, so average and dense ranks differ"
    ex = example_scores(n, seed)
    return ex.mos.round(1).to_numpy(), ex[['uniform', 'coarse']].round(2), ex['std'].to_numpy()


@pytest.mark.parametrize('ranks', ['dense', 'average'])
def test_surface_replicate_equals_explicit_resample(ranks):
    mos, preds, std = _ties()
    inp = gmc_inputs(mos, preds, std=std, ranks=ranks)
    Qs, Ds = np.linspace(mos.min(), mos.max(), 5), np.linspace(0, np.ptp(mos), 4)
    C = resample_counts(len(mos), 4, seed=3)
    methods = ['PLCC', 'SRCC', 'KRCC']
    for c in C:
        rep = _grid_weighted(inp, c.astype(float), Qs, Ds, methods, c, precision='double')['values']
        idx = np.repeat(np.arange(len(mos)), c)      # the explicit resample, std and rho held fixed per image
        sub = replace(inp, mos=inp.mos[idx], preds=inp.preds[idx], std=inp.std[idx], rho=inp.rho[idx])
        ref = gmc_grid(sub, Qs=Qs, Ds=Ds, methods=methods, precision='double')['values']
        for k in ref:
            np.testing.assert_allclose(rep[k], ref[k], rtol=0, atol=1e-12, err_msg=f'{ranks} {k}')


def test_bootstrap_surface_reps_match_explicit_resample():
    mos, preds, std = _ties()
    inp = gmc_inputs(mos, preds, std=std, ranks='average')
    sb = bootstrap_surface(inp, B=3, seed=5, n_grid=4, methods=['SRCC'], rep_precision='double')
    C = resample_counts(len(mos), 3, seed=5)
    idx = np.repeat(np.arange(len(mos)), C[1])
    sub = replace(inp, mos=inp.mos[idx], preds=inp.preds[idx], std=inp.std[idx], rho=inp.rho[idx])
    ref = gmc_grid(sub, Qs=sb.Q, Ds=sb.D, methods=['SRCC'])['values']
    np.testing.assert_allclose(sb.reps['uniform', 'SRCC'][1], ref['uniform', 'SRCC'], atol=1e-6)   # stored as float32


def test_global_replicate_equals_explicit_resample():
    mos, preds, _ = _ties()
    C = resample_counts(len(mos), 5, seed=2)
    r = weighted_global(C, mos, preds.to_numpy())
    for b, c in enumerate(C):
        idx = np.repeat(np.arange(len(mos)), c)
        for k, m in enumerate(preds.columns):
            y, p = mos[idx], preds[m].to_numpy()[idx]
            assert abs(r['SRCC'][b, k] - stats.spearmanr(y, p)[0]) < 1e-12
            assert abs(r['PLCC'][b, k] - stats.pearsonr(y, p)[0]) < 1e-12
            assert abs(r['KRCC'][b, k] - stats.kendalltau(y, p)[0]) < 1e-9


@pytest.mark.parametrize('level', [2, 0, 1, -0.5, float('nan'), 'x'])
def test_level_outside_0_1_is_refused(level):
    with pytest.raises(ValueError, match='level'): ci_percentile(np.arange(10.), level)
    with pytest.raises(ValueError, match='level'): ci_bca(np.arange(10.), 4., np.arange(5.), level)


def test_compare_report_check_level_first(tmp_path):
    d = from_frame(example_scores(40))
    with pytest.raises(ValueError, match='level'): compare(d, ['uniform', 'coarse'], B=20, level=2, progress=False)
    with pytest.raises(ValueError, match='level'): report(d, tmp_path / 'r', B=20, level=1.5, progress=False)


def test_unknown_groups_column_names_it():
    with pytest.raises(ValueError, match="groups: column 'zz' not found"): from_frame(example_scores(20), group_col='zz')


def test_bootstrap_needs_a_minimum_of_images():
    ex = example_scores(3)
    with pytest.raises(ValueError, match='at least 8 images, got 3'): bootstrap_global(ex.mos, ex[['uniform']], B=10)
    d = from_frame(example_scores(3))
    with pytest.raises(ValueError, match='at least 8 images'): compare(d, ['uniform', 'coarse'], B=10, progress=False)


def test_non_monotone_logistic5_reports_nan_with_reason():
    x = np.linspace(-1, 1, 200); y = 3 + x ** 2 + 0.01 * np.sin(40 * x)       # U-shaped: the best 5-parameter fit turns back
    f = fit_logistic(x, y, 5)
    assert f.converged and not f.monotone
    assert np.isnan(f.plcc_mapped) and 'monotone' in f.message


def test_dmos_column_needs_a_direction():
    ex = example_scores(30); df = ex.rename(columns={'mos': 'dmos'}).assign(dmos=lambda t: 6 - t.dmos)
    with pytest.raises(ValueError, match='dmos'): from_frame(df)
    d = from_frame(df, mos_direction='lower')
    assert d.mos_direction == 'lower' and 'lower is better' in repr(d)
    good = from_frame(ex)
    a = compare(d, ['uniform', 'coarse'], B=50, surface_B=2, n_grid=4, progress=False)['global_']
    b = compare(good, ['uniform', 'coarse'], B=50, surface_B=2, n_grid=4, progress=False)['global_']
    np.testing.assert_allclose(a['SRCC'], b['SRCC'], atol=1e-12)            # a good model is good on DMOS too
    assert (a['SRCC'] > 0.5).all()


def test_duplicate_image_ids_are_an_error():
    df = example_scores(20); df.loc[3, 'image'] = df.loc[7, 'image']
    with pytest.raises(ValueError, match='repeated'): from_frame(df)
    assert len(from_frame(df, allow_duplicates=True).mos) == 20


def test_all_zero_std_is_an_error_in_report_and_compare(tmp_path):
    ex = example_scores(40).assign(std=0.)
    d = from_frame(ex)
    with pytest.raises(ValueError, match='std'): compare(d, ['uniform', 'coarse'], B=20, surface_B=2, n_grid=4, progress=False)
    with pytest.raises(ValueError, match='std'): report(d, tmp_path / 'r', B=20, n_grid=4, progress=False)


def test_resampling_units_default():
    from gmc_nb.analysis.report import resampling_units
    ex = example_scores(40).assign(ref=lambda t: [f'r{i % 8}' for i in range(len(t))])
    d = from_frame(ex, group_col='ref')
    assert resampling_units(d)[1].startswith('reference contents (8 groups)')        # groups known, no registry: contents
    assert resampling_units(d, 'images')[0] is None
    assert resampling_units(from_frame(example_scores(40)))[1].startswith('images')  # no groups: images
    with pytest.raises(ValueError, match='no reference groups'): resampling_units(from_frame(example_scores(40)), 'contents')


def test_full_reference_sets_resample_contents_by_default(shared_data):
    d = load_dataset('kadid', 'gmc', models=['ssim', 'psnr']).subset(np.arange(600))
    r = compare(d, ['ssim', 'psnr'], B=100, surface_B=2, n_grid=4, progress=False)
    assert r['resampled'].startswith('reference contents')
    assert (r['global_']['resampled'] == r['resampled']).all()
    v = r['verdicts']
    assert v.p_williams.isna().all() and v.williams.str.startswith('not applicable').all()
    g = compare(d, ['ssim', 'psnr'], B=100, surface_B=2, n_grid=4, progress=False, grouped='images')
    assert g['resampled'].startswith('images') and g['verdicts'].query("method != 'KRCC'").p_williams.notna().all()


def test_qbench_reader_defaults_to_qbench_temperature(shared_data):
    import gmc_nb.qdebias.qbench  # registers the qbench source
    d = load_dataset('spaq', 'qbench', models=['qwen-vl'])
    assert 'T=100' in d.source['qwen-vl']
    r = stats.pearsonr(d.preds['qwen-vl'], d.mos)[0]
    assert abs(r - 0.669) < 5e-3, r


def test_bootstrap_surface_passes_precision(monkeypatch):
    "Issue 17: `precision` reaches the estimate's gmc_grid, `rep_precision` the replicates'"
    import gmc_nb.analysis.surface_stats as ss
    seen, real = [], ss.gmc_grid
    monkeypatch.setattr(ss, 'gmc_grid', lambda *a, **k: seen.append((k.get('precision'), k.get('weights') is not None)) or real(*a, **k))
    y, P, sd = _ties()
    inp = gmc_inputs(y, P, std=sd)
    bootstrap_surface(inp, B=3, n_grid=5, precision='single', rep_precision='double')
    assert seen == [('single', False), ('double', True)]
