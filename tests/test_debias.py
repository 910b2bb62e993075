"""gmc_nb.prompting / aggregate / debias: aggregation vs hand-computed values, end-to-end runs of tiny random
LLaVA and Idefics3 models over twelve real photographs with a synthetic MOS, corrupt and missing images,
resume after a kill, sharding over several processes with a merge, the CLI and the report."""
import json, math, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gmc_nb import aggregate as A, debias as D, prompting as P
from gmc_nb import lmm as L

ROOT = Path(__file__).resolve().parents[1]
GMC = str(Path(sys.executable).parent / 'gmc')


# ---------------------------------------------------------------- aggregation (no model)
def _sig(d): return 1 / (1 + math.exp(-d))


def test_aggregation_hand_computed():
    pg = [[.9, .6, .3, .2], [.5, .5, .5, .5]]
    py = [[1., .5, .25, 0.], [.2, .2, .2, .2]]
    e = [math.exp(v) for v in py[0]]
    w = [v / sum(e) for v in e]
    assert A.aggregate(pg, py)[0] == pytest.approx(sum(a * b for a, b in zip(w, pg[0])), abs=1e-12)
    assert A.aggregate(pg, py, 'normalized')[0] == pytest.approx((.9 * 1 + .6 * .5 + .3 * .25) / 1.75, abs=1e-12)
    assert A.aggregate(pg, py, 'mean')[0] == pytest.approx(.5, abs=1e-12)
    assert A.aggregate(pg, None, 'none-semantic')[0] == pytest.approx(.5, abs=1e-12)
    np.testing.assert_allclose(A.aggregate(pg, py)[1], .5, atol=1e-12)
    # the official weights of probabilities are bounded by e : 1
    wt = A.aggregation_weights([[1., 0., 0., 0.]])
    assert wt[0, 0] / wt[0, 1] == pytest.approx(math.e)
    with pytest.raises(ValueError, match='p_yes'): A.aggregate(pg, None, 'official')
    with pytest.raises(ValueError, match='p_good'): A.aggregate([[np.nan, .1, .1, .1]], py)
    with pytest.raises(ValueError, match='method'): A.aggregate(pg, py, 'max')


def test_score_variants_from_fixed_logits():
    degs = [('fog', 4), ('saturate', 3)]
    L_ = pd.DataFrame({'fog_4__logit_Good': [1.5], 'fog_4__logit_Poor': [-.5], 'fog_4__logit_Yes': [3.], 'fog_4__logit_No': [1.],
                       'saturate_3__logit_Good': [0.], 'saturate_3__logit_Poor': [1.], 'saturate_3__logit_Yes': [-1.],
                       'saturate_3__logit_No': [1.], 'qbench__logit_good': [20.], 'qbench__logit_poor': [10.]})
    S = A.score_variants(L_, degs)
    g, y = [_sig(2.), _sig(-1.)], [_sig(2.), _sig(-2.)]
    w = [math.exp(y[0]), math.exp(y[1])]
    assert S.q_official[0] == pytest.approx((w[0] * g[0] + w[1] * g[1]) / sum(w), abs=1e-12)
    assert S.q_normalized[0] == pytest.approx((y[0] * g[0] + y[1] * g[1]) / sum(y), abs=1e-12)
    assert S.q_mean[0] == pytest.approx(sum(g) / 2, abs=1e-12)
    assert S.qbench[0] == pytest.approx(_sig(10 / 100), abs=1e-12)
    assert A.score_variants(L_, degs, temperature=100).p_good_fog_4[0] == pytest.approx(_sig(.02), abs=1e-12)


def test_simulation_conditioning_helps():
    r = A.srcc_table(A.simulate_rater(semantic_sd=1.5, seed=5))
    assert r.conditioned > r.plain + .2


# ---------------------------------------------------------------- data, store, shards (no model)
def test_store_repairs_partial_line(tmp_path):
    st = D.ResultStore(tmp_path / 'r.jsonl')
    st.append([{'image_id': 'a', 'v': 1.}])
    with open(st.path, 'a') as f: f.write('{"image_id": "b", "v"')
    assert st.done_ids() == {'a'}
    assert st.repair() > 0
    st.append([{'image_id': 'b', 'v': 2.}])
    assert [json.loads(l)['image_id'] for l in st.path.read_text().splitlines()] == ['a', 'b']


def test_read_mos_table_formats(tmp_path):
    (tmp_path / 'q.json').write_text(json.dumps([{'img_path': 'x/a.png', 'gt_score': '3.5'}, {'img_path': 'b.png', 'gt_score': 2}]))
    t = D.read_mos_table(tmp_path / 'q.json', tmp_path)
    assert t.mos.tolist() == [3.5, 2.] and t.image_id.tolist() == ['x/a.png', 'b.png']
    pd.DataFrame({'image_name': ['a.png'], 'MOS': [1.]}).to_csv(tmp_path / 'm.csv', index=False)
    assert D.read_mos_table(tmp_path / 'm.csv').mos.tolist() == [1.]
    pd.DataFrame({'foo': ['a.png'], 'MOS': [1.]}).to_csv(tmp_path / 'n.csv', index=False)
    with pytest.raises(ValueError, match='image_col'): D.read_mos_table(tmp_path / 'n.csv')


def test_shards_partition():
    for n, w in [(12, 3), (5, 4), (1, 2)]:
        assert sorted(np.concatenate([D.shard_rows(n, r, w) for r in range(w)]).tolist()) == list(range(n))


# ---------------------------------------------------------------- end to end on tiny models
@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp('qdebias')
    img_dir, mos = D.sample_dataset(d, n=12, size=64, seed=0)
    recs = json.loads(mos.read_text())
    (img_dir / 'corrupt.jpg').write_bytes((img_dir / 'astronaut.png').read_bytes()[:200])   # truncated file
    recs += [{'img_path': 'corrupt.jpg', 'gt_score': 3.}, {'img_path': 'missing.png', 'gt_score': 2.}]
    mos.write_text(json.dumps(recs))
    return d, img_dir, mos


@pytest.fixture(scope='module')
def tiny_paths(tmp_path_factory):
    d = tmp_path_factory.mktemp('tiny')
    return {a: L.tiny_vlm(a, d / a, seed=2) for a in L.TINY_ARCHS}


@pytest.mark.parametrize('arch', L.TINY_ARCHS)
def test_end_to_end(arch, dataset, tiny_paths, tmp_path):
    d, img_dir, mos = dataset
    lmm = L.load_model(tiny_paths[arch])
    out = tmp_path / 'res.jsonl'
    info = D.run_debias(lmm, img_dir, mos, out, progress=False, batch_images=5, batch_size=12)
    assert (info['new_ok'], info['new_errors']) == (12, 2)
    res = D.load_results(out)
    assert len(res) == 14 and res.image_id.is_unique
    errs = res[res.status == 'error'].set_index('image_id').error
    assert set(errs.index) == {'corrupt.jpg', 'missing.png'} and all(errs.str.len() > 0)
    ok = res[res.status == 'ok']
    cols = P.logit_columns()
    assert np.isfinite(ok[cols].to_numpy(float)).all()
    for c in ['qbench', 'q_official', 'q_normalized', 'q_mean', 'q_none-semantic']:
        assert ok[c].between(0, 1).all()
    # stored scores are those recomputed from the stored logits
    S = A.score_variants(ok[cols].reset_index(drop=True))
    np.testing.assert_allclose(S.q_official, ok.q_official, atol=1e-12)
    # same numbers again with other batching (seeded per image id)
    out2 = tmp_path / 'res2.jsonl'
    D.run_debias(lmm, img_dir, mos, out2, progress=False, batch_images=1, batch_size=1, limit=4)
    r2 = D.load_results(out2).set_index('image_id')
    assert len(r2) == 4
    np.testing.assert_allclose(r2[cols].to_numpy(float), ok.set_index('image_id').loc[r2.index, cols].to_numpy(float), atol=1e-4)
    ev = D.evaluate(res, n_boot=100)
    assert list(ev.index[:2]) == ['qbench', 'q_official'] and (ev.n == 12).all()


def test_none_semantic_run(dataset, tiny_paths, tmp_path):
    d, img_dir, mos = dataset
    out = tmp_path / 'ns.jsonl'
    D.run_debias(tiny_paths['llava'], img_dir, mos, out, semantic=False, baseline=False, progress=False, limit=3)
    res = D.load_results(out)
    assert len(res) == 3 and 'q_official' not in res and 'q_none-semantic' in res and 'fog_4__logit_Yes' not in res


KILL_SCRIPT = r'''
import sys, time
import gmc_nb.debias as D
orig = D.prompt_logits
def slow(*a, **k):
    time.sleep(0.4)
    return orig(*a, **k)
D.prompt_logits = slow
D.run_debias(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], batch_images=1, progress=False, resume=True)
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
    before = D.ResultStore(out).records()
    n_before = len(before)
    assert 4 <= n_before < 14, n_before
    info = D.run_debias(tiny_paths['llava'], img_dir, mos, out, resume=True, progress=False)
    assert info['skipped'] == n_before and info['new_ok'] + info['new_errors'] == 14 - n_before
    after = D.ResultStore(out).records()
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
    assert [f.name for f in D.shard_files(out)] == [f'res.rank{r}-of-2.jsonl' for r in range(2)]
    parts = [D.ResultStore(f).records() for f in D.shard_files(out)]
    assert sorted(len(p) for p in parts) == [7, 7]
    from gmc_nb.cli import main
    assert main(['debias-merge', str(out)]) is None
    merged = D.load_results(out, shards=False)
    assert len(merged) == 14 and merged.image_id.is_unique
    # same numbers as one process
    single = tmp_path / 'one.jsonl'
    D.run_debias(tiny_paths['idefics3'], img_dir, mos, single, progress=False)
    a = merged.set_index('image_id').sort_index(); b = D.load_results(single).set_index('image_id').sort_index()
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
