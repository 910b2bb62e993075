"""gmc_nb.qdebias.reuse: scores with each distinct image encoded once and shared prefixes run once equal plain
batching (score_requests) on the tiny LLaVA and Idefics3; work counted; plain fallback for other families."""
import numpy as np
import pandas as pd
import pytest

from gmc_nb.qdebias.lmm import LMM, load_image, score_requests
from gmc_nb.qdebias.prompting import degraded_views, qdebias_requests
from gmc_nb.qdebias.reuse import (REUSE_FAMILIES, check_reuse, count_passes, distinct_images, plan_prefixes,
                                  reuse_support, score_requests_reused, _token_rows)
from gmc_nb.qdebias.lmm import render_prompt
from gmc_nb.testing import tiny_vlm_parts


@pytest.fixture(scope='module')
def lmms():
    return {a: LMM(*tiny_vlm_parts(a, seed=2), name=a) for a in ('llava', 'idefics3')}


@pytest.fixture(scope='module')
def reqs():
    rng = np.random.default_rng(3)
    out = []
    for k, (h, w) in enumerate([(40, 64), (64, 40), (50, 50)]):   # aspect ratios that tile differently in Idefics3
        q = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out += qdebias_requests(q, degraded_views(q, str(k)))[1]   # 8 Q-Debias requests + the Q-Bench baseline
    return out + [('qalign', [q])]


def _numeric(df):
    return df[[c for c in df.columns if c == 'score' or c.startswith('logit_')]]


@pytest.mark.parametrize('arch', ['llava', 'idefics3'])
@pytest.mark.parametrize('reuse', ['images', 'prefix', ('images', 'prefix')])
@pytest.mark.parametrize("batch_size", [1, 9, 64])
def test_equals_plain_batching(lmms, reqs, arch, reuse, batch_size):
    lmm = lmms[arch]
    ref = score_requests(lmm, reqs, batch_size=8)
    df = score_requests_reused(lmm, reqs, batch_size=batch_size, reuse=reuse, temperature=2.)
    ref2 = score_requests(lmm, reqs, batch_size=8, temperature=2.)
    assert list(df.columns) == list(ref.columns)
    pd.testing.assert_frame_equal(df[['prompt', 'images', 'temperature']], ref2[['prompt', 'images', 'temperature']])
    a, b = _numeric(df).to_numpy(), _numeric(ref2).to_numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    assert np.nanmax(np.abs(a - b)) <= 1e-4
    assert df.attrs['reuse'] == check_reuse(reuse) and df.attrs['fallback'] == '' and df.attrs['model'] == arch


@pytest.mark.parametrize('arch', ['llava', 'idefics3'])
def test_work_counted(lmms, reqs, arch):
    lmm = lmms[arch]
    q_debias = reqs[:8]                                 # the 8 requests of one image: 16 slots, 5 distinct images
    with count_passes(lmm) as plain: score_requests(lmm, q_debias, batch_size=8)
    with count_passes(lmm) as fast: score_requests_reused(lmm, q_debias, batch_size=8)
    assert (plain.vision_passes, plain.lm_passes) == (1, 1) and (fast.vision_passes, fast.lm_passes) == (1, 2)
    per_image = plain.vision_images // 16              # tiles per image (Idefics3 splits an image into tiles)
    assert fast.vision_images == 5 * per_image
    assert fast.lm_tokens < 0.8 * plain.lm_tokens
    with count_passes(lmm) as c: score_requests_reused(lmm, q_debias, batch_size=8, reuse='images')
    assert c.vision_images == 5 * per_image and c.lm_tokens == plain.lm_tokens


def test_distinct_images_by_pixels():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    b = a.copy(); b[0, 0, 0] ^= 1
    uniq, slots = distinct_images([[load_image(a), load_image(a.copy())], [load_image(b), load_image(a)]])
    assert len(uniq) == 2 and slots == [(0, 0), (1, 0)]


def test_prefix_plan(lmms, reqs):
    lmm = lmms['llava']
    ims = [[load_image(i) for i in r[1]] for r in reqs[:9]]
    rows = _token_rows(lmm, [render_prompt(lmm.processor, r[0]) for r in reqs[:9]], ims)
    plan = plan_prefixes(rows, distinct_images(ims)[1], lmm.model.config.image_token_id)
    assert [g for _, g in plan] == [[0, 4], [1, 5], [2, 6], [3, 7], [8]]
    img = lmm.model.config.image_token_id
    for n, g in plan[:4]:
        assert all((rows[i][:n] == rows[g[0]][:n]).all() for i in g)
        assert not (rows[g[0]][n:] == img).any() and all(len(rows[i]) > n for i in g)   # continuations: text only
    # same images, identical prompts: the prefix stops one token short so each keeps a continuation
    same = plan_prefixes([rows[0], rows[0]], [(0, 1), (0, 1)], img)
    assert same == [(len(rows[0]) - 1, [0, 1])]


def test_fallback_for_other_families(lmms, reqs, monkeypatch):
    lmm = lmms['llava']
    monkeypatch.setattr(lmm.model.config, 'model_type', 'qwen2_vl')   # M-RoPE family: not a plain scatter
    why = reuse_support(lmm)
    assert 'qwen2_vl' in why and 'llava' in why
    with count_passes(lmm) as c: df = score_requests_reused(lmm, reqs[:8], batch_size=8)
    monkeypatch.undo()
    ref = score_requests(lmm, reqs[:8], batch_size=8)
    pd.testing.assert_frame_equal(df, ref)
    assert df.attrs['reuse'] == () and 'qwen2_vl' in df.attrs['fallback']
    assert c.vision_images == 16                      # plain work
    assert set(REUSE_FAMILIES) == {'llava', 'idefics3'}


def test_options_and_errors(lmms, reqs):
    lmm = lmms['idefics3']
    with pytest.raises(ValueError, match=r"reuse: unknown saving\(s\) \['kv'\]"): score_requests_reused(lmm, reqs, reuse='kv')
    with pytest.raises(ValueError, match='batch_size'): score_requests_reused(lmm, reqs, batch_size=0)
    with pytest.raises(ValueError, match='temperature'): score_requests_reused(lmm, reqs, temperature=0)
    with pytest.raises(ValueError, match='on_error'): score_requests_reused(lmm, reqs, on_error='skip')
    df = score_requests_reused(lmm, reqs[:3], reuse=None)
    assert df.attrs['reuse'] == () and 'plain' in df.attrs['fallback']
    bad = [('qbench', ['/no/such/image.png'])] + reqs[:4]
    with pytest.raises(ValueError): score_requests_reused(lmm, bad)
    rec = score_requests_reused(lmm, bad, on_error='record')
    ref = score_requests(lmm, bad, on_error='record')
    assert list(rec.columns) == list(ref.columns) and rec.error[0] and np.isnan(rec.score[0])
    assert np.nanmax(np.abs(_numeric(rec).to_numpy()[1:] - _numeric(ref).to_numpy()[1:])) <= 1e-4
    assert score_requests_reused(lmm, []).empty


@pytest.mark.parametrize('arch', ['llava', 'idefics3'])
def test_run_debias_with_reuse_equals_plain(lmms, arch, tmp_path, capsys):
    "A whole Q-Debias run with both savings gives the plain run's logits and scores (<= 1e-4), and its meta says what it used"
    from gmc_nb.qdebias.run import run_debias
    from gmc_nb.qdebias.store import ResultStore, load_results
    from gmc_nb.testing import sample_dataset
    imgs, mos = sample_dataset(tmp_path / 'd', n=4, size=48)
    runs = {}
    for name, reuse in (('plain', ()), ('reused', ('images', 'prefix')), ('auto', 'auto')):
        out = tmp_path / f'{name}.jsonl'
        run_debias(lmms[arch], imgs, mos, out, reuse=reuse, progress=False, workers=0, batch_size=9)
        runs[name] = load_results(out).set_index('image_id').sort_index()
        meta = ResultStore(out).read_meta()
        assert meta['reuse'] == ([] if name in ('plain', 'auto') else ['images', 'prefix']), (name, meta['reuse'])   # auto: tiny, plain
    cols = [c for c in runs['plain'] if ('logit' in c or c.startswith('q_') or c == 'qbench') and runs['plain'][c].dtype.kind == 'f']
    assert len(cols) > 10
    for name in ('reused', 'auto'):
        np.testing.assert_allclose(runs[name][cols].to_numpy(float), runs['plain'][cols].to_numpy(float), atol=1e-4, rtol=0, err_msg=name)


def test_reuse_option_checked():
    from gmc_nb.qdebias.run import RunOptions
    assert RunOptions(reuse='prefix').reuse == ('prefix',) and RunOptions().reuse == 'auto'
    assert RunOptions(reuse='both').reuse == ('images', 'prefix') and RunOptions(reuse='none').reuse == ()   # `gmc debias --reuse` spellings
    with pytest.raises(ValueError, match=r"reuse: unknown saving\(s\) \['kv'\]"): RunOptions(reuse='kv')
