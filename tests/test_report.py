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
