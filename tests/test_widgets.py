"Widgets in the static docs: precomputed frames, client-side links, saved state, and tools/docs_widgets.install"
import html, json, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import docs_widgets as dw

NB19 = ROOT / 'nbs' / '19_explain.ipynb'
STATE = 'application/vnd.jupyter.widget-state+json'


@pytest.fixture(scope='module')
def inp():
    from gmc_nb.data import example_scores
    from gmc_nb.gmc.inputs import gmc_inputs
    ex = example_scores(60)
    return gmc_inputs(ex.mos, ex[['uniform', 'blind_top']], std=ex['std'])


def test_frames_distinct(inp):
    from gmc_nb.gmc.explain import explain_point_frames
    fr = explain_point_frames(inp, n=3, model='blind_top', dpi=30)
    assert len(fr) == 9 and len(set(fr.values())) == 9
    assert all(v[:8] == b'\x89PNG\r\n\x1a\n' for v in fr.values())
    with pytest.raises(ValueError, match='n=0'): explain_point_frames(inp, n=0)


def test_slider_jslinked_to_stack():
    from ipywidgets.widgets.widget_link import Link
    import ipywidgets as W
    from gmc_nb.gmc.explain import frame_explorer
    frames = {(a, b): f'{a}{b}'.encode() for a in (1, 2, 3) for b in 'xy'}
    box = frame_explorer(frames, ['A', 'B'], css='t')
    s0, s1 = box.children[0].children
    outer = box.children[1]
    assert isinstance(outer, W.Stack) and len(outer.children) == 3
    links = [w for w in W.Widget.widgets.values() if isinstance(w, Link)]
    assert [l.target for l in links if l.source == (s0, 'index')] == [(outer, 'selected_index')]
    assert sorted(id(l.target[0]) for l in links if l.source == (s1, 'index')) == sorted(map(id, outer.children))
    assert 't-slider-0' in s0._dom_classes and 't-frame' in outer.children[0].children[0]._dom_classes
    with pytest.raises(ValueError, match='key length'): frame_explorer(frames, ['A'])


def test_state_saved_and_survives_clean(tmp_path):
    nb = json.loads(NB19.read_text(encoding='utf-8'))
    st = nb['metadata']['widgets'][STATE]
    assert st['state'] and {'StackModel', 'LinkModel', 'SelectionSliderModel'} <= {v['model_name'] for v in st['state'].values()}
    views = dw.widget_views(nb)
    assert views and all(mid in st['state'] for _, mid in views)
    assert NB19.stat().st_size < 2_000_000
    p = tmp_path / NB19.name; p.write_text(NB19.read_text(encoding='utf-8'), encoding='utf-8')
    exe = Path(sys.executable).with_name('nbdev_clean')
    subprocess.run([str(exe), '--fname', str(p)], check=True, cwd=ROOT, capture_output=True)
    assert json.loads(p.read_text(encoding='utf-8'))['metadata']['widgets'][STATE]['state'] == st['state']


def test_install_embeds_state_and_views(tmp_path):
    nb = json.loads(NB19.read_text(encoding='utf-8'))
    reprs = ''.join(f'<div class="cell-output"><pre><code>{html.escape(t)}</code></pre></div>' for t, _ in dw.widget_views(nb))
    (tmp_path / '19_explain.html').write_text(f'<html><head></head><body>{reprs}</body></html>', encoding='utf-8')
    assert dw.install(tmp_path) == ['19_explain.html']
    page = (tmp_path / '19_explain.html').read_text(encoding='utf-8')
    assert (tmp_path / 'site_libs' / 'widgets' / 'embed.js').exists()
    assert '<script src="site_libs/widgets/embed.js"></script>' in page and f'type="{STATE}"' in page
    assert page.count('application/vnd.jupyter.widget-view+json') == len(dw.widget_views(nb))
    assert 'VBox(' not in page and 'HBox(' not in page and 'unpkg' not in page
