"""The C kernel's cache never loads a shared object another user could have written (issue 12, item 1).

Every case runs in a fresh interpreter (the kernel is loaded once per process), with `GMC_NB_CACHE`
(or HOME) pointing at a folder of the test's own."""
import os, shutil, stat, subprocess, sys
from pathlib import Path

import pytest

CC = os.environ.get('CC') or shutil.which('cc') or shutil.which('gcc') or shutil.which('clang')
pytestmark = pytest.mark.skipif(CC is None, reason='no C compiler on this machine: the cache is never used')

_CHILD = """
import os, sys, warnings
umask = os.environ.get('GMC_TEST_UMASK')
if umask: os.umask(int(umask, 8))
warnings.simplefilter('always')
import numpy as np
from gmc_nb.gmc.correlation import gmc_point
from gmc_nb.gmc.engine_c import _cache_dir, c_kernel, c_kernel_status
from gmc_nb.gmc.inputs import gmc_inputs
from gmc_nb.gmc.points import gmc_points
from gmc_nb.data import example_scores
print('STATUS', c_kernel_status())
print('DIR', _cache_dir())
st = os.lstat(_cache_dir()); print('DIRMODE', oct(st.st_mode & 0o777), st.st_uid == os.geteuid())
if c_kernel() is not None:                    # the loaded kernel is the real one: it computes GMC
    ex = example_scores(40)
    inp = gmc_inputs(ex.mos, ex.uniform, std=ex['std'])
    a = gmc_points(inp, Q=[2.5], D=[0.5], kernel='c').SRCC[0]
    b = gmc_point(inp, 2.5, 0.5, 0, 'SRCC')
    print('AGREES', abs(a - b) < 1e-11)
"""


def _run(env_extra, drop=()):
    env = dict(os.environ, **env_extra)
    env.pop('GMC_NB_KERNEL', None)
    for k in drop: env.pop(k, None)
    r = subprocess.run([sys.executable, '-c', _CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = dict(l.split(' ', 1) for l in r.stdout.splitlines() if ' ' in l)
    return out, r.stderr


def _name(tmp_path):
    "The kernel's file name on this machine (a hash of source, compiler, flags, CPU)"
    out, _ = _run({'GMC_NB_CACHE': str(tmp_path / 'probe')})
    (so,) = (tmp_path / 'probe').glob('gmc_kernel_*.so')
    return so.name


def _mode(p): return stat.S_IMODE(os.lstat(p).st_mode)


def test_world_writable_folder_is_not_used(tmp_path):
    name = _name(tmp_path)
    shared = tmp_path / 'shared'; shared.mkdir(); os.chmod(shared, 0o777)
    planted = shared / name; planted.write_bytes(b'\x7fELF planted by someone else')
    out, err = _run({'GMC_NB_CACHE': str(shared)})
    assert out['STATUS'].startswith('compiled: '), out
    used = Path(out['STATUS'].split(': ', 1)[1].split(' (')[0]).parent
    assert used != shared and out['DIRMODE'] == '0o700 True', out
    assert 'not usable' in err and 'writable by group or others' in err
    assert planted.read_bytes() == b'\x7fELF planted by someone else'     # neither loaded nor replaced
    assert out['AGREES'] == 'True'


def _missing_symbol_so(tmp_path):
    src = tmp_path / 'other.c'; src.write_text('int not_the_kernel(void) { return 42; }\n')
    so = tmp_path / 'other.so'
    subprocess.run([CC, '-shared', '-fPIC', str(src), '-o', str(so)], check=True, capture_output=True)
    return so.read_bytes()


@pytest.mark.parametrize('case', ['group_writable', 'other_writable', 'empty', 'garbage', 'missing_symbol'])
def test_bad_cached_file_is_rebuilt_not_loaded(tmp_path, case):
    name = _name(tmp_path)
    cache = tmp_path / 'cache'
    out, _ = _run({'GMC_NB_CACHE': str(cache)})                  # a good build first
    so = cache / name
    good = so.read_bytes()
    content, mode = {'group_writable': (good, 0o770), 'other_writable': (good, 0o706), 'empty': (b'', 0o700),
                     'garbage': (b'not a shared object at all', 0o700),
                     'missing_symbol': (_missing_symbol_so(tmp_path), 0o700)}[case]
    so.unlink(); so.write_bytes(content); os.chmod(so, mode)
    ino = os.lstat(so).st_ino
    out, err = _run({'GMC_NB_CACHE': str(cache)})
    assert out['STATUS'].startswith(f'compiled: {so} (rebuilt'), out
    assert os.lstat(so).st_ino != ino, 'the planted file was kept'
    assert _mode(so) & 0o022 == 0 and so.stat().st_size > 0
    assert out['AGREES'] == 'True'
    assert not [p for p in cache.iterdir() if p.name != name], 'a temp file was left behind'
    out, _ = _run({'GMC_NB_CACHE': str(cache)})                  # and the rebuilt entry is used as it is
    assert out['STATUS'] == f'compiled: {so}', out


def test_umask_002_gives_private_folder_and_file(tmp_path):
    name = _name(tmp_path)
    cache = tmp_path / 'a' / 'b' / 'gmc_nb'
    out, _ = _run({'GMC_NB_CACHE': str(cache), 'GMC_TEST_UMASK': '002'})
    assert out['STATUS'] == f"compiled: {cache / name}", out
    assert _mode(cache) == 0o700
    so = cache / name
    assert _mode(so) & 0o022 == 0, oct(_mode(so))


def test_unwritable_home_cache_uses_private_temp_folder(tmp_path):
    blocker = tmp_path / 'home_is_a_file'; blocker.write_text('x')     # works as root too: no folder under a file
    tmpdir = tmp_path / 'tmp'; tmpdir.mkdir(); os.chmod(tmpdir, 0o777)
    out, err = _run({'HOME': str(blocker / 'home'), 'TMPDIR': str(tmpdir)}, drop=('GMC_NB_CACHE', 'XDG_CACHE_HOME'))
    used = Path(out['DIR'])
    assert used.parent == tmpdir and out['DIRMODE'] == '0o700 True', out              # a fresh folder, not the shared temp dir
    assert out['STATUS'].startswith(f'compiled: {used}'), out
    assert 'not usable' in err
    assert out['AGREES'] == 'True'
    assert not used.exists(), 'the private temp folder is removed when the process ends'
