"""Figures people would put in a paper, and messages a reader needs: print-resolution PNGs, `--format png,pdf,svg`,
one-line refusal of a bad format, the std-estimated note on stderr and in the summaries, README links from the root."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gmc_nb.cli import main, build_parser
from gmc_nb.data import example_scores

ROOT = Path(__file__).resolve().parents[1]
EST = 'std: not in the input; estimated from the MOS (Beta, phi=8)'


@pytest.fixture
def no_std_csv(tmp_path):
    "The built-in example without its std column: the std must be estimated"
    p = tmp_path / 'nostd.csv'
    example_scores()[['image', 'mos', 'uniform', 'coarse']].to_csv(p, index=False)
    return p


def _dpi(png):
    return Image.open(png).info['dpi']


def test_example_pngs_at_print_resolution_and_every_format(tmp_path, capsys):
    main(['example', '--out', str(tmp_path), '--grid', '7', '--builtin-only', '--quiet', '--format', 'png,pdf,svg'])
    out = tmp_path / 'builtin'            # where README says `make example` writes
    for meth in ('PLCC', 'SRCC', 'KRCC'):
        for ext in ('png', 'pdf', 'svg'): assert (out / f'surface_{meth}.{ext}').stat().st_size > 0
        assert min(_dpi(out / f'surface_{meth}.png')) >= 199.5
    assert (out / 'surface_SRCC.pdf').read_bytes()[:4] == b'%PDF'
    assert '<svg' in (out / 'surface_SRCC.svg').read_text()[:2000]


def test_default_format_is_png_only(tmp_path, no_std_csv, capsys):
    main(['surface', str(no_std_csv), '--pred-col', 'uniform', 'coarse', '--grid', '7', '--method', 'SRCC', '--quiet',
          '--out', str(tmp_path / 's')])
    assert sorted(p.name for p in (tmp_path / 's').glob('surface_*.*') if p.suffix != '.csv') == ['surface_SRCC.png']
    assert min(_dpi(tmp_path / 's' / 'surface_SRCC.png')) >= 199.5
    err = capsys.readouterr().err
    assert EST in err                                               # stderr says the std was estimated
    assert EST in (tmp_path / 's' / 'summary.md').read_text()       # and so does the summary


@pytest.mark.parametrize('cmd', ['example', 'surface', 'report', 'compare'])
def test_bad_format_is_one_line_exit_2(tmp_path, no_std_csv, capsys, cmd):
    args = {'example': ['example', '--out', str(tmp_path), '--builtin-only'],
            'surface': ['surface', str(no_std_csv), '--pred-col', 'uniform', '--out', str(tmp_path)],
            'report': ['report', str(no_std_csv), '--out', str(tmp_path)],
            'compare': ['compare', str(no_std_csv), '--models', 'uniform', 'coarse', '--out', str(tmp_path)]}[cmd]
    with pytest.raises(SystemExit) as e: main(args + ['--format', 'png,jpg'])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and '--format' in err and 'jpg' in err, err
    assert not list(tmp_path.glob('**/*.png'))                      # refused before any work


def test_subgroups_takes_format():
    a = build_parser().parse_args(['subgroups', 'x.csv', '--format', 'pdf'])
    assert a.format == 'pdf'
    assert not hasattr(build_parser().parse_args(['points', 'x.csv']), 'format')   # points draws nothing


def test_report_figures_formats_and_std_note(tmp_path, no_std_csv, capsys):
    main(['report', str(no_std_csv), '--out', str(tmp_path), '--grid', '7', '--boot', '30', '--quiet', '--format', 'png,svg'])
    pngs = sorted(tmp_path.glob('*.png'))
    assert pngs and all(min(_dpi(p)) >= 199.5 for p in pngs)
    assert {p.stem for p in pngs} == {p.stem for p in tmp_path.glob('*.svg')}
    assert EST in capsys.readouterr().err
    assert EST in (tmp_path / 'summary.md').read_text()


def test_compare_figure_formats_and_std_note(tmp_path, no_std_csv, capsys):
    main(['compare', str(no_std_csv), '--models', 'uniform', 'coarse', '--out', str(tmp_path), '--grid', '7', '--boot', '30',
          '--surface-boot', '3', '--quiet', '--format', 'pdf,png'])
    png, = tmp_path.glob('difference_*.png')
    assert min(_dpi(png)) >= 199.5 and png.with_suffix('.pdf').exists()
    assert EST in capsys.readouterr().err


def test_given_std_says_nothing(tmp_path, capsys):
    p = tmp_path / 'std.csv'; example_scores()[['image', 'mos', 'std', 'uniform']].to_csv(p, index=False)
    main(['surface', str(p), '--grid', '7', '--method', 'SRCC', '--quiet', '--out', str(tmp_path / 's')])
    assert 'estimated' not in capsys.readouterr().err
    assert 'estimated' not in (tmp_path / 's' / 'summary.md').read_text()


def test_surface_labels_name_the_unit_and_contour_labels_are_not_clipped():
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from gmc_nb.gmc.inputs import gmc_inputs
    from gmc_nb.gmc.surface import correlation_surface
    from gmc_nb.analysis.plots import plot_surface
    ex = example_scores()
    s = correlation_surface(gmc_inputs(ex.mos, ex[['blind_top']], std=ex['std']), n_grid=9, methods=['SRCC'], progress=False)
    ax = plot_surface(s, unit='0-100')
    assert '(0-100)' in ax.get_xlabel() and '(0-100)' in ax.get_ylabel()
    labels = [t for t in ax.texts]
    assert labels
    for t in labels:
        x, y = (ax.transData + ax.transAxes.inverted()).transform(t.get_position())
        assert 0 < x < 1 and 0 < y < 1 and not t.get_clip_on()
    plt.close(ax.figure)


def test_readme_links_work_from_the_root():
    text = (ROOT / 'README.md').read_text(encoding='utf-8')
    links = re.findall(r'\]\(([^)\s]+)\)', text)
    rel = [l.split('#')[0] for l in links if not re.match(r'[a-zA-Z][\w+.-]*:|#|/', l)]
    assert any(l.endswith('.ipynb') for l in rel)
    bad = [l for l in rel if l.endswith('.ipynb') and not l.startswith('nbs/')]
    assert not bad, f"README links to notebooks without the nbs/ prefix: {bad}"
    missing = [l for l in rel if l and not (ROOT / l).exists()]
    assert not missing, f"README links to paths that do not exist: {missing}"


# ---- text readable at the figure's own size, and inside it (issue 14) ------------------------------------------------
def _figures():
    "One figure per figure function of gmc_nb.analysis.plots, each drawn on its own (name, Figure)"
    import matplotlib; matplotlib.use('Agg')
    from gmc_nb.gmc.inputs import gmc_inputs
    from gmc_nb.gmc.surface import correlation_surface
    from gmc_nb.analysis import plots as P
    from gmc_nb.analysis.surface_stats import bootstrap_surface
    ex = example_scores(120); data = (ex.mos, ex[['uniform', 'blind_top']], ex['std'])
    s = correlation_surface(gmc_inputs(ex.mos, ex[['uniform', 'blind_top']], std=ex['std']), n_grid=11, methods=['SRCC'])
    sb = bootstrap_surface(s.inputs, B=6, n_grid=9, methods=['SRCC'], models=['uniform', 'blind_top'])
    yield 'plot_surface', P.plot_surface(s, 'blind_top', unit='1-5').figure
    yield 'plot_surface3d', P.plot_surface3d(s, unit='1-5').figure
    yield 'plot_difference', P.plot_difference(sb.difference('uniform', 'blind_top'), unit='1-5').figure
    yield 'plot_difference (surface)', P.plot_difference(s, 'uniform', 'blind_top').figure
    yield 'plot_marginals', P.plot_marginals({m: sb.marginal_band(m, 'SRCC') for m in sb.models}, unit='1-5').figure
    yield 'plot_mos_hist', P.plot_mos_hist(ex.mos, s.inputs.rho, unit='1-5').figure
    yield 'explore_figure (A − B)', P.explore_figure(data, 'blind_top', 'uniform', n_grid=9, unit='1-5')
    yield 'explore_figure (3-D)', P.explore_figure(data, 'blind_top', n_grid=9, unit='1-5')


def _drawn_texts(fig, monkeypatch):
    "(Text, window extent) of every non-empty text a draw of `fig` actually renders (ticks outside the view are not)"
    from matplotlib.text import Text
    drawn, draw = [], Text.draw
    def record(self, renderer):
        draw(self, renderer)
        if self.get_visible() and self.get_text().strip(): drawn.append((self, self.get_window_extent(renderer)))
    with monkeypatch.context() as m:
        m.setattr(Text, 'draw', record)
        fig.canvas.draw()
    return drawn


def test_every_text_readable_and_inside_its_figure(monkeypatch):
    import matplotlib.pyplot as plt
    names = []
    for name, fig in _figures():
        names.append(name)
        drawn = _drawn_texts(fig, monkeypatch)
        assert len(drawn) > 8, name
        small = [(t.get_text(), t.get_fontsize()) for t, _ in drawn if t.get_fontsize() < 7]
        assert not small, f'{name}: text under 7 pt at the figure size: {small}'
        heads = [a.title for a in fig.axes] + [x.label for a in fig.axes for x in (a.xaxis, a.yaxis, getattr(a, 'zaxis', None)) if x]
        small = [(t.get_text(), t.get_fontsize()) for t in heads if t.get_text() and t.get_fontsize() < 8]
        assert not small, f'{name}: axis label or title under 8 pt: {small}'
        fb = fig.bbox
        out = [(t.get_text(), [round(v) for v in e.extents]) for t, e in drawn
               if e.x0 < fb.x0 - 1 or e.y0 < fb.y0 - 1 or e.x1 > fb.x1 + 1 or e.y1 > fb.y1 + 1]
        assert not out, f'{name}: text outside the figure {[round(v) for v in fb.extents]}: {out}'
        for ax in fig.axes:              # contour labels: whole, inside their axes (no clipping needed)
            ab = ax.get_window_extent()
            for t, e in drawn:
                if t in ax.texts: assert ab.x0 <= e.x0 and e.x1 <= ab.x1 and ab.y0 <= e.y0 and e.y1 <= ab.y1, (name, t.get_text())
        plt.close(fig)
    assert len(names) == 8


def test_labels_of_different_panels_do_not_overlap(monkeypatch):
    "The colour bar of one panel and the labels of the next (the 3-D panel's z label, the difference's bar) stay apart"
    import matplotlib.pyplot as plt
    for name, fig in _figures():
        if not name.startswith('explore'): plt.close(fig); continue
        drawn = _drawn_texts(fig, monkeypatch)
        owner = {id(t): next((i for i, a in enumerate(fig.axes) if t in a.findobj(type(t))), None) for t, _ in drawn}
        heads = [(t, e) for t, e in drawn if any(t is x.label for a in fig.axes for x in (a.xaxis, a.yaxis))]
        clash = [(t.get_text(), u.get_text()) for t, e in heads for u, f in drawn
                 if owner[id(t)] != owner[id(u)] and e.overlaps(f)]
        assert not clash, f'{name}: {clash}'
        plt.close(fig)
