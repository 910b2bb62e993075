"""Readers and registry of gmc_nb.datasets on the real shared data (skipped when absent)."""
import numpy as np
import pandas as pd
import pytest

from gmc_nb.analysis.datasets import (list_datasets, get_dataset, register_dataset, validate_mos, from_frame, load_dataset,
                                     read_gmc_predictions, join_predictions, gmc_models, list_sources)


def test_registry_covers_standard_sets():
    for k in ['livec', 'koniq', 'spaq', 'kadid', 'pipal', 'tid2013', 'agiqa3k', 'csiq', 'live']:
        assert k in list_datasets()
    assert get_dataset('LIVE Challenge'.replace(' ', '')).key == 'livec'
    assert get_dataset('csiq').direction == 'lower'


def test_validate_names_dataset_and_row():
    with pytest.raises(ValueError, match=r'TID2013 MOS: value 11 at row 2'):
        validate_mos([1, 2, 11], 'tid2013')


def test_directions_are_explicit():
    df = pd.DataFrame({'image': list('abcd'), 'mos': [1., 2, 3, 4], 'niqe': [4., 3, 2, 1], 'good': [1., 2, 3, 5]})
    d = from_frame(df, directions={'niqe': 'lower'})
    assert d.direction == {'niqe': 'lower', 'good': 'higher'}
    np.testing.assert_array_equal(d.preds.niqe, df.niqe)           # raw kept
    np.testing.assert_array_equal(d.oriented().niqe, -df.niqe)     # negated only on request
    with pytest.raises(ValueError, match='not models'):
        from_frame(df, directions={'nosuch': 'lower'})


def test_gmc_livec(shared_data):
    d = load_dataset('livec', root=shared_data)
    assert len(d.mos) == 1162 and d.std is not None and len(d.models) == 7
    assert all(v == 'higher' for v in d.direction.values())
    assert 'negated' in d.source['niqe']


def test_gmc_full_reference_groups(shared_data):
    d = read_gmc_predictions('tid2013', ['psnr', 'ssim'], root=shared_data)
    assert len(d.mos) == 3000 and len(set(d.groups)) == 25
    assert set(gmc_models('kadid', shared_data)) >= {'psnr', 'ssim', 'lpips', 'dists', 'ms_ssim', 'DeepWSD'}


def test_pyiqa_and_join(shared_data):
    base = load_dataset('livec', 'pyiqa', root=shared_data)
    assert len(base.mos) == 1162 and base.models == []
    g = load_dataset('livec', models=['niqe'], root=shared_data)
    j = join_predictions(base, pd.DataFrame({'image': g.images, 'niqe': g.preds.niqe.to_numpy()}))
    np.testing.assert_allclose(j.preds.niqe, g.preds.niqe)
    pipal = load_dataset('pipal', 'pyiqa', root=shared_data)
    assert pipal.scale == 'elo' and pipal.mos.max() > 1000


def test_qbench(shared_data):
    import gmc_nb.qdebias.qbench  # registers the qbench source
    d = load_dataset('livec', 'qbench', models=['llava_v1.5'], root=shared_data)
    assert d.direction['llava_v1.5'] == 'higher' and d.preds['llava_v1.5'].between(0, 1).all()


def test_registry_pattern():
    "register_dataset / get_dataset / list_datasets, and the entry says where each source keeps the set"
    info = get_dataset('koniq')
    with pytest.raises(ValueError, match="'koniq' is already registered"): register_dataset(info)
    assert register_dataset(info, overwrite=True) is info
    with pytest.raises(ValueError, match='unknown data set'): get_dataset('nosuch')
    assert list_datasets() == sorted(list_datasets())
    assert info.files_of('qbench').scale == '1-5' and info.files_of('pyiqa').std_col is None
    with pytest.raises(ValueError, match="source 'gmc' has"): info.files_of('gmc')


def test_sources_registry_and_specs(shared_data):
    "load_dataset('gmc:livec') dispatches through the source registry; qbench needs its module imported"
    assert {'gmc', 'pyiqa'} <= set(list_sources())
    a, b = load_dataset('gmc:livec', root=shared_data), load_dataset('livec', 'gmc', root=shared_data)
    np.testing.assert_array_equal(a.mos, b.mos); assert a.models == b.models
    with pytest.raises(ValueError, match='disagrees'): load_dataset('pyiqa:livec', 'gmc')
    with pytest.raises(ValueError, match='not registered'): load_dataset('nosuch:livec')


def test_qbench_spec_without_import_names_the_module():
    "the analysis layer never imports qbench itself: an unregistered qbench: spec says what to import"
    import subprocess, sys
    code = ("from gmc_nb.analysis.datasets import load_dataset\n"
            "try: load_dataset('qbench:koniq')\n"
            "except ValueError as e: print(e)\n"
            "import sys; print('gmc_nb.qdebias.qbench' in sys.modules)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True).stdout
    assert "'qbench:koniq'" in out and 'import gmc_nb.qdebias.qbench' in out and out.strip().endswith('False'), out


def test_livec_has_mos_std_and_the_seven_nr_models(shared_data):
    "the one LIVE Challenge loader gives what the CLI's example needs: MOS, std and the 7 NR models"
    d = load_dataset('gmc:livec', root=shared_data)
    assert d.models == ['clipiqa', 'clipiqa+', 'niqe', 'qalign', 'qualiclip', 'qualiclip+', 'topiq_nr']
    assert d.std is not None and len(d.std) == len(d.mos) == 1162
    import pandas as pd
    gt = pd.read_csv(shared_data / 'predictions' / 'LIVEC' / 'niqe.csv')['Ground Truth Labels'].to_numpy()
    np.testing.assert_allclose(d.mos, gt, rtol=1e-6)
