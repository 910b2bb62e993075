"Widgets in the static docs: precomputed frames, client-side links, saved state, and tools/docs_widgets.install"
import html, json, subprocess, sys, warnings
from pathlib import Path
import pytest
import ipywidgets as W

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import docs_widgets as dw

NB19 = ROOT / 'nbs' / '19_explain.ipynb'
NB24 = ROOT / 'nbs' / '24_plots.ipynb'
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


def _tree(w):
    "Model ids of `w` and every widget under it (children of boxes and stacks)"
    yield w.model_id
    for c in getattr(w, 'children', ()): yield from _tree(c)


def _links(box):
    "((source id, trait), (target id, trait)) of every jslink touching the widget tree of `box`, as the saved state has them"
    ids = set(_tree(box)); out = []
    for v in W.Widget.get_manager_state()['state'].values():     # the state the docs embed: no deprecated registry
        if v['model_name'] != 'LinkModel': continue
        (s, sa), (t, ta) = v['state']['source'], v['state']['target']
        s, t = s.removeprefix('IPY_MODEL_'), t.removeprefix('IPY_MODEL_')
        if s in ids or t in ids: out.append(((s, sa), (t, ta)))
    return out


def test_slider_jslinked_to_stack():
    from gmc_nb.gmc.explain import frame_explorer
    frames = {(a, b): f'{a}{b}'.encode() for a in (1, 2, 3) for b in 'xy'}
    box = frame_explorer(frames, ['A', 'B'], css='t')
    s0, s1 = box.children[0].children
    outer = box.children[1]
    assert isinstance(outer, W.Stack) and len(outer.children) == 3
    with warnings.catch_warnings():
        warnings.simplefilter('error', DeprecationWarning)      # the old way (Widget.widgets) warned
        links = _links(box)
    assert [t for s, t in links if s == (s0.model_id, 'index')] == [(outer.model_id, 'selected_index')]
    assert sorted(t[0] for s, t in links if s == (s1.model_id, 'index')) == sorted(c.model_id for c in outer.children)
    assert all(t[1] == 'selected_index' for _, t in links) and len(links) == 1 + len(outer.children)
    assert 't-slider-0' in s0._dom_classes and 't-frame' in outer.children[0].children[0]._dom_classes
    with pytest.raises(ValueError, match='key length'): frame_explorer(frames, ['A'])


@pytest.mark.parametrize('nbp', [NB19, NB24], ids=lambda p: p.stem)
def test_state_saved_and_survives_clean(tmp_path, nbp):
    text = nbp.read_text(encoding='utf-8'); nb = json.loads(text)
    st = nb['metadata']['widgets'][STATE]
    assert st['state'] and {'StackModel', 'LinkModel', 'SelectionSliderModel'} <= {v['model_name'] for v in st['state'].values()}
    views = dw.widget_views(nb)
    assert views and all(mid in st['state'] for _, mid in views)
    assert nbp.stat().st_size < 2_000_000
    assert str(ROOT) not in text and str(Path.home()) + '/' not in text      # no machine paths in stored outputs
    p = tmp_path / nbp.name; p.write_text(text, encoding='utf-8')
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


# ---- 24_plots: the explorer, live and precomputed -----------------------------------------------------------------
@pytest.fixture(scope='module')
def scores():
    from gmc_nb.data import example_scores
    ex = example_scores(80)
    return ex.mos, ex[['uniform', 'blind_top']], ex['std']


def test_explore_frames_grid_and_static_explorer(scores):
    import matplotlib; matplotlib.use('Agg')
    from gmc_nb.analysis.plots import explore_frames
    from gmc_nb.gmc.explain import frame_explorer
    fr = explore_frames(scores, 'blind_top', 'uniform', rhos=('gaussian', 'none'), taus=(.5, 2), n_grid=7, dpi=20)
    assert list(fr) == [('gaussian', .5), ('gaussian', 2.), ('none', .5), ('none', 2.)]
    assert len(set(fr.values())) == 4 and all(v[:8] == b'\x89PNG\r\n\x1a\n' for v in fr.values())
    box = frame_explorer(fr, ['regulator', 'τ'], css='gmc-explore')
    sl = box.children[0].children
    assert [s.description for s in sl] == ['regulator', 'τ'] and 'gmc-explore-slider-1' in sl[1]._dom_classes
    assert [l for l, _ in sl[0].options] == ['gaussian', 'none'] and [l for l, _ in sl[1].options] == ['0.5', '2.0']
    assert len(_links(box)) == 1 + 2
    with pytest.raises(ValueError, match='taus must be non-empty'): explore_frames(scores, 'uniform', taus=[])
    with pytest.raises(ValueError, match='rhos must'): explore_frames(scores, 'uniform', rhos=['lds', 'lds'])


def test_live_explorer_recomputes_on_release_and_caches(scores, monkeypatch):
    import matplotlib; matplotlib.use('Agg')
    from gmc_nb.analysis import plots
    calls = []
    real = plots.correlation_surface
    monkeypatch.setattr(plots, 'correlation_surface', lambda *a, **k: calls.append(1) or real(*a, **k))
    ui = plots.explorer({'ex': scores}, n_grid=7)
    tau = next(w for w in _widgets(ui) if isinstance(w, W.FloatLogSlider))
    assert tau.continuous_update is False
    assert all(w.continuous_update is False for w in _widgets(ui) if hasattr(w, 'continuous_update'))
    assert len(calls) == 1                                   # the first draw
    tau.value = 2.; assert len(calls) == 2
    tau.value = 1.; assert len(calls) == 2                   # back to a choice seen: from the cache
    assert ui.surface_cache.cache_info().hits == 1


def _widgets(w):
    yield w
    for c in getattr(w, 'children', ()): yield from _widgets(c)
