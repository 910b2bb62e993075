"""Readers and registry of gmc_nb.datasets on the real shared data (skipped when absent)."""
import numpy as np
import pandas as pd
import pytest

from gmc_nb.analysis.datasets import REGISTRY, dataset_info, validate_mos, from_frame, load_dataset, read_gmc_predictions, join_predictions, gmc_models


def test_registry_covers_standard_sets():
    for k in ['livec', 'koniq', 'spaq', 'kadid', 'pipal', 'tid2013', 'agiqa3k', 'csiq', 'live']:
        assert k in REGISTRY
    assert dataset_info('LIVE Challenge'.replace(' ', '')).key == 'livec'
    assert dataset_info('csiq').direction == 'lower'


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
    d = load_dataset('livec', 'qbench', models=['llava_v1.5'], root=shared_data)
    assert d.direction['llava_v1.5'] == 'higher' and d.preds['llava_v1.5'].between(0, 1).all()
