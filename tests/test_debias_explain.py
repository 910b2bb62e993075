"""gmc_nb.debias_explain: the explained numbers of one image equal the row `run_debias` stores (tiny LLaVA and
Idefics3, real photographs), for several settings; prompts and answer ids are the model's; bad input; the
figure and the widget."""
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import numpy as np
import pytest
from PIL import Image

from gmc_nb.qdebias.lmm import answer_token_ids, load_model, render_prompt
from gmc_nb.qdebias.prompting import BASELINE, QUALITY, SIMILARITY
from gmc_nb.qdebias.prompts import get_prompt
from gmc_nb.qdebias.run import load_results, run_debias
from gmc_nb.qdebias.table import read_mos_table
from gmc_nb.testing import TINY_ARCHS, sample_dataset, tiny_vlm
from gmc_nb.qdebias.explain import explain_debias, plot_debias, debias_widget, DebiasExplanation


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp('qdx')
    img_dir, mos = sample_dataset(d, n=3, size=64, seed=1)
    return img_dir, read_mos_table(mos, img_dir)


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp('tiny')
    paths = {a: tiny_vlm(a, d / a, seed=2) for a in TINY_ARCHS}
    return paths, {a: load_model(p) for a, p in paths.items()}


def _maxdiff(rec, stored_row):
    return max(abs(v - float(stored_row[c])) for c, v in rec.items())


@pytest.mark.parametrize('arch', TINY_ARCHS)
def test_explained_equals_stored(arch, data, models, tmp_path):
    img_dir, table = data
    lmm = models[1][arch]
    out = tmp_path / 'r.jsonl'
    run_debias(lmm, img_dir, table, out, seed=5, batch_images=1, batch_size=16, progress=False, workers=0)
    st = load_results(out).set_index('image_id')
    for r in table.itertuples():
        e = explain_debias(lmm, r.path, image_id=r.image_id, mos=r.mos, seed=5, batch_size=16)
        rec = e.record()
        # every number the run stores for the image (logits, p_good/p_yes, all scores) is explained
        num = [c for c in st.columns if c not in ('status', 'error', 'shard', 'mos', 'height', 'width')]
        assert set(num) == set(rec), set(num) ^ set(rec)
        assert _maxdiff(rec, st.loc[r.image_id]) <= 1e-6
        # the explanation is self-consistent: score = Σ w p_good, weights sum to 1
        for m in e.weights:
            assert (e.weights[m] * e.per_view.p_good).sum() == pytest.approx(e.scores[f'q_{m}'], abs=1e-12)
            assert e.weights[m].sum() == pytest.approx(1, abs=1e-12)
        assert (st.loc[r.image_id, 'height'], st.loc[r.image_id, 'width']) == e.query.shape[:2]


def test_other_batching_close(data, models, tmp_path):
    "Default batching (several images per forward pass) changes padding only: agreement to float noise."
    img_dir, table = data
    lmm = models[1]['llava']
    out = tmp_path / 'b.jsonl'
    run_debias(lmm, img_dir, table, out, seed=0, batch_images=3, batch_size=7, progress=False, workers=0)
    st = load_results(out).set_index('image_id')
    d = max(_maxdiff(explain_debias(lmm, r.path, image_id=r.image_id).record(), st.loc[r.image_id]) for r in table.itertuples())
    assert d <= 1e-6, d


def test_settings_follow_the_run(data, models, tmp_path):
    "No semantic prompt, no baseline, other degradations, T = 100, max_side: still the stored numbers."
    img_dir, table = data
    lmm = models[1]['idefics3']
    degs = 'fog:4,saturate:3,gaussian_noise:2'
    out = tmp_path / 's.jsonl'
    run_debias(lmm, img_dir, table, out, degradations=degs, semantic=False, baseline=False, temperature=100., seed=7,
                 max_side=48, batch_images=1, progress=False, workers=0)
    st = load_results(out).set_index('image_id')
    for r in table.itertuples():
        e = explain_debias(lmm, r.path, image_id=r.image_id, degradations=degs, semantic=False, baseline=False,
                           temperature=100., seed=7, max_side=48)
        assert max(e.query.shape[:2]) == 48
        assert list(e.weights) == ['none-semantic'] and 'p_yes' not in e.per_view and 'qbench' not in e.scores
        assert set(e.prompts) == {QUALITY}
        assert _maxdiff(e.record(), st.loc[r.image_id]) <= 1e-6


def test_prompts_are_the_models(models, data):
    img_dir, table = data
    for arch, lmm in models[1].items():
        e = explain_debias(lmm, table.path[0], image_id=table.image_id[0])
        assert set(e.prompts) == {QUALITY, SIMILARITY, BASELINE}
        for name, text in e.prompts.items():
            p = get_prompt(name)
            assert text == render_prompt(lmm.processor, name)
            spelled = getattr(p, 'answer_spellings', lambda: p.answers)()   # the words as read after an assistant prefix
            assert e.answer_ids[name] == dict(zip(p.answers, answer_token_ids(lmm.tokenizer, spelled)))
            assert p.text in e.model_text[name] and e.n_tokens[name] > len(p.text.split())
            end = '<|im_start|>assistant\n' if arch == 'llava' else 'Assistant:'
            pre = getattr(p, 'prefix', '')
            for t in (text, e.model_text[name]):    # the open assistant turn, then the template's prefix if it has one
                assert t.endswith(pre) and end in t[len(t) - len(pre) - len(end) - 1:] if pre else t.endswith(end), (name, t[-80:])
        # the degraded copy comes first: the processor text holds the images before the question
        q = e.model_text[QUALITY]
        assert q.index('<image>') < q.index('first image is poor')


def test_model_path_array_and_pil(data, models):
    "A model folder is loaded with load_model; arrays and PIL images with the same id give the same numbers."
    img_dir, table = data
    path, lmm = models[0]['llava'], models[1]['llava']
    ref = explain_debias(lmm, table.path[2], image_id=table.image_id[2]).record()
    by_path = explain_debias(str(path), table.path[2], image_id=table.image_id[2]).record()
    arr = np.asarray(Image.open(table.path[2]).convert('RGB'))
    by_arr = explain_debias(lmm, arr, image_id=table.image_id[2]).record()
    by_pil = explain_debias(lmm, Image.fromarray(arr), image_id=table.image_id[2]).record()
    for r in (by_path, by_arr, by_pil): assert max(abs(r[c] - ref[c]) for c in ref) <= 1e-6
    # the default id of a file is its name, as in a MOS table listing bare file names
    assert explain_debias(lmm, table.path[2]).image_id == Path(table.path[2]).name


def test_bad_input(data, models):
    img_dir, table = data
    lmm = models[1]['llava']
    p = table.path[0]
    with pytest.raises(ValueError, match='mos_range'): explain_debias(lmm, p, mos_range=(5, 1))
    with pytest.raises(ValueError, match='mos:'): explain_debias(lmm, p, mos=float('nan'))
    with pytest.raises(ValueError, match='mos:'): explain_debias(lmm, p, mos='good')
    with pytest.raises(ValueError, match='degradations'): explain_debias(lmm, p, degradations='fog:9')
    with pytest.raises(ValueError, match='degradations'): explain_debias(lmm, p, degradations=[('nope', 2)])
    with pytest.raises(ValueError, match='missing.png'): explain_debias(lmm, img_dir / 'missing.png')
    with pytest.raises(ValueError, match='image'): explain_debias(lmm, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match='max_side'): explain_debias(lmm, p, max_side=2)
    with pytest.raises(FileNotFoundError, match='does not exist'): explain_debias('/no/such/model', p)


def test_plot_and_widget(data, models):
    import matplotlib.pyplot as plt
    img_dir, table = data
    lmm = models[1]['llava']
    e = explain_debias(lmm, table.path[0], image_id=table.image_id[0], mos=table.mos[0], mos_range=(1, 5))
    assert isinstance(e, DebiasExplanation)
    fig = plot_debias(e)
    assert len(fig.axes) == 1 + 4 + 3
    plt.close(fig)
    st = e.score_table()
    assert list(st.columns) == ['score', 'mos', 'mos_01'] and st.mos_01.iloc[0] == pytest.approx((e.mos - 1) / 4)
    ui = debias_widget(lmm, table, degradation_sets={'four': None, 'two': 'fog:4,saturate:3'})
    pick, degm = ui.children[0].children
    assert list(pick.options) == list(table.image_id)
    pick.value = table.image_id[2]; degm.value = 'two'
    assert set(ui.explanations) == {(table.image_id[0], 'four'), (table.image_id[2], 'four'), (table.image_id[2], 'two')}
    a = ui.explanations[table.image_id[0], 'four']
    assert a.mos_range == (table.mos.min(), table.mos.max())
    assert max(abs(v - e.record()[c]) for c, v in a.record().items()) <= 1e-12
    plt.close('all')
    # a list of files and a dict of arrays work too
    ui2 = debias_widget(lmm, list(table.path[:2]))
    assert list(ui2.children[0].children[0].options) == [Path(p).name for p in table.path[:2]]
    ui3 = debias_widget(lmm, {'x': np.asarray(Image.open(table.path[1]).convert('RGB'))})
    assert ui3.explanations['x', 'Q-Debias four'].image_id == 'x'
    plt.close('all')
    with pytest.raises(ValueError, match='images'): debias_widget(lmm, 42)
    with pytest.raises(ValueError, match='image'): debias_widget(lmm, table, image='nope.png')
    with pytest.raises(ValueError, match='degradations'): debias_widget(lmm, table, degradation_sets={'bad': 'fog:0'})


# ---------------------------------------------------------------- static frames and the live slider (issue 14)
from gmc_nb.qdebias.explain import debias_frames

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def test_frames_keys_count_and_bytes(data, models):
    img_dir, table = data
    lmm = models[1]['llava']
    sets = {'four': None, 'two': 'fog:4,saturate:3'}
    fr = debias_frames(lmm, table, sets, mos_range=(1, 5), dpi=30, seed=0)
    assert list(fr) == [(i, s) for i in table.image_id for s in sets]
    assert all(b[:8] == PNG_MAGIC for b in fr.values()) and len(set(fr.values())) == len(fr)
    w, h = Image.open(__import__('io').BytesIO(fr[table.image_id[0], 'four'])).size
    assert (w, h) == (int(10.5 * 30), 6 * 30)           # plot_debias's size at 30 dpi: small enough for a page
    # the frame is the figure of the exact explanation: the same as drawing it directly
    import io, matplotlib.pyplot as plt
    e = explain_debias(lmm, table.path[1], image_id=table.image_id[1], mos=table.mos[1], mos_range=(1, 5),
                       degradations='fog:4,saturate:3', seed=0)
    buf = io.BytesIO(); f = plot_debias(e, dpi=30); f.savefig(buf, format='png', dpi=30); plt.close(f)
    assert buf.getvalue() == fr[table.image_id[1], 'two']
    one = debias_frames(lmm, {'x': np.asarray(Image.open(table.path[0]).convert('RGB'))}, dpi=20)
    assert list(one) == [('x', 'Q-Debias four')]
    from gmc_nb.gmc.explain import frame_explorer
    ex = frame_explorer(fr, ['image', 'degradation'], css='qdebias-step')
    assert [s.description for s in ex.children[0].children] == ['image', 'degradation']
    assert len(ex.children[1].children) == len(table)


@pytest.mark.parametrize('kw, field', [
    (dict(max_frames=2), 'max_frames=2'), (dict(degradation_sets='fog:4'), 'degradation_sets'),
    (dict(degradation_sets={}), 'degradation_sets'), (dict(degradation_sets={'bad': 'fog:0'}), 'degradations'),
    (dict(dpi=0), 'dpi'), (dict(dpi='50'), 'dpi'), (dict(images=42), 'images'), (dict(images=[1, 2]), 'images'),
])
def test_frames_bad_input(data, models, kw, field):
    img_dir, table = data
    kw = dict(dict(model=models[1]['llava'], images=table, degradation_sets={'a': None, 'b': 'fog:4'}), **kw)
    with pytest.raises(ValueError, match=field):
        debias_frames(**kw)


def test_widget_has_a_slider_that_recomputes_on_release_with_a_cache(data, models):
    import matplotlib.pyplot as plt
    img_dir, table = data
    lmm = models[1]['llava']
    ui = debias_widget(lmm, table, seed=0)
    pick = ui.children[0].children[0]
    assert type(pick).__name__ == 'SelectionSlider' and pick.continuous_update is False
    assert 'qdebias-live-slider' in pick._dom_classes
    for v in (table.image_id[1], table.image_id[0], table.image_id[1], table.image_id[0]):
        pick.value = v
    assert sorted(ui.figures) == sorted((i, 'Q-Debias four') for i in table.image_id[:2])   # each drawn once
    assert all(b[:8] == PNG_MAGIC for b in ui.figures.values())
    pick.index = 2                                     # what the arrow key moves in the browser
    assert (table.image_id[2], 'Q-Debias four') in ui.explanations
    plt.close('all')
