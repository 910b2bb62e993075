"""gmc_nb.prompting / aggregate / debias: aggregation vs hand-computed values, end-to-end runs of tiny random
LLaVA and Idefics3 models over twelve real photographs with a synthetic MOS, corrupt and missing images,
resume after a kill, sharding over several processes with a merge, the CLI and the report."""
import json, math, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gmc_nb.qdebias.aggregate import aggregate, aggregation_weights, score_variants, simulate_rater, srcc_table
from gmc_nb.qdebias.lmm import LMM, load_model
from gmc_nb.qdebias.prompting import logit_columns, prompt_logits
from gmc_nb.qdebias.report import evaluate
from gmc_nb.qdebias.run import load_results, merge_shards, run_debias
from gmc_nb.qdebias.store import RUN_FIELDS, ResultStore, model_fingerprint, shard_files, shard_rows
from gmc_nb.qdebias.table import read_mos_table
from gmc_nb.testing import TINY_ARCHS, sample_dataset, tiny_vlm, tiny_vlm_parts

import gmc_nb.qdebias.run as run_module

ROOT = Path(__file__).resolve().parents[1]
GMC = str(Path(sys.executable).parent / 'gmc')


# ---------------------------------------------------------------- aggregation (no model)
def _sig(d): return 1 / (1 + math.exp(-d))


def test_aggregation_hand_computed():
    pg = [[.9, .6, .3, .2], [.5, .5, .5, .5]]
    py = [[1., .5, .25, 0.], [.2, .2, .2, .2]]
    e = [math.exp(v) for v in py[0]]
    w = [v / sum(e) for v in e]
    assert aggregate(pg, py)[0] == pytest.approx(sum(a * b for a, b in zip(w, pg[0])), abs=1e-12)
    assert aggregate(pg, py, 'normalized')[0] == pytest.approx((.9 * 1 + .6 * .5 + .3 * .25) / 1.75, abs=1e-12)
    assert aggregate(pg, py, 'mean')[0] == pytest.approx(.5, abs=1e-12)
    assert aggregate(pg, None, 'none-semantic')[0] == pytest.approx(.5, abs=1e-12)
    np.testing.assert_allclose(aggregate(pg, py)[1], .5, atol=1e-12)
    # the official weights of probabilities are bounded by e : 1
    wt = aggregation_weights([[1., 0., 0., 0.]])
    assert wt[0, 0] / wt[0, 1] == pytest.approx(math.e)
    with pytest.raises(ValueError, match='p_yes'): aggregate(pg, None, 'official')
    with pytest.raises(ValueError, match='p_good'): aggregate([[np.nan, .1, .1, .1]], py)
    with pytest.raises(ValueError, match='method'): aggregate(pg, py, 'max')


def test_score_variants_from_fixed_logits():
    degs = [('fog', 4), ('saturate', 3)]
    L_ = pd.DataFrame({'fog_4__logit_Good': [1.5], 'fog_4__logit_Poor': [-.5], 'fog_4__logit_Yes': [3.], 'fog_4__logit_No': [1.],
                       'saturate_3__logit_Good': [0.], 'saturate_3__logit_Poor': [1.], 'saturate_3__logit_Yes': [-1.],
                       'saturate_3__logit_No': [1.], 'qbench__logit_good': [20.], 'qbench__logit_poor': [10.]})
    S = score_variants(L_, degs)
    g, y = [_sig(2.), _sig(-1.)], [_sig(2.), _sig(-2.)]
    w = [math.exp(y[0]), math.exp(y[1])]
    assert S.q_official[0] == pytest.approx((w[0] * g[0] + w[1] * g[1]) / sum(w), abs=1e-12)
    assert S.q_normalized[0] == pytest.approx((y[0] * g[0] + y[1] * g[1]) / sum(y), abs=1e-12)
    assert S.q_mean[0] == pytest.approx(sum(g) / 2, abs=1e-12)
    assert S.qbench[0] == pytest.approx(_sig(10 / 100), abs=1e-12)
    assert score_variants(L_, degs, temperature=100).p_good_fog_4[0] == pytest.approx(_sig(.02), abs=1e-12)


def test_simulation_conditioning_helps():
    r = srcc_table(simulate_rater(semantic_sd=1.5, seed=5))
    assert r.conditioned > r.plain + .2


# ---------------------------------------------------------------- data, store, shards (no model)
def test_store_repairs_partial_line(tmp_path):
    st = ResultStore(tmp_path / 'r.jsonl')
    st.append([{'image_id': 'a', 'v': 1.}])
    with open(st.path, 'a') as f: f.write('{"image_id": "b", "v"')
    assert st.done_ids() == {'a'}
    assert st.repair() > 0
    st.append([{'image_id': 'b', 'v': 2.}])
    assert [json.loads(l)['image_id'] for l in st.path.read_text().splitlines()] == ['a', 'b']


def test_read_mos_table_formats(tmp_path):
    (tmp_path / 'q.json').write_text(json.dumps([{'img_path': 'x/a.png', 'gt_score': '3.5'}, {'img_path': 'b.png', 'gt_score': 2}]))
    t = read_mos_table(tmp_path / 'q.json', tmp_path)
    assert t.mos.tolist() == [3.5, 2.] and t.image_id.tolist() == ['x/a.png', 'b.png']
    pd.DataFrame({'image_name': ['a.png'], 'MOS': [1.]}).to_csv(tmp_path / 'm.csv', index=False)
    assert read_mos_table(tmp_path / 'm.csv').mos.tolist() == [1.]
    pd.DataFrame({'foo': ['a.png'], 'MOS': [1.]}).to_csv(tmp_path / 'n.csv', index=False)
    with pytest.raises(ValueError, match='image_col'): read_mos_table(tmp_path / 'n.csv')


def test_shards_partition():
    for n, w in [(12, 3), (5, 4), (1, 2)]:
        assert sorted(np.concatenate([shard_rows(n, r, w) for r in range(w)]).tolist()) == list(range(n))


# ---------------------------------------------------------------- end to end on tiny models
@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp('qdebias')
    img_dir, mos = sample_dataset(d, n=12, size=64, seed=0)
    recs = json.loads(mos.read_text())
    (img_dir / 'corrupt.jpg').write_bytes((img_dir / 'astronaut.png').read_bytes()[:200])   # truncated file
    recs += [{'img_path': 'corrupt.jpg', 'gt_score': 3.}, {'img_path': 'missing.png', 'gt_score': 2.}]
    mos.write_text(json.dumps(recs))
    return d, img_dir, mos


@pytest.fixture(scope='module')
def tiny_paths(tmp_path_factory):
    d = tmp_path_factory.mktemp('tiny')
    return {a: tiny_vlm(a, d / a, seed=2) for a in TINY_ARCHS}


@pytest.mark.parametrize('arch', TINY_ARCHS)
def test_end_to_end(arch, dataset, tiny_paths, tmp_path):
    d, img_dir, mos = dataset
    lmm = load_model(tiny_paths[arch])
    out = tmp_path / 'res.jsonl'
    info = run_debias(lmm, img_dir, mos, out, progress=False, batch_images=5, batch_size=12)
    assert (info['new_ok'], info['new_errors']) == (12, 2)
    res = load_results(out)
    assert len(res) == 14 and res.image_id.is_unique
    errs = res[res.status == 'error'].set_index('image_id').error
    assert set(errs.index) == {'corrupt.jpg', 'missing.png'} and all(errs.str.len() > 0)
    ok = res[res.status == 'ok']
    cols = logit_columns()
    assert np.isfinite(ok[cols].to_numpy(float)).all()
    for c in ['qbench', 'q_official', 'q_normalized', 'q_mean', 'q_none-semantic']:
        assert ok[c].between(0, 1).all()
    # stored scores are those recomputed from the stored logits
    S = score_variants(ok[cols].reset_index(drop=True))
    np.testing.assert_allclose(S.q_official, ok.q_official, atol=1e-12)
    # same numbers again with other batching (seeded per image id)
    out2 = tmp_path / 'res2.jsonl'
    run_debias(lmm, img_dir, mos, out2, progress=False, batch_images=1, batch_size=1, limit=4)
    r2 = load_results(out2).set_index('image_id')
    assert len(r2) == 4
    np.testing.assert_allclose(r2[cols].to_numpy(float), ok.set_index('image_id').loc[r2.index, cols].to_numpy(float), atol=1e-4)
    ev = evaluate(res, n_boot=100)
    assert list(ev.index[:2]) == ['qbench', 'q_official'] and (ev.n == 12).all()


def test_none_semantic_run(dataset, tiny_paths, tmp_path):
    d, img_dir, mos = dataset
    out = tmp_path / 'ns.jsonl'
    run_debias(tiny_paths['llava'], img_dir, mos, out, semantic=False, baseline=False, progress=False, limit=3)
    res = load_results(out)
    assert len(res) == 3 and 'q_official' not in res and 'q_none-semantic' in res and 'fog_4__logit_Yes' not in res


KILL_SCRIPT = r'''
import sys, time
import gmc_nb.qdebias.run as R
orig = R.prompt_logits
def slow(*a, **k):
    time.sleep(0.4)
    return orig(*a, **k)
R.prompt_logits = slow
R.run_debias(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], batch_images=1, progress=False, resume=True)
'''


def test_resume_after_kill(dataset, tiny_paths, tmp_path):
    d, img_dir, mos = dataset
    out = tmp_path / 'killed.jsonl'
    proc = subprocess.Popen([sys.executable, '-c', KILL_SCRIPT, str(tiny_paths['llava']), str(img_dir), str(mos), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        t0 = time.time()
        while time.time() - t0 < 120:
            if out.is_file() and out.read_text().count('\n') >= 4: break
            if proc.poll() is not None: pytest.fail(f'run ended early: {proc.stderr.read().decode()[-2000:]}')
            time.sleep(.05)
        proc.send_signal(signal.SIGKILL); proc.wait(30)
    finally:
        if proc.poll() is None: proc.kill()
    before = ResultStore(out).records()
    n_before = len(before)
    assert 4 <= n_before < 14, n_before
    info = run_debias(tiny_paths['llava'], img_dir, mos, out, resume=True, progress=False)
    assert info['skipped'] == n_before and info['new_ok'] + info['new_errors'] == 14 - n_before
    after = ResultStore(out).records()
    ids = [r['image_id'] for r in after]
    assert len(ids) == len(set(ids)) == 14                        # no duplicate, none lost
    assert after[:n_before] == before                             # finished rows untouched


def test_sharded_processes_and_cli(dataset, tiny_paths, tmp_path, capsys):
    d, img_dir, mos = dataset
    out = tmp_path / 'sh' / 'res.jsonl'
    cmd = [GMC, 'debias', '--model', str(tiny_paths['idefics3']), '--images', str(img_dir), '--mos', str(mos),
           '--out', str(out), '--no-progress', '--batch-images', '3']
    procs = [subprocess.Popen(cmd, env=dict(os.environ, RANK=str(r), WORLD_SIZE='2', LOCAL_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for r in range(2)]
    for p in procs:
        o, e = p.communicate(timeout=300)
        assert p.returncode == 0, e.decode()[-2000:]
    assert [f.name for f in shard_files(out)] == [f'res.rank{r}-of-2.jsonl' for r in range(2)]
    parts = [ResultStore(f).records() for f in shard_files(out)]
    assert sorted(len(p) for p in parts) == [7, 7]
    from gmc_nb.cli import main
    assert main(['debias-merge', str(out)]) is None
    merged = load_results(out, shards=False)
    assert len(merged) == 14 and merged.image_id.is_unique
    # same numbers as one process
    single = tmp_path / 'one.jsonl'
    run_debias(tiny_paths['idefics3'], img_dir, mos, single, progress=False)
    a = merged.set_index('image_id').sort_index(); b = load_results(single).set_index('image_id').sort_index()
    np.testing.assert_allclose(a.q_official.dropna(), b.q_official.dropna(), atol=1e-5)
    # report from the CLI
    rep = tmp_path / 'rep'
    assert main(['debias-report', str(out), '--out', str(rep), '--n-grid', '15', '--n-boot', '100']) is None
    for f in ('report.md', 'correlations.csv', 'gmc_summary.csv', 'surfaces.png', 'errors.csv'):
        assert (rep / f).is_file(), f
    c = pd.read_csv(rep / 'correlations.csv', index_col=0)
    assert {'qbench', 'q_official'} <= set(c.index) and (c.n == 12).all()
    # existing output without --resume: a clean one-line error, exit 2
    with pytest.raises(SystemExit) as ex: main(cmd[1:-3])
    assert ex.value.code == 2 and 'resume' in capsys.readouterr().err


# ---------------------------------------------------------------- issue 12: runs that cannot mix experiments
SLOW_SCRIPT = KILL_SCRIPT.replace('time.sleep(0.4)', 'time.sleep(1.0)')


def _small(dataset, tmp_path, names=('astronaut.png', 'coffee.png', 'corrupt.jpg')):
    "A Q-Bench JSON of a few images of the dataset."
    d, img_dir, mos = dataset
    recs = [r for r in json.loads(mos.read_text()) if r['img_path'] in names]
    p = tmp_path / 'small.json'; p.write_text(json.dumps(recs))
    return img_dir, p


def test_resume_refuses_another_run(dataset, tiny_paths, tmp_path):
    img_dir, mos = _small(dataset, tmp_path)
    out = tmp_path / 'r.jsonl'
    run_debias(tiny_paths['llava'], img_dir, mos, out, progress=False, limit=1)
    meta = json.loads((tmp_path / 'r.jsonl.meta.json').read_text())
    assert set(RUN_FIELDS) <= set(meta) and meta['model_fingerprint'].startswith('folder:')
    run = lambda **kw: run_debias(kw.pop('model', tiny_paths['llava']), img_dir, kw.pop('mos', mos), out, resume=True,
                                    progress=False, **kw)
    with pytest.raises(ValueError, match=r"settings differ from the stored run \(r.jsonl.meta.json\): model_path: stored .*model_fingerprint"):
        run(model=tiny_paths['idefics3'])
    # the same folder with another config: same path, another fingerprint
    import shutil
    other = tmp_path / 'llava_copy'; shutil.copytree(tiny_paths['llava'], other)
    with pytest.raises(ValueError, match='model_path'): run(model=other)
    cfg = json.loads((other / 'config.json').read_text()); cfg['_note'] = 'edited'; (other / 'config.json').write_text(json.dumps(cfg))
    assert model_fingerprint(other) != model_fingerprint(tiny_paths['llava'])
    # an in-memory model of another checkpoint (hash of its config)
    lmm = LMM(*tiny_vlm_parts('idefics3', seed=1), name='mem')
    with pytest.raises(ValueError, match='model_fingerprint: stored'): run(model=lmm)
    # another MOS table with the same images, other settings
    recs = json.loads(mos.read_text()); recs[0]['gt_score'] = 4.999
    mos2 = tmp_path / 'other.json'; mos2.write_text(json.dumps(recs))
    with pytest.raises(ValueError, match='mos_sha256: stored'): run(mos=mos2)
    for kw, field in [(dict(temperature=100.), 'temperature'), (dict(seed=3), 'seed'), (dict(max_side=32), 'max_side'),
                      (dict(semantic=False), 'semantic'), (dict(degradations='fog:4'), 'degradations')]:
        with pytest.raises(ValueError, match=f'{field}: stored'): run(**kw)
    # nothing was appended by the refused resumes
    assert len(ResultStore(out).records()) == 1
    # the same run resumes
    assert run()['new_ok'] + ResultStore(out).done_ids().__len__() >= 3
    # a missing or corrupt meta file is an error naming it
    mp = tmp_path / 'r.jsonl.meta.json'
    mp.write_text('{"seed": 0, ')
    with pytest.raises(ValueError, match=r'r.jsonl.meta.json \(beside r.jsonl\) is corrupt'): run()
    mp.unlink()
    with pytest.raises(ValueError, match='meta file r.jsonl.meta.json is missing'): run()
    mp.write_text(json.dumps({k: v for k, v in meta.items() if k != 'version'}))
    with pytest.raises(ValueError, match=r"lacks \['version'\]"): run()


def test_resume_refuses_another_model_cli(dataset, tiny_paths, tmp_path, capsys):
    from gmc_nb.cli import main
    img_dir, mos = _small(dataset, tmp_path)
    out = tmp_path / 'c.jsonl'
    base = ['debias', '--images', str(img_dir), '--mos', str(mos), '--out', str(out), '--no-progress', '--limit', '1']
    assert main(base + ['--model', str(tiny_paths['llava'])]) is None
    capsys.readouterr()
    with pytest.raises(SystemExit) as ex: main(base + ['--model', str(tiny_paths['idefics3']), '--resume'])
    err = capsys.readouterr().err
    assert ex.value.code == 2 and 'model_fingerprint' in err and len(err.strip().splitlines()) == 1, err
    assert len(ResultStore(out).records()) == 1


@pytest.fixture(scope='module')
def two_shards(dataset, tiny_paths, tmp_path_factory):
    "The 14-image dataset scored in 2 shards (in-process), as a folder to copy."
    d, img_dir, mos = dataset
    src = tmp_path_factory.mktemp('shards') / 'res.jsonl'
    lmm = load_model(tiny_paths['llava'])
    for r in range(2): run_debias(lmm, img_dir, mos, src, rank=r, world_size=2, progress=False, batch_images=7, batch_size=32)
    return src


def _copy_shards(src, dst):
    import shutil
    dst.mkdir()
    for f in src.parent.iterdir():
        if '.rank' in f.name and not f.name.endswith('.lock'): shutil.copy(f, dst / f.name)
    return dst / src.name


def _edit_meta(p, **kw):
    st = ResultStore(p); st.write_meta(dict(st.read_meta(), **kw))


def test_merge_refuses_mismatched_shards(two_shards, tmp_path, capsys):
    from gmc_nb.cli import main
    ok = merge_shards(_copy_shards(two_shards, tmp_path / 'ok'))
    assert len(ok) == 14 and ok.attrs['meta']['world_size'] == 1 and ok.attrs['meta']['incomplete'] == []
    sessions = ok.attrs['meta']['shard_sessions']   # each shard's device, batching and batch check survive the merge
    assert [x['rank'] for x in sessions] == [0, 1] and all(x['batch_size'] == 32 and x['determinism']['within'] for x in sessions)
    for field, value in [('seed', 5), ('temperature', 100.), ('model_fingerprint', 'folder:0'), ('mos_sha256', '0')]:
        out = _copy_shards(two_shards, tmp_path / field)
        _edit_meta(out.with_name('res.rank1-of-2.jsonl'), **{field: value})
        with pytest.raises(ValueError, match=f'merge: settings differ between shards res.rank0-of-2.jsonl and res.rank1-of-2.jsonl: {field}: rank 0'):
            merge_shards(out)
        assert not out.exists()
        with pytest.raises(ValueError, match=f"differ in \\['{field}'\\]"): load_results(out)
    # shards of another world size beside them
    out = _copy_shards(two_shards, tmp_path / 'world')
    (out.with_name('res.rank0-of-3.jsonl')).write_text(out.with_name('res.rank0-of-2.jsonl').read_text())
    with pytest.raises(ValueError, match=r"2 world sizes beside res.jsonl: 2 processes: \['res.rank0-of-2.jsonl', 'res.rank1-of-2.jsonl'\]; 3 processes"):
        merge_shards(out)
    # a meta that does not match its file name, a shard without meta
    out = _copy_shards(two_shards, tmp_path / 'name')
    _edit_meta(out.with_name('res.rank1-of-2.jsonl'), rank=0)
    with pytest.raises(ValueError, match='says rank 0 of 2, its file name 1 of 2'): merge_shards(out)
    out = _copy_shards(two_shards, tmp_path / 'nometa')
    ResultStore(out.with_name('res.rank0-of-2.jsonl')).meta_path.unlink()
    with pytest.raises(ValueError, match='meta file res.rank0-of-2.jsonl.meta.json of shard res.rank0-of-2.jsonl is missing'): merge_shards(out)


def test_merge_reports_missing_images(two_shards, tmp_path, capsys):
    from gmc_nb.cli import main
    out = _copy_shards(two_shards, tmp_path / 'inc')
    p1 = out.with_name('res.rank1-of-2.jsonl'); lines = p1.read_text().splitlines(keepends=True)
    p1.write_text(''.join(lines[:4]))                                    # 3 of rank 1's 7 images lost
    with pytest.raises(ValueError, match=r'merge: 3 of 14 images missing in the shards of res.jsonl: rank 1: 3 of 7 images missing; .*--allow-incomplete'):
        merge_shards(out)
    assert not out.exists()
    with pytest.raises(SystemExit) as ex: main(['debias-merge', str(out)])
    assert ex.value.code == 2 and 'rank 1: 3 of 7 images missing' in capsys.readouterr().err
    assert main(['debias-merge', str(out), '--allow-incomplete']) is None
    cap = capsys.readouterr()
    assert 'rank 1: 3 of 7 images missing' in cap.err and 'merged 11 images' in cap.out
    assert ResultStore(out).read_meta()['incomplete'] == ['rank 1: 3 of 7 images missing']
    # a missing rank file counts all its images
    out = _copy_shards(two_shards, tmp_path / 'norank')
    out.with_name('res.rank0-of-2.jsonl').unlink()
    with pytest.raises(ValueError, match='rank 0: no shard file, 7 of 7 images missing'): merge_shards(out)


BAD_OPTIONS = [(dict(batch_size=0), 'batch_size (--batch-size): must be an int >= 1, got 0'),
               (dict(batch_images=0), 'batch_images (--batch-images)'),
               (dict(temperature=0.), 'temperature (--temperature): must be a finite number > 0, got 0.0'),
               (dict(temperature=float('nan')), 'temperature (--temperature): must be a finite number > 0, got nan'),
               (dict(temperature=float('inf')), 'got inf'), (dict(temperature=-1.), 'got -1.0'),
               (dict(max_side=0), 'max_side (--max-side): must be an int >= 8 or None, got 0'), (dict(max_side=7), 'got 7'),
               (dict(limit=-1), 'limit (--limit): must be an int >= 0 or None, got -1'), (dict(workers=-1), 'workers (--workers)'),
               (dict(degradations='fog:9'), 'degradations'), (dict(degradations='blur'), 'degradations'),
               (dict(device='foo'), 'device'), (dict(rank=3, world_size=2), 'rank'), (dict(seed='x'), 'seed')]


@pytest.mark.parametrize('kw,msg', BAD_OPTIONS, ids=[f'{k}={v}' for kw, _ in BAD_OPTIONS for k, v in kw.items() if k != 'world_size'])
def test_bad_options_write_nothing(kw, msg, dataset, tiny_paths, tmp_path):
    d, img_dir, mos = dataset
    out = tmp_path / 'new' / 'r.jsonl'
    with pytest.raises(ValueError) as e: run_debias(tiny_paths['llava'], img_dir, mos, out, progress=False, **kw)
    assert msg in str(e.value), str(e.value)
    assert not (tmp_path / 'new').exists()                 # no store, no meta, no lock, no folder


def test_bad_options_cli(dataset, tiny_paths, tmp_path, capsys):
    from gmc_nb.cli import main
    d, img_dir, mos = dataset
    out = tmp_path / 'new' / 'r.jsonl'
    base = ['debias', '--model', str(tiny_paths['llava']), '--mos', str(mos), '--out', str(out), '--no-progress']
    for extra, msg in [(['--batch-size', '0'], '--batch-size'), (['--temperature', '0'], '--temperature'), (['--temperature', 'nan'], '--temperature'),
                       (['--max-side', '0'], '--max-side'), (['--limit', '-1'], '--limit'), (['--degradations', 'fog:0'], 'degradations'),
                       (['--device', 'foo'], 'device')]:
        with pytest.raises(SystemExit) as ex: main(base + ['--images', str(img_dir)] + extra)
        err = capsys.readouterr().err
        assert ex.value.code == 2 and msg in err and len(err.strip().splitlines()) == 1, (extra, err)
    with pytest.raises(SystemExit) as ex: main(base + ['--images', str(tmp_path / 'no_such_folder')])
    assert ex.value.code == 2 and 'no such folder' in capsys.readouterr().err
    assert not (tmp_path / 'new').exists()


def test_transient_errors_retried_on_resume(dataset, tiny_paths, tmp_path, monkeypatch):
    img_dir, mos = _small(dataset, tmp_path, ('astronaut.png', 'coffee.png', 'corrupt.jpg', 'missing.png'))
    out = tmp_path / 't.jsonl'
    lmm = load_model(tiny_paths['llava'])
    orig = prompt_logits
    def flaky(lmm, images, ids, *a, **k):
        if 'coffee.png' in ids: raise RuntimeError('CUDA out of memory (simulated)')
        return orig(lmm, images, ids, *a, **k)
    monkeypatch.setattr(run_module, 'prompt_logits', flaky)
    i1 = run_debias(lmm, img_dir, mos, out, progress=False)
    assert (i1['new_ok'], i1['new_errors']) == (1, 3)
    recs = {r['image_id']: r for r in ResultStore(out).records()}
    assert recs['coffee.png']['transient'] is True and 'CUDA out of memory' in recs['coffee.png']['error']
    assert recs['corrupt.jpg']['transient'] is False and recs['missing.png']['transient'] is False
    monkeypatch.setattr(run_module, 'prompt_logits', orig)
    i2 = run_debias(lmm, img_dir, mos, out, resume=True, progress=False)
    assert (i2['new_ok'], i2['new_errors'], i2['skipped'], i2['retried']) == (1, 0, 3, 1)
    res = load_results(out).set_index('image_id')
    assert len(res) == 4 and res.loc['coffee.png', 'status'] == 'ok' and res.loc['corrupt.jpg', 'status'] == 'error'
    assert run_debias(lmm, img_dir, mos, out, resume=True, progress=False)['new_ok'] == 0   # unreadable files stay recorded


def test_ids_resolved_exactly(dataset, tiny_paths, tmp_path, capsys):
    from gmc_nb.cli import main
    d, img_dir, mos = dataset
    (tmp_path / 'q.json').write_text(json.dumps([{'img_path': 'moon.png', 'gt_score': 3}, {'img_path': 'setA/moon.png', 'gt_score': 1}]))
    t = read_mos_table(tmp_path / 'q.json', img_dir)
    assert t.path.tolist() == [str(img_dir / 'moon.png'), str(img_dir / 'setA' / 'moon.png')]
    out = tmp_path / 'r.jsonl'
    run_debias(tiny_paths['llava'], img_dir, tmp_path / 'q.json', out, progress=False)
    res = load_results(out).set_index('image_id')
    assert res.loc['moon.png', 'status'] == 'ok' and res.loc['setA/moon.png', 'status'] == 'error'
    assert "no file 'setA/moon.png' under the image folder" in res.loc['setA/moon.png', 'error']
    # ids leaving the folder: refused unless allowed
    outside = tmp_path / 'outside.png'; outside.write_bytes((img_dir / 'moon.png').read_bytes())
    (tmp_path / 'e.json').write_text(json.dumps([{'img_path': '../outside.png', 'gt_score': 3}, {'img_path': str(outside), 'gt_score': 2},
                                                 {'img_path': 'coins.png', 'gt_score': 1}]))
    sub = tmp_path / 'imgs'; sub.mkdir()
    import shutil; shutil.copy(img_dir / 'coins.png', sub / 'coins.png')
    with pytest.raises(ValueError, match=r"2 ids in e.json leave the image folder: \['../outside.png', '/.*outside.png'\].*allow_outside"):
        read_mos_table(tmp_path / 'e.json', sub)
    cmd = ['debias', '--model', str(tiny_paths['llava']), '--images', str(sub), '--mos', str(tmp_path / 'e.json'),
           '--out', str(tmp_path / 'o.jsonl'), '--no-progress']
    with pytest.raises(SystemExit) as ex: main(cmd)
    assert ex.value.code == 2 and '--allow-outside-images' in capsys.readouterr().err and not (tmp_path / 'o.jsonl').exists()
    assert main(cmd + ['--allow-outside-images']) is None
    assert (load_results(tmp_path / 'o.jsonl').status == 'ok').all()
    # ambiguous columns and duplicate ids
    pd.DataFrame({'image_name': ['a.png'], 'file_name': ['b.png'], 'MOS': [1.]}).to_csv(tmp_path / 'a.csv', index=False)
    with pytest.raises(ValueError, match=r"image_col: 2 image columns match in a.csv: \['image_name', 'file_name'\]"): read_mos_table(tmp_path / 'a.csv')
    pd.DataFrame({'image': ['a.png'], 'mos': [1.], 'gt_score': [2.]}).to_csv(tmp_path / 'b.csv', index=False)
    with pytest.raises(ValueError, match=r"mos_col: 2 MOS columns match in b.csv: \['mos', 'gt_score'\]"): read_mos_table(tmp_path / 'b.csv')
    assert read_mos_table(tmp_path / 'b.csv', mos_col='gt_score').mos.tolist() == [2.]
    pd.DataFrame({'image': ['a.png', 'b.png', 'a.png', 'b.png'], 'mos': [1., 2., 3., 5.]}).to_csv(tmp_path / 'd.csv', index=False)
    with pytest.raises(ValueError, match=r"2 duplicate image ids in d.csv: \['a.png', 'b.png'\]"): read_mos_table(tmp_path / 'd.csv')
    assert read_mos_table(tmp_path / 'd.csv', duplicates='mean').mos.tolist() == [2., 3.5]


def test_second_writer_refused(dataset, tiny_paths, tmp_path):
    img_dir, mos = _small(dataset, tmp_path, ('astronaut.png', 'coffee.png', 'chelsea.png', 'rocket.png', 'camera.png', 'coins.png'))
    out = tmp_path / 'w.jsonl'
    proc = subprocess.Popen([sys.executable, '-c', SLOW_SCRIPT, str(tiny_paths['llava']), str(img_dir), str(mos), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        t0 = time.time()
        while not (out.is_file() and out.read_text().count('\n') >= 1):
            if proc.poll() is not None: pytest.fail(f'run ended early: {proc.stderr.read().decode()[-2000:]}')
            if time.time() - t0 > 120: pytest.fail('the first writer wrote nothing in 120 s')
            time.sleep(.05)
        with pytest.raises(ValueError, match=rf'w.jsonl is being written by another process \(pid {proc.pid} on host '):
            run_debias(tiny_paths['llava'], img_dir, mos, out, resume=True, progress=False)
        with pytest.raises(ValueError, match=f'pid {proc.pid}'):
            run_debias(tiny_paths['llava'], img_dir, mos, out, resume=True, progress=False, rank=0, world_size=1)
        assert proc.wait(120) == 0, proc.stderr.read().decode()[-2000:]
    finally:
        if proc.poll() is None: proc.kill()
    ids = [r['image_id'] for r in ResultStore(out).records()]
    assert len(ids) == len(set(ids)) == 6                          # every image once
    assert run_debias(tiny_paths['llava'], img_dir, mos, out, resume=True, progress=False)['skipped'] == 6   # lock released


def test_prepare_applies_exif_orientation(tiny_paths, tmp_path):
    from PIL import Image
    img = tmp_path / 'img'; img.mkdir()
    a = np.random.default_rng(0).integers(0, 255, (32, 64, 3), dtype=np.uint8)   # 64 wide, 32 high as stored
    ex = Image.Exif(); ex[0x0112] = 6                                               # shown rotated: 32 wide, 64 high
    Image.fromarray(a).save(img / 'rot.jpg', exif=ex)
    (tmp_path / 'm.json').write_text(json.dumps([{'img_path': 'rot.jpg', 'gt_score': 3}]))
    run_debias(tiny_paths['llava'], img, tmp_path / 'm.json', tmp_path / 'r.jsonl', progress=False)
    r = ResultStore(tmp_path / 'r.jsonl').records()[0]
    assert r['status'] == 'ok' and (r['height'], r['width']) == (64, 32), r


def test_debias_module_pyflakes_clean():
    r = subprocess.run([sys.executable, '-m', 'pyflakes', *map(str, Path(run_module.__file__).parent.glob('*.py'))], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout


# ---------------------------------------------------------------- issue 16: the determinism record
def test_determinism_record(dataset, tiny_paths, tmp_path):
    from gmc_nb.qdebias.lmm import answer_token_ids, render_prompt
    from gmc_nb.qdebias.prompts import get_prompt
    import hashlib
    img_dir, mos = _small(dataset, tmp_path)
    lmm = load_model(tiny_paths['llava'])
    out = tmp_path / 'd.jsonl'
    info = run_debias(lmm, img_dir, mos, out, progress=False, batch_images=2, batch_size=5)
    meta = ResultStore(out).read_meta()
    assert (meta['dtype'], meta['device'], meta['batch_size'], meta['batch_images']) == ('float32', 'cpu', 5, 2)
    names = ['qdebias_quality', 'qdebias_similarity', 'qbench']
    assert sorted(meta['prompt_sha256']) == sorted(names)
    for n in names:
        assert meta['prompt_sha256'][n] == hashlib.sha256(render_prompt(lmm.processor, n).encode()).hexdigest()
        p = get_prompt(n)
        spelled = p.answer_spellings() if hasattr(p, 'answer_spellings') else p.answers
        assert meta['answer_token_ids'][n] == dict(zip(p.answers, answer_token_ids(lmm.tokenizer, spelled)))
    det = meta['determinism']
    assert det == info.determinism and det['within'] is True and det['max_abs_dlogit'] <= 1e-4
    assert (det['batch'], det['dtype'], det['device'], det['request']) == (5, 'float32', 'cpu', 'qdebias_quality zoom_blur_3')
    assert det['image_id'] == 'astronaut.png' and det['tolerance'] == pytest.approx(1e-4, abs=1e-5)
    assert 'batch check (float32 on cpu)' in repr(info) and 'within the tolerance' in repr(info)


def test_determinism_in_bfloat16(dataset, tiny_paths, tmp_path):
    img_dir, mos = _small(dataset, tmp_path, names=('astronaut.png',))
    lmm = load_model(tiny_paths['idefics3'], dtype='bfloat16')
    out = tmp_path / 'bf.jsonl'
    run_debias(lmm, img_dir, mos, out, progress=False, batch_size=4)
    meta = ResultStore(out).read_meta()
    det = meta['determinism']
    assert meta['dtype'] == det['dtype'] == 'bfloat16' and det['batch'] == 4
    assert det['tolerance'] >= 1e-4 + 2 * 2 ** -7 and math.isfinite(det['max_abs_dlogit']) and det['within'] is True


def test_determinism_warning(dataset, tiny_paths, tmp_path, monkeypatch, capsys):
    img_dir, mos = _small(dataset, tmp_path)
    orig = run_module.score_requests
    def moved(*a, **k):    # as if a batch of one gave other logits than the batch
        df = orig(*a, **k); df['logit_Good'] += 0.5; return df
    monkeypatch.setattr(run_module, 'score_requests', moved)
    out = tmp_path / 'w.jsonl'
    info = run_debias(tiny_paths['llava'], img_dir, mos, out, progress=False)
    err = capsys.readouterr().err
    assert 'warning: batch check (float32 on cpu)' in err and 'OVER the tolerance' in err and 'w.jsonl.meta.json' in err, err
    det = ResultStore(out).read_meta()['determinism']
    assert det['within'] is False and det['max_abs_dlogit'] == pytest.approx(.5, abs=1e-4)
    assert info['new_ok'] == 2            # the records are written all the same
    # a check that cannot run is recorded and said, the run goes on
    monkeypatch.setattr(run_module, 'score_requests', lambda *a, **k: 1 / 0)
    run_debias(tiny_paths['llava'], img_dir, mos, tmp_path / 'z.jsonl', progress=False)
    assert ResultStore(tmp_path / 'z.jsonl').read_meta()['determinism']['error'].startswith('ZeroDivisionError')
    assert 'warning: batch check failed: ZeroDivisionError' in capsys.readouterr().err


def test_resume_records_session_and_old_meta_still_loads(dataset, tiny_paths, tmp_path):
    img_dir, mos = _small(dataset, tmp_path)
    out = tmp_path / 'r.jsonl'
    run = lambda **kw: run_debias(tiny_paths['llava'], img_dir, mos, out, progress=False, **kw)
    run(limit=1, batch_size=7)
    st = ResultStore(out)
    first = st.read_meta()
    assert first['determinism']['batch'] == 7
    run(resume=True, batch_size=3, limit=1)            # another batch size: recorded, not refused
    m = st.read_meta()
    assert m['determinism'] == first['determinism'] and m['batch_size'] == 7
    assert len(m['resumes']) == 1 and m['resumes'][0]['batch_size'] == 3 and m['resumes'][0]['determinism']['batch'] == 3
    # a meta written before these fields existed still resumes and loads
    new = ('device', 'batch_size', 'batch_images', 'launcher', 'prompt_sha256', 'answer_token_ids', 'determinism', 'resumes')
    st.write_meta({k: v for k, v in m.items() if k not in new})
    info = run(resume=True)
    assert info['skipped'] == 2 and info['new_ok'] + info['new_errors'] == 1
    assert len(load_results(out)) == 3 and len(st.read_meta()['resumes']) == 1
    # a stored prompt rendering that differs (another chat template) is refused by name
    m = st.read_meta(); m['prompt_sha256'] = dict(m['resumes'][0]['prompt_sha256'], qbench='0' * 64); st.write_meta(m)
    with pytest.raises(ValueError, match=r"settings differ from the stored run \(r.jsonl.meta.json\): prompt_sha256: stored"):
        run(resume=True)
