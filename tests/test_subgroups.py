"""Subgroups (gmc_nb.analysis.subgroups): every image name of the five data sets' real files parses into the
published design, per-subgroup correlations agree with scipy, surfaces and the heat map."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gmc_nb.analysis.datasets import from_frame, read_table, load_dataset
from gmc_nb.analysis.subgroups import (DistortionCoding, register_distortion_coding, get_distortion_coding,
                                       list_distortion_codings, coding_table, distortion_labels, subgroup_labels,
                                       subgroup_correlations, subgroup_surfaces, subgroup_gmc_table,
                                       plot_subgroup_heatmap, MIN_SURFACE_IMAGES)
from gmc_nb.gmc.surface import correlation_surface

# (data set, file under the shared data folder, image column, references, images per reference)
FILES = [('kadid', 'predictions/meta_info_KADID10kDataset.csv', 'dist_name', 81, 125),
         ('tid2013', 'predictions/meta_info_TID2013Dataset.csv', 'dist_name', 25, 120),
         ('pipal', 'predictions/meta_info_PIPALDataset.csv', 'dist_name', 200, 116),
         ('kadid', 'mos/pyiqa_meta_info/meta_info_KADID10kDataset.csv', 'dist_name', 81, 125),
         ('tid2013', 'mos/pyiqa_meta_info/meta_info_TID2013Dataset.csv', 'dist_name', 25, 120),
         ('pipal', 'mos/pyiqa_meta_info/meta_info_PIPALDataset.csv', 'dist_name', 200, 116),
         ('csiq', 'mos/pyiqa_meta_info/meta_info_CSIQDataset.csv', 'dist_name', 30, None),
         ('live', 'mos/pyiqa_meta_info/meta_info_LIVEIQADataset.csv', 'dist_name', 29, None)]


@pytest.mark.parametrize('ds,path,col,n_ref,per_ref', FILES, ids=[f[1].split('/')[-1] + ':' + f[0] for f in FILES])
def test_real_names_parse_into_the_published_design(shared_data, ds, path, col, n_ref, per_ref):
    t = read_table(shared_data / path)
    refs = t['ref_name'] if ds == 'live' else None
    lab = distortion_labels(t[col], ds, refs=refs)
    assert len(lab) == len(t) and lab.type.notna().all() and lab.type_name.notna().all()
    c = get_distortion_coding(ds)
    counts = lab.groupby('type').size().to_dict()
    if c.design is not None:
        assert counts == c.design                          # images per type, as published
        assert set(lab.type_name) == {c.type_names[k] for k in c.design}
    assert lab.ref.nunique() == n_ref
    if per_ref: assert set(lab.groupby('ref').size()) == {per_ref}
    if ds in ('kadid', 'tid2013'):                         # full factorial: every reference × type × level once
        assert not lab.duplicated(['ref', 'type', 'level']).any()
        assert lab.groupby(['type', 'level']).size().nunique() == 1 and sorted(lab.level.unique()) == [1, 2, 3, 4, 5]
    if ds == 'live': assert lab.level.isna().all()
    if ds == 'pipal':                                      # 7 groups; every reference has the same 116 (group, variant) codes
        assert sorted(counts) == [f'{k:02d}' for k in range(7)] and sum(counts.values()) == 23200
        assert (lab.groupby(['type', 'level']).size() == 200).all()
    if ds == 'csiq': assert lab.groupby('type')['level'].max().to_dict()['contrast'] == 4


def test_bad_names_are_errors_naming_image_and_data_set():
    with pytest.raises(ValueError, match=r"image 'I01_01_1.bmp' \(row 1\) does not follow the kadid naming"):
        distortion_labels(['I01_01_01.png', 'I01_01_1.bmp'], 'kadid')
    with pytest.raises(ValueError, match=r"image 'I01_25_1.bmp' \(row 0\): type 25 is not one of the 24 tid2013 types"):
        distortion_labels(['I01_25_1.bmp'], 'tid2013')
    with pytest.raises(ValueError, match=r"1600.AWGN.6.png.*level 6 is not one of the csiq levels"):
        distortion_labels(['1600.AWGN.6.png'], 'csiq')
    with pytest.raises(ValueError, match=r"type 'noise' is not one of the 6 csiq types"):
        distortion_labels(['1600.noise.1.png'], 'csiq')
    with pytest.raises(ValueError, match=r"does not follow the live naming"):
        distortion_labels(['refimgs/bikes.bmp'], 'live')
    with pytest.raises(ValueError, match=r"refs: 1 values for 2 images"):
        distortion_labels(['jp2k/img1.bmp', 'wn/img2.bmp'], 'live', refs=['a'])


def test_registry():
    assert list_distortion_codings() == ['csiq', 'kadid', 'live', 'pipal', 'tid2013']
    assert get_distortion_coding('KADID-10k').dataset == 'kadid'
    tab = coding_table()
    assert tab.loc['kadid', 'n_types'] == 25 and tab.loc['tid2013', 'per_type'] == '125' and tab.loc['pipal', 'names'] == 'codes'
    with pytest.raises(ValueError, match='already registered'):
        register_distortion_coding(get_distortion_coding('csiq'))
    mine = DistortionCoding('toyset', r'^(?P<type>[ab])_(?P<level>\d)\.png$', 'a_1.png', {'a': 'A', 'b': 'B'}, 'made up',
                            {'a': 2, 'b': 1}, (1, 2), int_types=False)
    register_distortion_coding(mine)
    try: assert distortion_labels(['a_1.png', 'B_2.png'], 'toyset').type_name.tolist() == ['A', 'B']
    finally: from gmc_nb.analysis import subgroups; subgroups._CODINGS.pop('toyset')


def _toy(seed=0):
    rng = np.random.default_rng(seed)
    names = [f'I{r:02d}_{t:02d}_{l}.bmp' for r in range(1, 13) for t in (1, 8, 17) for l in range(1, 6)]
    mos = rng.uniform(1, 8, len(names))
    t = np.array([int(s[4:6]) for s in names])
    df = pd.DataFrame({'image': names, 'mos': mos, 'ref_name': [s[:3] for s in names],
                       'good': mos + rng.normal(0, np.where(t == 1, .1, 2.), len(names)),
                       'niqe': -mos + rng.normal(0, 1, len(names))})
    return from_frame(df, dataset='tid2013', group_col='ref_name', directions={'niqe': 'lower'})


@pytest.mark.parametrize('by', ['distortion', 'level', 'distortion_level'])
def test_subgroup_correlations_match_scipy(by):
    d = _toy(); lab = subgroup_labels(d, by).to_numpy()
    t = subgroup_correlations(d, by=by, methods=('SRCC', 'PLCC', 'KRCC'), boot=100, seed=3)
    assert list(t.columns[:7]) == ['subgroup', 'model', 'method', 'value', 'lo', 'hi', 'n']
    assert t.subgroup.nunique() == {'distortion': 3, 'level': 5, 'distortion_level': 15}[by]
    P = d.oriented()
    f = {'SRCC': stats.spearmanr, 'PLCC': stats.pearsonr, 'KRCC': stats.kendalltau}
    for r in t.itertuples():
        m = lab == r.subgroup
        assert r.n == m.sum()
        assert r.value == pytest.approx(f[r.method](d.mos[m], P[r.model][m])[0], abs=1e-12)
        assert r.lo <= r.value <= r.hi
    assert (t.query("model == 'niqe'").value > 0).all()      # niqe was turned to agree with the MOS
    pd.testing.assert_frame_equal(t, subgroup_correlations(d, by=by, methods=('SRCC', 'PLCC', 'KRCC'), boot=100, seed=3))


def test_constant_model_in_one_subgroup_is_a_noted_nan():
    "A model constant on one subgroup (PSNR capped at 80 dB on a mild brightening, say) has no correlation there: NaN and a note"
    d = _toy(); g = 'Gaussian blur'; m = (subgroup_labels(d) == g).to_numpy()
    P = d.preds.copy(); P.loc[m, d.models[0]] = 80.
    from dataclasses import replace
    t = subgroup_correlations(replace(d, preds=P), methods=('SRCC', 'PLCC'), boot=50, seed=1)
    ref = subgroup_correlations(d, methods=('SRCC', 'PLCC'), boot=50, seed=1)
    bad = (t.subgroup == g) & (t.model == d.models[0])
    assert bad.sum() == 2 and t[bad][['value', 'lo', 'hi']].isna().all().all() and (t[bad].n_boot == 0).all()
    assert any(g in n and 'constant' in n for n in t.attrs['notes'])
    assert list(t.columns) == list(ref.columns) and t[['subgroup', 'model', 'method']].equals(ref[['subgroup', 'model', 'method']])
    assert t[~bad].value.notna().all()


def test_bootstrap_resamples_within_the_subgroup():
    d = _toy(); g = 'Gaussian blur'; m = (subgroup_labels(d) == g).to_numpy()
    t = subgroup_correlations(d, methods='SRCC', boot=300, seed=5, level=.9).query('subgroup == @g').set_index('model')
    from gmc_nb.analysis.stats import bootstrap_global
    gb = bootstrap_global(d.mos[m], d.oriented()[m], B=300, seed=5, methods=('SRCC',), jackknife=False)
    lo, hi = np.quantile(gb.reps['SRCC'], [.05, .95], axis=0)
    np.testing.assert_allclose(t.loc[d.models, 'lo'], lo, atol=1e-12); np.testing.assert_allclose(t.loc[d.models, 'hi'], hi, atol=1e-12)
    tc = subgroup_correlations(d, methods='SRCC', boot=300, seed=5, clustered=True)
    assert tc.attrs['clustered'] and not np.allclose(tc.lo, subgroup_correlations(d, methods='SRCC', boot=300, seed=5).lo)


def test_subgroup_surfaces_equal_surface_on_the_subset():
    d = _toy(); sf = subgroup_surfaces(d, n_grid=7, min_images=30, methods=('SRCC', 'PLCC'))
    assert list(sf) == ['additive Gaussian noise', 'Gaussian blur', 'contrast change']
    lab = subgroup_labels(d).to_numpy()
    ref = correlation_surface(d.subset(lab == 'Gaussian blur').gmc_inputs(), n_grid=7, methods=('SRCC', 'PLCC'))
    for k, v in ref.values.items(): np.testing.assert_array_equal(sf['Gaussian blur'].values[k], v)
    tab = subgroup_gmc_table(sf)
    assert len(tab) == 3 * 2 * 2 and set(tab.n) == {60}
    small = subgroup_surfaces(d, 'distortion_level', n_grid=5)
    assert len(small) == 0 and len(small.skipped) == 15 and MIN_SURFACE_IMAGES == 50
    assert subgroup_gmc_table(small).attrs['skipped'] == small.skipped


def test_heatmap():
    pytest.importorskip('matplotlib')
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    t = subgroup_correlations(_toy(), boot=0)
    fig = plot_subgroup_heatmap(t, 'PLCC')
    ax = fig.axes[0]
    assert [x.get_text() for x in ax.get_xticklabels()] == ['additive Gaussian noise', 'Gaussian blur', 'contrast change']
    assert [x.get_text() for x in ax.get_yticklabels()] == ['good', 'niqe']
    assert len(ax.texts) == 6 and len(fig.axes) == 2
    with pytest.raises(ValueError, match="method: 'KRCC' not in the table"): plot_subgroup_heatmap(t, 'KRCC')
    plt.close('all')


def test_kadid_gmc_authors(shared_data):
    d = load_dataset('gmc:kadid', models=['psnr', 'DeepWSD'], root=shared_data)
    t = subgroup_correlations(d, methods='SRCC', boot=50, overall=True)
    assert t.subgroup.nunique() == 26 and set(t[t.subgroup != 'all'].n) == {405}
    w = t.pivot(index='subgroup', columns='model', values='value')
    assert w.loc['all', 'DeepWSD'] > w.loc['all', 'psnr']
    assert w.loc['non-eccentricity patch', 'psnr'] < .35     # psnr's worst type
