"""`accelerate launch` as the launcher of a sharded Q-Debias run, on CPU: what `--cpu --num_processes 2` starts and which
shard each process takes (`gmc_nb.qdebias.store.dist_info`), and a two-process `gmc debias` under accelerate whose merged
shards equal one in-process run to 1e-6."""
import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('accelerate', reason='accelerate is not importable: the launcher tests need it (pip install accelerate)')

import gmc_nb.cli
from gmc_nb.qdebias.run import load_results, merge_shards, run_debias
from gmc_nb.qdebias.store import ResultStore, shard_files
from gmc_nb.testing import sample_dataset, tiny_vlm

BIN = Path(sys.executable).parent
# config-free: every choice `accelerate config` would ask for is on the command line
CONFIG_FREE = ['--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no']
PRINT_SHARD = "import json; from gmc_nb.qdebias.store import dist_info; print('SHARD', json.dumps(dist_info()), flush=True)\n"


def _accelerate_launch():
    exe = BIN / 'accelerate'
    return [str(exe), 'launch'] if exe.is_file() else [sys.executable, '-m', 'accelerate.commands.launch']


def _launch(tmp_path, args, timeout=600):
    "Run `accelerate launch <args>` with no launcher variables inherited and no accelerate config file (HF_HOME is empty)."
    env = {k: v for k, v in os.environ.items() if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE')}
    env.update(HF_HOME=str(tmp_path / 'hf_home'), HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false')
    cmd = _accelerate_launch() + args
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f'{cmd}\n--- stdout\n{p.stdout[-3000:]}\n--- stderr\n{p.stderr[-3000:]}'
    return p


def _shards_seen(p):
    return sorted((json.loads(l.split('SHARD ', 1)[1]) for l in p.stdout.splitlines() if l.startswith('SHARD ')), key=lambda d: d['rank'])


@pytest.mark.parametrize('env,want', [
    ({}, (0, 1, 0, 'none')),
    ({'RANK': '3', 'WORLD_SIZE': '4', 'LOCAL_RANK': '1'}, (3, 4, 1, 'RANK/WORLD_SIZE')),                   # torchrun
    ({'PMI_RANK': '1', 'PMI_SIZE': '2'}, (1, 2, 1, 'PMI_RANK/PMI_SIZE')),                                  # Intel MPI / MPICH
    ({'OMPI_COMM_WORLD_RANK': '5', 'OMPI_COMM_WORLD_SIZE': '8', 'OMPI_COMM_WORLD_LOCAL_RANK': '1'},
     (5, 8, 1, 'OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE')),                                               # Open MPI
])
def test_dist_info_from_launcher_variables(env, want, monkeypatch):
    from gmc_nb.qdebias.store import _LOCAL_ENV, _RANK_ENV, _WORLD_ENV, dist_env, dist_info
    for k in _RANK_ENV + _WORLD_ENV + _LOCAL_ENV: monkeypatch.delenv(k, raising=False)
    for k, v in env.items(): monkeypatch.setenv(k, v)
    d = dist_info()
    assert (d['rank'], d['world_size'], d['local_rank'], d['launcher']) == want and dist_env() == want[:3]


def test_dist_info_refuses_bad_variables(monkeypatch):
    from gmc_nb.qdebias.run import RunOptions
    from gmc_nb.qdebias.store import dist_env
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'): monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv('WORLD_SIZE', '2')
    with pytest.raises(ValueError, match='WORLD_SIZE: is 2 but no rank is set'): dist_env()
    monkeypatch.setenv('RANK', 'x')
    with pytest.raises(ValueError, match="RANK: expected an integer, got 'x'"): RunOptions()
    monkeypatch.setenv('RANK', '1')
    assert (RunOptions().rank, RunOptions().world_size, RunOptions().launcher) == (1, 2, 'RANK/WORLD_SIZE')
    assert RunOptions(rank=0, world_size=1).launcher == 'arguments'


def test_cpu_flag_processes_take_their_shards(tmp_path):
    "`--cpu --num_processes 2`: however many processes accelerate starts, they take distinct shards of the right world size."
    script = tmp_path / 'shard.py'; script.write_text(PRINT_SHARD)
    seen = _shards_seen(_launch(tmp_path, ['--num_processes', '2', '--cpu'] + CONFIG_FREE + [str(script)]))
    assert seen and [d['rank'] for d in seen] == list(range(seen[0]['world_size'])), seen
    # accelerate 1.x starts one process for --cpu unless mpirun does the spawning (--mpirun_hostfile): a whole, unsharded run
    if seen[0]['world_size'] == 1: assert seen == [dict(rank=0, world_size=1, local_rank=0, launcher='none')]


def test_multi_process_launch_env(tmp_path):
    "`--multi_gpu --num_processes 2` (torchrun underneath) starts two processes, on a machine without any GPU too: ranks 0 and 1 of 2."
    script = tmp_path / 'shard.py'; script.write_text(PRINT_SHARD)
    p = _launch(tmp_path, ['--multi_gpu', '--num_processes', '2', '--main_process_port', '0'] + CONFIG_FREE + [str(script)])
    seen = _shards_seen(p)
    assert seen == [dict(rank=r, world_size=2, local_rank=r, launcher='RANK/WORLD_SIZE') for r in range(2)], (seen, p.stdout, p.stderr[-3000:])


def test_accelerate_state_wins(tmp_path):
    "An accelerate `PartialState` set up in the process gives the shard, whatever RANK/WORLD_SIZE say; none is created otherwise."
    code = ("import json, os\nfrom accelerate.state import PartialState\nfrom gmc_nb.qdebias.store import dist_info\n"
            "os.environ.update(RANK='1', WORLD_SIZE='2')\nbefore = dist_info()\ndel os.environ['RANK'], os.environ['WORLD_SIZE']\n"
            "PartialState(cpu=True)\nos.environ.update(RANK='1', WORLD_SIZE='2')\n"
            "import torch.distributed as d\nprint(json.dumps([before, dist_info(), d.is_initialized()]))")
    env = {k: v for k, v in os.environ.items() if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    p = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    before, after, initialised = json.loads(p.stdout.strip().splitlines()[-1])
    assert before == dict(rank=1, world_size=2, local_rank=1, launcher='RANK/WORLD_SIZE')
    # the state, created while no launcher variable was set, is a single process: it wins over the RANK/WORLD_SIZE set after
    assert after == dict(rank=0, world_size=1, local_rank=0, launcher='accelerate state') and initialised is False


def _entry():
    "`-m gmc_nb.cli` once the module runs as a script, else the console script (both are what users type)."
    if "__name__ == '__main__'" in Path(gmc_nb.cli.__file__).read_text(): return ['-m', 'gmc_nb.cli']
    return [str(BIN / 'gmc')]


@pytest.mark.slow   # about 60 s on 2 busy cores: two processes each import torch and load the model
def test_accelerate_launch_debias_two_shards_equal_one_process(tmp_path):
    img_dir, mos = sample_dataset(tmp_path / 'data', n=6, size=48, seed=0)
    model = tiny_vlm('llava', tmp_path / 'tiny', seed=2)
    out = tmp_path / 'run' / 'res.jsonl'
    debias = ['debias', '--model', str(model), '--images', str(img_dir), '--mos', str(mos), '--out', str(out), '--device', 'cpu',
              '--quiet', '--batch-images', '2', '--batch-size', '9', '--workers', '0', '--max-side', '48']
    entry = _entry()
    _launch(tmp_path, ['--multi_gpu', '--num_processes', '2', '--main_process_port', '0'] + CONFIG_FREE
                      + (['-m', entry[1]] if entry[0] == '-m' else entry) + debias)
    assert [f.name for f in shard_files(out)] == ['res.rank0-of-2.jsonl', 'res.rank1-of-2.jsonl']
    for r, f in enumerate(shard_files(out)):
        m = ResultStore(f).read_meta()
        assert (m['rank'], m['world_size'], m['launcher'], m['device'], m['batch_size']) == (r, 2, 'RANK/WORLD_SIZE', 'cpu', 9)
        assert len(ResultStore(f).records()) == 3 and m['determinism']['within'] is True
    merged = merge_shards(out).set_index('image_id').sort_index()
    assert [s['rank'] for s in merged.attrs['meta']['shard_sessions']] == [0, 1]
    single = tmp_path / 'one.jsonl'
    run_debias(model, img_dir, mos, single, progress=False, batch_images=2, batch_size=9, workers=0, max_side=48, device='cpu')
    one = load_results(single).set_index('image_id').sort_index()
    assert list(merged.index) == list(one.index) and len(one) == 6 and (one.status == 'ok').all()
    num = [c for c in one.columns if '__logit_' in c or c.startswith(('q_', 'qbench', 'p_good', 'p_yes'))]
    assert len(num) > 20
    np.testing.assert_allclose(merged[num].to_numpy(float), one[num].to_numpy(float), atol=1e-6, rtol=0)
