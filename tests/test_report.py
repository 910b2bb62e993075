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


def test_report_no_beyond_and_named_after_the_file(table, tmp_path, capsys):
    "`gmc report --no-beyond` writes no P.1401 or Krasula table; a CSV's report is titled by its file name, not 'table'"
    main(['report', str(table), '--out', str(tmp_path / 'r'), '--B', '30', '--n-grid', '7', '--quiet', '--no-beyond'])
    names = {p.name for p in (tmp_path / 'r').iterdir()}
    assert 'summary.csv' in names and not {'p1401.csv', 'krasula.csv', 'resolving_power.csv'} & names
    md = (tmp_path / 'r' / 'summary.md').read_text()
    assert md.splitlines()[0] == '# GMC report: ex' and '## Beyond one number' not in md


def test_csv_data_name():
    "The name of a CSV's data: the file stem, unless a name or a registry key is given"
    import tempfile
    from pathlib import Path
    from gmc_nb.analysis.datasets import read_csv_scores
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / 'my_scores.csv'; example_scores(30).to_csv(p, index=False)
        assert read_csv_scores(p).name == 'my_scores'
        assert read_csv_scores(p, name='other').name == 'other'


def _debias_results(n=60, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    mos = rng.uniform(1, 5, n)
    return pd.DataFrame({'image_id': [f'i{k}.png' for k in range(n)], 'mos': mos, 'status': 'ok', 'error': '',
                         'qbench': mos + rng.normal(0, 1.2, n), 'q_official': mos + rng.normal(0, .8, n)})


def test_debias_report_formats(tmp_path, capsys):
    "`gmc debias-report --format png,pdf,svg`: the surfaces figure in each format, PNG at print resolution; a bad format: one line, exit 2"
    from PIL import Image
    from gmc_nb.qdebias.report import debias_report
    r = debias_report(_debias_results(), tmp_path / 'o', n_grid=7, n_boot=0, formats=('png', 'pdf', 'svg'))
    for suf in ('png', 'pdf', 'svg'): assert (tmp_path / 'o' / f'surfaces.{suf}').stat().st_size > 1000, suf
    assert r['files']['surfaces'].suffix == '.png' and r['files']['surfaces.pdf'].suffix == '.pdf'
    assert Image.open(tmp_path / 'o' / 'surfaces.png').info['dpi'][0] >= 199
    with pytest.raises(SystemExit) as e: main(['debias-report', str(tmp_path / 'none.jsonl'), '--out', str(tmp_path / 'x'), '--format', 'png,gif'])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '--format' in err[0] and 'gif' in err[0]


def test_seven_models_leave_no_blank_panel(tmp_path):
    "Seven models on a 2 x 4 grid: the eighth cell holds the colour bar, not an empty frame"
    import matplotlib; matplotlib.use('Agg')
    import numpy as np
    from gmc_nb.commands import _surface_figure
    from gmc_nb.gmc.inputs import gmc_inputs
    from gmc_nb.gmc.surface import correlation_surface
    rng = np.random.default_rng(1); mos = rng.uniform(0, 100, 80)
    preds = pd.DataFrame({f'm{k}': mos + rng.normal(0, 5 + 5 * k, 80) for k in range(7)})
    surf = correlation_surface(gmc_inputs(mos, preds), n_grid=5, methods=['SRCC'], progress=False)
    import matplotlib.pyplot as plt
    seen = {}
    orig = plt.Figure.savefig
    def grab(fig, *a, **k): seen['fig'] = fig; return orig(fig, *a, **k)
    plt.Figure.savefig = grab
    try: _surface_figure(surf, 'SRCC', 'seven', tmp_path / 's.png')
    finally: plt.Figure.savefig = orig
    fig = seen['fig']

    hidden = [a for a in fig.axes if not a.axison and a.get_visible()]
    assert len(hidden) == 1, f'expected one hidden panel (the colour bar holder), got {len(hidden)}'
    assert hidden[0].child_axes, 'the empty panel holds no colour bar'
