"""`gmc krasula`, `gmc p1401`, `gmc gmad`, `gmc subgroups` (issue 15): each writes the tables the issue names, agrees
with the library function it wraps, and refuses bad input in one line with exit status 2."""
import numpy as np
import pandas as pd
import pytest

from gmc_nb.data import example_scores
from test_cli import gmc, error_line


@pytest.fixture(scope='module')
def table(tmp_path_factory):
    "The built-in example with a ratings-count column `n` (30 per image, 25 for a few)"
    d = tmp_path_factory.mktemp('beyond')
    ex = example_scores(120)
    ex['n'] = np.where(np.arange(len(ex)) % 7 == 0, 25, 30)
    ex.to_csv(d / 'ex.csv', index=False)
    return d


def test_choices_agree_with_the_library():
    "The parser spells the analyses' choices without importing them: they must agree"
    from gmc_nb import cli_beyond as cli
    from gmc_nb.analysis.p1401 import MAPPINGS
    from gmc_nb.analysis.subgroups import SUBGROUPS_BY
    assert cli.P1401_MAPPINGS == MAPPINGS and cli.SUBGROUPS_BY == SUBGROUPS_BY


def test_krasula_writes_the_tables_and_agrees_with_the_library(table, tmp_path):
    r = gmc('krasula', table / 'ex.csv', '--models', 'uniform', 'coarse', 'blind_top', '--n-ratings', 'n', '--out', tmp_path / 'k')
    assert r.returncode == 0, r.stderr[-3000:]
    k = pd.read_csv(tmp_path / 'k' / 'krasula.csv')
    assert {'model', 'AUC_DS', 'AUC_BW', 'CC_0'} <= set(k.columns) and list(k.model) == ['uniform', 'coarse', 'blind_top']
    assert k[['AUC_DS', 'AUC_BW', 'CC_0']].notna().all().all()
    tests = pd.read_csv(tmp_path / 'k' / 'krasula_tests.csv')
    assert {'A', 'B', 'measure', 'p'} <= set(tests.columns) and tests.p.between(0, 1).all()
    from gmc_nb.analysis.datasets import read_csv_scores
    from gmc_nb.analysis.krasula import krasula_from_data
    ex = pd.read_csv(table / 'ex.csv')
    d = read_csv_scores(table / 'ex.csv').select(['uniform', 'coarse', 'blind_top'])
    lib = krasula_from_data(d, n_ratings=ex['n'].to_numpy(float)).table
    np.testing.assert_allclose(k[['AUC_DS', 'AUC_BW', 'CC_0']].to_numpy(), lib[['AUC_DS', 'AUC_BW', 'CC_0']].to_numpy(), atol=1e-12)
    assert 'uniform' in r.stdout and 'ratings' in r.stdout


def test_krasula_number_of_ratings_as_a_number(table, tmp_path):
    r = gmc('krasula', table / 'ex.csv', '--models', 'uniform', 'coarse', '--n-ratings', '30', '--out', tmp_path / 'k')
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(pd.read_csv(tmp_path / 'k' / 'krasula.csv')) == 2


@pytest.mark.parametrize('argv,needles', [
    (['--n-ratings', 'nope'], ['--n-ratings', 'nope']),
    (['--n-ratings', '1'], ['n_ratings', '1']),
    (['--models', 'uniform', 'ghost', '--n-ratings', '30'], ['ghost']),
])
def test_krasula_bad_input_is_one_line(table, tmp_path, argv, needles):
    error_line(gmc('krasula', table / 'ex.csv', *argv, '--out', tmp_path / 'k'), *needles)


def test_krasula_without_ratings_count_says_what_to_pass(table, tmp_path):
    error_line(gmc('krasula', table / 'ex.csv', '--models', 'uniform', 'coarse', '--out', tmp_path / 'k'), '--n-ratings')


def test_p1401_writes_metrics_tests_and_resolving_power(table, tmp_path):
    r = gmc('p1401', table / 'ex.csv', '--models', 'uniform', 'coarse', 'blind_top', '--n-ratings', 'n', '--mapping', 'linear',
            '--out', tmp_path / 'p')
    assert r.returncode == 0, r.stderr[-3000:]
    m = pd.read_csv(tmp_path / 'p' / 'p1401.csv')
    assert {'model', 'RMSE', 'RMSE_star', 'OR'} <= set(m.columns) and m[['RMSE', 'RMSE_star', 'OR']].notna().all().all()
    assert (m.RMSE_star <= m.RMSE + 1e-12).all()
    t = pd.read_csv(tmp_path / 'p' / 'p1401_tests.csv')
    assert {'A', 'B', 'test', 'p', 'p_holm'} <= set(t.columns) and (t.p_holm >= t.p - 1e-12).all()
    assert (tmp_path / 'p' / 'resolving_power.csv').exists()


def test_p1401_bad_mapping_is_refused_by_the_parser(table, tmp_path):
    r = gmc('p1401', table / 'ex.csv', '--mapping', 'quartic', '--out', tmp_path / 'p')
    assert r.returncode == 2 and 'quartic' in r.stderr and 'Traceback' not in r.stderr


def test_gmad_pairs_both_ways(table, tmp_path):
    r = gmc('gmad', table / 'ex.csv', '--defender', 'uniform', '--attacker', 'blind_top', '--k', '3', '--out', tmp_path / 'g')
    assert r.returncode == 0, r.stderr[-3000:]
    g = pd.read_csv(tmp_path / 'g' / 'gmad_pairs.csv')
    assert set(g.defender) == {'uniform', 'blind_top'} and len(g) <= 6
    assert (g.image_a != g.image_b).all()
    one = gmc('gmad', table / 'ex.csv', '--defender', 'uniform', '--attacker', 'blind_top', '--k', '3', '--one-way', '--out', tmp_path / 'g1')
    assert one.returncode == 0 and set(pd.read_csv(tmp_path / 'g1' / 'gmad_pairs.csv').defender) == {'uniform'}


def test_gmad_unknown_model_is_one_line(table, tmp_path):
    error_line(gmc('gmad', table / 'ex.csv', '--defender', 'ghost', '--attacker', 'uniform', '--out', tmp_path / 'g'), 'ghost')


def test_subgroups_without_a_coding_is_one_line(table, tmp_path):
    error_line(gmc('subgroups', table / 'ex.csv', '--out', tmp_path / 's'), 'distortion')


def test_subgroups_on_kadid(shared_data, tmp_path):
    r = gmc('subgroups', 'gmc:kadid', '--models', 'psnr', 'ssim', '--boot', '50', '--out', tmp_path / 's')
    assert r.returncode == 0, r.stderr[-3000:]
    s = pd.read_csv(tmp_path / 's' / 'subgroups.csv')
    assert s.subgroup.nunique() == 25 and set(s.model) == {'psnr', 'ssim'}
    assert (s.lo <= s.value + 1e-12).all() and (s.value <= s.hi + 1e-12).all()
    assert (tmp_path / 's' / 'subgroups_SRCC.png').exists()


def test_gmad_draws_the_pairs_from_an_image_folder(table, tmp_path):
    "With --images the pairs are drawn (gmad.png); a missing image is refused in one line naming it"
    from PIL import Image
    imgs = tmp_path / 'imgs'; imgs.mkdir()
    ex = pd.read_csv(table / 'ex.csv')
    for k, name in enumerate(ex.image):
        Image.new('RGB', (24, 16), (k % 256, 80, 160)).save(imgs / name)
    r = gmc('gmad', table / 'ex.csv', '--defender', 'uniform', '--attacker', 'coarse', '--k', '2', '--images', imgs, '--out', tmp_path / 'g')
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / 'g' / 'gmad.png').stat().st_size > 0 and 'gmad.png' in r.stdout
    first = pd.read_csv(tmp_path / 'g' / 'gmad_pairs.csv').image_a.iloc[0]
    (imgs / first).unlink()
    error_line(gmc('gmad', table / 'ex.csv', '--defender', 'uniform', '--attacker', 'coarse', '--k', '2', '--images', imgs,
                   '--out', tmp_path / 'g2'), first)
