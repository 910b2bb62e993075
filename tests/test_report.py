"""`gmc compare` and `gmc report` end to end on the built-in example."""
import pandas as pd
import pytest

from gmc_nb.data import example_scores
from gmc_nb.cli import main


@pytest.fixture
def table(tmp_path):
    p = tmp_path / 'ex.csv'
    df = example_scores(120); df['niqe_like'] = -df.uniform
    df.to_csv(p, index=False)
    return p


def test_compare(table, tmp_path, capsys):
    main(['compare', str(table), '--models', 'uniform', 'niqe_like', '--lower', 'niqe_like', '--B', '100',
               '--n-grid', '7', '--surface-B', '4', '--out', str(tmp_path / 'c'), '--quiet'])
    out = capsys.readouterr().out
    assert 'negated (lower is better): niqe_like' in out and 'tied' in out   # identical after negation
    assert list((tmp_path / 'c').glob('difference_*.png'))


def test_report(table, tmp_path):
    main(['report', str(table), '--out', str(tmp_path / 'r'), '--B', '50', '--n-grid', '7', '--quiet'])

    s = pd.read_csv(tmp_path / 'r' / 'summary.csv')
    assert list(s.model) == ['uniform', 'coarse', 'blind_top', 'niqe_like'] and 'GMC-SRCC' in s
    assert '| model |' in (tmp_path / 'r' / 'summary.md').read_text()


def test_bad_model(table, capsys):
    with pytest.raises(SystemExit) as e: main(['compare', str(table), '--models', 'uniform', 'nosuch', '--quiet'])
    assert e.value.code == 2
    assert 'nosuch' in capsys.readouterr().err


def test_report_adds_what_the_data_allows(table, tmp_path):
    "Issue 15: P.1401 always; Krasula and resolving power need a ratings count (none here: named as skipped, with the reason)"
    from gmc_nb.analysis.datasets import read_csv_scores
    from gmc_nb.analysis.report import report
    rep = report(read_csv_scores(table), tmp_path / 'r', B=50, n_grid=9, progress=False)
    names = {p.name for p in rep.files}
    assert {'p1401.csv', 'p1401_tests.csv'} <= names and 'krasula.csv' not in names
    md = (tmp_path / 'r' / 'summary.md').read_text()
    assert '## Beyond one number' in md and 'not computed: Krasula' in md and 'not computed: subgroups' in md


def test_report_on_kadid_has_every_table(shared_data, tmp_path):
    "KADID-10k: std published, 30 ratings per image in the registry, distortion types in the names: every table is written"
    import numpy as np
    from gmc_nb.analysis.datasets import load_dataset
    from gmc_nb.analysis.report import report
    d = load_dataset('gmc:kadid').select(['psnr', 'ssim'])
    d = d.subset(np.arange(0, len(d.mos), 20))        # 507 images, every type and level
    rep = report(d, tmp_path / 'k', B=30, n_grid=7, progress=False)
    names = {p.name for p in rep.files}
    assert {'p1401.csv', 'krasula.csv', 'krasula_tests.csv', 'resolving_power.csv', 'subgroups.csv'} <= names
    k = pd.read_csv(tmp_path / 'k' / 'krasula.csv')
    assert list(k.model) == ['psnr', 'ssim'] and k.AUC_BW.between(0.5, 1).all()
    assert pd.read_csv(tmp_path / 'k' / 'subgroups.csv').subgroup.nunique() == 25
