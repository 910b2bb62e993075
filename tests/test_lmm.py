"""gmc_nb.qdebias.lmm (with its prompts, scoring and Q-Bench reader): tiny offline LLaVA / Idefics3 through the real loading code, prompts, answer tokens,
scores, batching, the CLI, and Q-Bench's published logits."""
import argparse, os, subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gmc_nb.commands import list_images, register_cli
from gmc_nb.qdebias.lmm import answer_token_ids, load_model, quiet_transformers, render_prompt, score_images, score_requests
from gmc_nb.qdebias.prompts import PROMPTS, PromptTemplate, get_prompt, list_prompts, register_prompt
from gmc_nb.qdebias.qbench import QBENCH_DATASETS, QBENCH_TEMPERATURE, qbench_correlations, qbench_scores, read_qbench_logits
from gmc_nb.qdebias.scoring import expected_score, two_way_softmax
from gmc_nb.testing import TINY_ARCHS, tiny_vlm

ROOT = Path(__file__).resolve().parents[1]
ENDINGS = {'llava': '<|im_end|>\n<|im_start|>assistant\n', 'idefics3': '<end_of_utterance>\nAssistant:'}
TEMPLATES = ['qbench', 'qalign', 'qdebias_quality', 'qdebias_similarity']


@pytest.fixture(scope='module')
def tiny_paths(tmp_path_factory):
    d = tmp_path_factory.mktemp('tiny_vlms')
    return {a: tiny_vlm(a, d / a, seed=1) for a in TINY_ARCHS}


@pytest.fixture(scope='module')
def lmms(tiny_paths):
    return {a: load_model(p) for a, p in tiny_paths.items()}


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8) for h, w in rng.integers(20, 90, (n, 2))]


# ---------------------------------------------------------------- scores (no model)
def test_two_way_softmax_is_qbench_helper():
    rng = np.random.default_rng(1)
    a, b = rng.normal(15, 3, 100), rng.normal(15, 3, 100)
    for T in (1., 100.):
        ref = np.exp(a / T) / (np.exp(a / T) + np.exp(b / T))
        np.testing.assert_allclose(two_way_softmax(a, b, T), ref, rtol=0, atol=1e-12)
    assert two_way_softmax(547., 542.5) == pytest.approx(1 / (1 + np.exp(-4.5)))  # no overflow
    with pytest.raises(ValueError, match='temperature'): two_way_softmax(1., 0., -1)
    with pytest.raises(ValueError, match='non-finite'): two_way_softmax([1., np.inf], [0., 0.])


def test_expected_score_qalign():
    z = np.random.default_rng(2).normal(0, 2, (30, 5))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(expected_score(z, get_prompt('qalign').weights), p @ [1, .75, .5, .25, 0], atol=1e-12)
    np.testing.assert_allclose(expected_score(z, [5, 4, 3, 2, 1]), p @ [5, 4, 3, 2, 1], atol=1e-12)
    with pytest.raises(ValueError, match='weights'): expected_score(z, [1, 0])


# ---------------------------------------------------------------- prompts
def test_registry_wording():
    P = PROMPTS
    assert P['qbench'].text == 'Rate the quality of the image.' and P['qbench'].answers == ('good', 'poor')
    assert P['qbench'].prefix == P['qalign'].prefix == 'The quality of the image is'   # anchors §1.1, §2: no trailing space
    assert P['qdebias_quality'].prefix == P['qdebias_similarity'].prefix == ''       # QDEBIAS §3.2: dropped by the processor
    assert P['qalign'].answers == ('excellent', 'good', 'fair', 'poor', 'bad')
    assert P['qalign'].weights == (1., .75, .5, .25, 0.)
    assert P['qdebias_quality'].text == (' The visual quality of the first image is poor. '
                                         'How about the visual quality of the second image. Good or poor?')
    assert P['qdebias_quality'].answers == ('Good', 'Poor') and P['qdebias_quality'].n_images == 2
    assert P['qdebias_similarity'].text == ' Do these two images describe the same object? Yes or no'
    assert P['qdebias_similarity'].answers == ('Yes', 'No')


def test_custom_template_and_errors():
    p = register_prompt(PromptTemplate('test_sharp', 'Is the image sharp?', answers=('Yes', 'No')), overwrite=True)
    assert get_prompt('test_sharp') is p
    with pytest.raises(ValueError, match='already registered'): register_prompt(p)
    with pytest.raises(ValueError, match='weights'): PromptTemplate('x', 'q', answers=('a', 'b', 'c'))
    with pytest.raises(ValueError, match='unknown prompt'): get_prompt('nope')


def test_list_prompts():
    "The registry pattern's list: sorted names, new templates included"
    names = list_prompts()
    assert names == sorted(PROMPTS) and {'qbench', 'qalign', 'qdebias_quality', 'qdebias_similarity'} <= set(names)
    register_prompt(PromptTemplate('test_listed', 'Is it sharp?', answers=('Yes', 'No')), overwrite=True)
    try: assert 'test_listed' in list_prompts()
    finally: PROMPTS.pop('test_listed')


def test_quiet_transformers_restores_settings():
    "One definition (gmc_nb.testing uses it too): silent inside, the user's verbosity and bars back after"
    from transformers.utils import logging as hl
    hl.set_verbosity_info(); hl.enable_progress_bar()
    try:
        with quiet_transformers():
            assert hl.get_verbosity() == hl.ERROR and not hl.is_progress_bar_enabled()
        assert hl.get_verbosity() == hl.INFO and hl.is_progress_bar_enabled()
    finally: hl.set_verbosity_warning()
    import gmc_nb.testing
    assert gmc_nb.testing.quiet_transformers is quiet_transformers


@pytest.mark.parametrize('arch', TINY_ARCHS)
def test_rendered_prompts(lmms, arch):
    proc = lmms[arch].processor
    join = {'llava': '', 'idefics3': ' '}[arch]   # after 'assistant\n' directly, after 'Assistant:' one space
    for name in TEMPLATES:
        p = get_prompt(name)
        s = render_prompt(proc, name)
        tail = join + p.prefix if p.prefix else ''
        assert s.endswith(p.text + ENDINGS[arch] + tail), (name, s)  # generation prompt open, then the prefix
        assert s.count('<image>') == p.n_images
        assert s.index('<image>') < s.index(p.text)            # images first, in order
    assert render_prompt(proc, 'qbench').endswith(ENDINGS[arch] + join + 'The quality of the image is')
    assert render_prompt(proc, 'qdebias_quality').endswith(ENDINGS[arch])   # Q-Debias: no prefix


@pytest.mark.parametrize('arch', TINY_ARCHS)
def test_prefix_logits_are_read_after_the_prefix(lmms, arch):
    "score_requests' qbench logits are the next-token logits of a hand-built '... The quality of the image is' string, at ' good'/' poor'."
    from gmc_nb.qdebias.lmm import first_token_logits
    m, ims = lmms[arch], _images(3, seed=8)
    ph = {'llava': '<|im_start|>user\n<image>Rate the quality of the image.<|im_end|>\n<|im_start|>assistant\n'
                   'The quality of the image is',
          'idefics3': '<|im_start|>User:<image>Rate the quality of the image.<end_of_utterance>\nAssistant: The quality of the image is'}[arch]
    assert render_prompt(m.processor, 'qbench') == ph
    ids = [m.tokenizer.convert_tokens_to_ids(t) for t in ('\u0120good', '\u0120poor')]
    assert answer_token_ids(m.tokenizer, get_prompt('qbench')) == ids
    ref = first_token_logits(m, [ph] * 3, [[im] for im in ims], ids)
    got = score_requests(m, [('qbench', im) for im in ims], batch_size=3)
    np.testing.assert_allclose(got[['logit_good', 'logit_poor']].to_numpy(), ref, atol=1e-5, rtol=0)
    # and they differ from the logits without the prefix (the prefix tokens are really in the sequence)
    bare = first_token_logits(m, [ph[:-len(' The quality of the image is') if arch == 'idefics3' else -len('The quality of the image is')]] * 3,
                              [[im] for im in ims], ids)
    assert np.abs(bare - ref).max() > 1e-3


# ---------------------------------------------------------------- answer tokens
@pytest.mark.parametrize('arch', TINY_ARCHS)
def test_answer_token_lookup(lmms, arch):
    tok = lmms[arch].tokenizer
    for name in TEMPLATES:
        words = get_prompt(name).answer_spellings()   # ' good' after the Q-Bench/Q-Align prefix, 'Good' for Q-Debias
        ids = answer_token_ids(tok, words)
        assert tok.convert_ids_to_tokens(ids) == [w.replace(' ', '\u0120') for w in words]
        assert answer_token_ids(tok, get_prompt(name)) == ids
    assert tok.convert_ids_to_tokens(answer_token_ids(lmms[arch].processor, [' poor'])) == ['Ġpoor']
    with pytest.raises(ValueError) as e: answer_token_ids(tok, ['good', ' Rate', 'superb'])
    msg = str(e.value)
    assert "' Rate' -> ['Ġ', 'Rate'] (2 tokens)" in msg and "single-token variants: 'Rate'" in msg
    assert "'superb'" in msg and 'none' in msg and "'good' ->" not in msg


# ---------------------------------------------------------------- loading
def test_load_errors(tmp_path, tiny_paths, monkeypatch):
    with pytest.raises(FileNotFoundError, match='does not exist'): load_model(tmp_path / 'missing')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no config.json'): load_model(tmp_path / 'empty')
    f = tmp_path / 'file.bin'; f.write_bytes(b'x')
    with pytest.raises(ValueError, match='is a file'): load_model(f)
    from transformers import LlamaConfig
    LlamaConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path / 'txt')
    with pytest.raises(ValueError, match="model_type 'llama'.*not an image-text-to-text"): load_model(tmp_path / 'txt')
    with pytest.raises(ValueError, match='dtype'): load_model(tiny_paths['llava'], dtype='float99')
    with pytest.raises(ValueError, match='device'): load_model(tiny_paths['llava'], device='tpu')
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')  # a hub id is only looked up in the cache: no download
    with pytest.raises(FileNotFoundError, match='HF_HUB_OFFLINE'): load_model('gmc-nb-test/no-such-model-xyz')


def test_load_roundtrip(lmms, tiny_paths):
    for a, m in lmms.items():
        assert type(m.model).__name__.lower().startswith(a)
        assert m.tokenizer.padding_side == 'left' and m.tokenizer.pad_token == '<pad>'
        assert str(m.device) == 'cpu'
    import torch
    m = load_model(tiny_paths['llava'], dtype='bfloat16', attn_implementation='eager')
    assert m.dtype == torch.bfloat16


# ---------------------------------------------------------------- scoring and batching
@pytest.mark.parametrize('arch', TINY_ARCHS)
def test_batch_equals_one_by_one(lmms, arch):
    ims = _images(11, seed=3)
    reqs = ([('qbench', [im]) for im in ims[:5]] + [('qalign', im) for im in ims[5:8]]
            + [('qdebias_quality', ims[8:10]), ('qdebias_similarity', [ims[9], ims[10]])])
    one = score_requests(lmms[arch], reqs, batch_size=1)
    for bs in (3, 16):
        got = score_requests(lmms[arch], reqs, batch_size=bs)
        np.testing.assert_allclose(got.score, one.score, atol=1e-4, rtol=0)
        np.testing.assert_allclose(got.filter(like='logit_').to_numpy(), one.filter(like='logit_').to_numpy(),
                                   atol=1e-3, rtol=0, equal_nan=True)
    assert one.score.between(0, 1).all() and len(one) == len(reqs)
    assert list(one.prompt) == [p for p, _ in reqs]
    # logits are present exactly for each prompt's own answers, and the score is their formula
    q = one[one.prompt == 'qbench']
    assert q[['logit_good', 'logit_poor']].notna().all().all() and q.logit_excellent.isna().all()
    np.testing.assert_allclose(q.score, two_way_softmax(q.logit_good, q.logit_poor), atol=1e-6)
    s = one[one.prompt == 'qdebias_similarity']
    np.testing.assert_allclose(s.score, two_way_softmax(s.logit_Yes, s.logit_No), atol=1e-6)
    t100 = score_requests(lmms[arch], reqs[:5], batch_size=5, temperature=100)
    np.testing.assert_allclose(t100.score, two_way_softmax(q.logit_good, q.logit_poor, 100), atol=1e-6)


def test_score_images_inputs(lmms, tmp_path):
    from PIL import Image
    ims = _images(3, seed=4)
    paths = []
    for i, im in enumerate(ims):
        paths.append(tmp_path / f'{i}.png'); Image.fromarray(im).save(paths[-1])
    a = score_images(lmms['llava'], paths, 'qalign', batch_size=2)
    b = score_images(lmms['llava'], [Image.fromarray(i) for i in ims], 'qalign', batch_size=3)
    np.testing.assert_allclose(a.score, b.score, atol=1e-6)
    assert a.attrs['temperature'] == 1.0 and a.images[0] == str(paths[0])
    with pytest.raises(ValueError, match='takes 2 images'): score_images(lmms['llava'], paths, 'qdebias_quality')
    with pytest.raises(ValueError, match='file not found'): score_images(lmms['llava'], [tmp_path / 'x.png'])
    with pytest.raises(ValueError, match='batch_size'): score_images(lmms['llava'], paths, batch_size=0)
    with pytest.raises(ValueError, match='HxWx3 uint8'): score_images(lmms['llava'], [np.zeros((4, 4))])


# ---------------------------------------------------------------- CLI
def test_cli_score(tiny_paths, tmp_path):
    from PIL import Image
    d = tmp_path / 'imgs'; d.mkdir()
    for i, im in enumerate(_images(3, seed=5)): Image.fromarray(im).save(d / f'im{i}.jpg')
    (d / 'notes.txt').write_text('not an image')
    lst = tmp_path / 'list.txt'; lst.write_text('imgs/im2.jpg\nimgs/im0.jpg\n')
    ap = argparse.ArgumentParser(); register_cli(ap.add_subparsers(dest='cmd'))
    for src, n in ((d, 3), (lst, 2)):
        out = tmp_path / f'out_{n}.csv'
        args = ap.parse_args(['score', '--model', str(tiny_paths['idefics3']), '--images', str(src),
                              '--prompt', 'qbench', '--out', str(out), '--batch-size', '2'])
        args.func(args)
        df = pd.read_csv(out)
        assert len(df) == n and {'prompt', 'images', 'score', 'logit_good', 'logit_poor'} <= set(df.columns)
        assert df.score.between(0, 1).all()
    assert pd.read_csv(tmp_path / 'out_2.csv').images[0].endswith('im2.jpg')
    (tmp_path / 'empty_dir').mkdir()
    with pytest.raises(ValueError, match='no image files'): list_images(tmp_path / 'empty_dir')
    with pytest.raises(ValueError, match='neither a folder'): list_images(tmp_path / 'nothing_here')


# ---------------------------------------------------------------- Q-Bench's published logits
def test_qbench_summary_reproduced(shared_data):
    ref = pd.read_csv(shared_data / 'lmm_logits' / 'summary_srcc_plcc.csv')
    rows = []
    for ds in QBENCH_DATASETS:
        r = qbench_correlations(read_qbench_logits(ds, shared_data), temperatures=(1., 100.))
        rows.append(r.assign(dataset=ds))
    ours = pd.concat(rows).merge(ref, on=['dataset', 'model'], suffixes=('', '_ref'), validate='one_to_one')
    assert len(ours) == len(ref) == 90
    assert (ours.n == ours.n_ref).all()
    # the reference is rounded to 4 decimals; SRCC also differs by rank ties (up to 3e-4 seen)
    for c, tol in (('SRCC_softmax', 5e-4), ('PLCC_T1', 1e-4), ('PLCC_T100', 1e-4)):
        err = (ours[c] - ours[c + '_ref']).abs().reset_index(drop=True)
        assert err.max() <= tol, ours.reset_index(drop=True).loc[err.idxmax(), ['dataset', 'model', c, c + '_ref']].to_dict()


def test_read_qbench_logits_errors(tmp_path):
    with pytest.raises(ValueError, match='dataset'): read_qbench_logits('imagenet', tmp_path)
    with pytest.raises(FileNotFoundError): read_qbench_logits('livec', tmp_path)
    f = tmp_path / 'x.csv'; pd.DataFrame({'img_path': ['a'], 'gt_score': [1.]}).to_csv(f, index=False)
    with pytest.raises(ValueError, match='logit'): read_qbench_logits(f)


# ---------------------------------------------------------------- benchmark script
def test_bench_real_config_constructs():
    "The real-size option of the benchmark builds its config (meta device only, nothing allocated)."
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    r = subprocess.run([sys.executable, str(ROOT / 'bench' / 'bench_lmm.py'), '--config', 'real', '--dry-run'],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'B parameters' in r.stdout and '752 tokens' in r.stdout   # 746 + the 6 tokens of the qbench assistant prefix



# ---------------------------------------------------------------- issue 12: Q-Bench's T, unreadable images, bad model files
def test_qbench_readers_default_to_qbench_T100(tmp_path):
    "qbench_scores / qbench_correlations default to Q-Bench's own T = 100, and the PLCC column names its T."
    rng = np.random.default_rng(7)
    df = pd.DataFrame({'img_path': [f'{i}.jpg' for i in range(50)], 'gt_score': rng.uniform(0, 100, 50),
                       'm__logit_good': rng.normal(15, 3, 50), 'm__logit_poor': rng.normal(15, 3, 50)})
    assert QBENCH_TEMPERATURE == 100.
    np.testing.assert_allclose(qbench_scores(df, 'm'), two_way_softmax(df.m__logit_good, df.m__logit_poor, 100), atol=1e-15)
    r = qbench_correlations(df)
    assert [c for c in r if c.startswith('PLCC')] == ['PLCC_T100'] and r.attrs['temperatures'] == [100.]
    assert list(qbench_correlations(df, temperatures=(1.,)).columns)[-1] == 'PLCC_T1'


def test_qbench_spaq_qwen_default(shared_data):
    "The issue's case: SPAQ / qwen-vl, PLCC 0.669 (Q-Bench's T = 100) by default, not 0.387 (T = 1)."
    from scipy import stats
    df = read_qbench_logits('spaq', shared_data)
    r = qbench_correlations(df, lmms=['qwen-vl'])
    assert r.PLCC_T100.iloc[0] == pytest.approx(0.6690, abs=1e-4)
    assert stats.pearsonr(qbench_scores(df, 'qwen-vl'), df.gt_score)[0] == pytest.approx(0.6690, abs=1e-4)
    assert stats.pearsonr(qbench_scores(df, 'qwen-vl', temperature=1.), df.gt_score)[0] == pytest.approx(0.3871, abs=1e-4)


def test_score_goes_on_past_unreadable_images(lmms, tiny_paths, tmp_path):
    "gmc score records an unreadable image as a row with its error, scores the rest, and names T in the output."
    from PIL import Image
    d = tmp_path / 'imgs'; d.mkdir()
    ims = _images(3, seed=8)
    for i, im in enumerate(ims): Image.fromarray(im).save(d / f'ok{i}.png')
    (d / 'zero.png').write_bytes(b'')
    (d / 'dir.png').mkdir()
    (d / 'text.jpg').write_text('not an image')
    Image.fromarray(ims[0]).save(d / 'cut.jpg', quality=90); (d / 'cut.jpg').write_bytes((d / 'cut.jpg').read_bytes()[:300])
    ap = argparse.ArgumentParser(); register_cli(ap.add_subparsers(dest='cmd'))
    out = tmp_path / 'o.csv'
    args = ap.parse_args(['score', '--model', str(tiny_paths['llava']), '--images', str(d), '--out', str(out), '--batch-size', '2'])
    args.func(args)
    df = pd.read_csv(out, keep_default_na=False)
    assert len(df) == 7
    bad = df[df.error != '']
    assert sorted(Path(p).name for p in bad.images) == ['cut.jpg', 'dir.png', 'text.jpg', 'zero.png']
    assert all(Path(p).name in e for p, e in zip(bad.images, bad.error))
    assert (pd.to_numeric(bad.score, errors='coerce').isna()).all()
    good = df[df.error == '']
    assert len(good) == 3 and (good.temperature == 100.).all()        # --prompt qbench: Q-Bench's T by default
    ref = score_images(lmms['llava'], [d / f'ok{i}.png' for i in range(3)], temperature=100.)
    np.testing.assert_allclose(good.score.astype(float), ref.score, atol=1e-6)
    assert (ref.temperature == 100.).all()
    args = ap.parse_args(['score', '--model', str(tiny_paths['llava']), '--images', str(d), '--out', str(out), '--prompt', 'qalign'])
    args.func(args)
    assert (pd.read_csv(out).temperature == 1.).all()
    with pytest.raises(ValueError, match='zero.png'): score_images(lmms['llava'], [d / 'zero.png'])


def test_cli_score_bad_options_before_loading(tiny_paths, tmp_path):
    ap = argparse.ArgumentParser(); register_cli(ap.add_subparsers(dest='cmd'))
    base = ['score', '--model', str(tmp_path / 'not_a_model'), '--images', str(tmp_path), '--out', str(tmp_path / 'o.csv')]
    for extra, field in ((['--device', 'foo'], 'device'), (['--batch-size', '0'], 'batch_size'),
                         (['--temperature', '0'], 'temperature'), (['--temperature', 'nan'], 'temperature'),
                         (['--prompt', 'qdebias_quality'], 'prompt')):
        a = ap.parse_args(base + extra)
        with pytest.raises(ValueError, match=field): a.func(a)
    assert not (tmp_path / 'o.csv').exists()


def test_load_model_bad_files_are_value_errors(tiny_paths, tmp_path):
    "A truncated safetensors file and an unreadable config.json: ValueError naming the file."
    import shutil
    t = tmp_path / 'trunc'; shutil.copytree(tiny_paths['llava'], t)
    w = t / 'model.safetensors'; w.write_bytes(w.read_bytes()[:w.stat().st_size // 2])
    with pytest.raises(ValueError, match=r'model\.safetensors.*truncated'): load_model(t)
    w.write_bytes(b'\x10')
    with pytest.raises(ValueError, match=r'model\.safetensors'): load_model(t)
    c = tmp_path / 'cfg'; shutil.copytree(tiny_paths['llava'], c)
    (c / 'config.json').write_text('{not json')
    with pytest.raises(ValueError, match=r'config\.json'): load_model(c)
    n = tmp_path / 'noweights'; shutil.copytree(tiny_paths['llava'], n); (n / 'model.safetensors').unlink()
    with pytest.raises(ValueError, match='noweights'): load_model(n)
    with pytest.raises(ValueError, match='device'): load_model(tiny_paths['llava'], device='foo')
