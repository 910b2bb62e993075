"""The command line speaks, it does not crash (issue 12, item 20), a DMOS is not read as a MOS (item 17), and (issue 13)
it has one vocabulary, answers --help without the numerical stack, and records what the library used.

Every case runs the `gmc` console script in a subprocess, as a user would. A user error must end with exactly
one stderr line `gmc <cmd>: error: <message naming the input>`, exit status 2 and no traceback; `--debug`
shows the traceback; a bug says so in one line and exits 1."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gmc_nb
from gmc_nb.data import example_scores

PKG_PARENT = str(Path(gmc_nb.__file__).resolve().parents[1])   # the checkout under test


def gmc(*args, cwd=None, timeout=600, code='from gmc_nb.cli import main; main()'):
    "Run `gmc ARGS` (the console script when it is installed next to this Python) and return the CompletedProcess"
    script = Path(sys.executable).with_name('gmc')
    cmd = [str(script)] if script.exists() and code.startswith('from gmc_nb.cli import main; main()') else [sys.executable, '-c', code]
    env = {**os.environ, 'PYTHONPATH': PKG_PARENT + os.pathsep + os.environ.get('PYTHONPATH', ''), 'COLUMNS': '200'}
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def error_line(r, *needles, rc=2) -> str:
    "The one error line of a failed run; checks status, no traceback, one error line, last, naming every needle"
    assert 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert r.returncode == rc, f'exit status {r.returncode} (expected {rc})\nstderr:\n{r.stderr[-3000:]}'
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    errs = [l for l in lines if l.startswith('gmc ') and ': error:' in l or 'internal error' in l]
    assert len(errs) == 1, f'expected exactly one error line, got {errs}\nstderr:\n{r.stderr[-3000:]}'
    assert lines[-1] == errs[0], f'the error line is not the last line of stderr:\n{r.stderr[-3000:]}'
    for n in needles: assert str(n) in errs[0], f'{n!r} not named in {errs[0]!r}'
    return errs[0]


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    "Bad inputs: a truncated JPEG, a zero-byte file, a directory named x.png; and a good table"
    from PIL import Image
    d = tmp_path_factory.mktemp('bad_inputs')
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / 'good.jpg', quality=90)
    data = (d / 'good.jpg').read_bytes()
    (d / 'trunc.jpg').write_bytes(data[:len(data) // 3])
    (d / 'zero.png').write_bytes(b'')
    (d / 'x.png').mkdir()
    ex = example_scores(60)
    ex['ref'] = [f'r{i % 6}' for i in range(len(ex))]
    ex.to_csv(d / 'ex.csv', index=False)
    return d


# ------------------------------------------------------------------ a table argument that is not a table
@pytest.mark.parametrize('cmd', ['points', 'surface'])
@pytest.mark.parametrize('bad', ['trunc.jpg', 'zero.png', 'x.png'])
def test_table_argument_not_a_table(files, tmp_path, cmd, bad):
    extra = ['--pred-col', 'uniform'] + (['--out', tmp_path / 'o'] if cmd == 'surface' else ['--lhs', '3'])
    error_line(gmc(cmd, files / bad, *extra), f'gmc {cmd}: error:', bad)


@pytest.mark.parametrize('bad', ['trunc.jpg', 'zero.png', 'x.png'])
def test_report_table_argument_not_a_table(files, tmp_path, bad):
    error_line(gmc('report', files / bad, '--out', tmp_path / 'r', '--quiet'), 'gmc report: error:', bad)


def test_missing_table(files):
    error_line(gmc('points', files / 'nope.csv', '--pred-col', 'uniform'), 'file not found', 'nope.csv')


# ------------------------------------------------------------------ options
@pytest.mark.parametrize('cmd', ['points', 'surface'])
def test_device_foo(files, tmp_path, cmd):
    extra = ['--out', tmp_path / 'o'] if cmd == 'surface' else ['--lhs', '3']
    error_line(gmc(cmd, files / 'ex.csv', '--pred-col', 'uniform', '--device', 'foo', *extra), "device: 'foo'")
    assert not (tmp_path / 'o').exists()          # refused before any output is written


def test_device_cuda_without_gpu(files):
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has a GPU')
    error_line(gmc('points', files / 'ex.csv', '--pred-col', 'uniform', '--device', 'cuda', '--lhs', '3'), "device: 'cuda'", 'not available')


def test_grid_res_too_large(files, tmp_path):
    "3,000,000² cells would need hundreds of TB: refused from an estimate, before allocating (helper H1's check)"
    error_line(gmc('surface', files / 'ex.csv', '--pred-col', 'uniform', '--grid-res', 3000000, '--out', tmp_path / 's'), '3000000')


@pytest.mark.parametrize('cmd', ['compare', 'report'])
def test_level_outside_0_1(files, tmp_path, cmd):
    extra = ['--models', 'uniform', 'coarse'] if cmd == 'compare' else ['--out', tmp_path / 'r']
    error_line(gmc(cmd, files / 'ex.csv', *extra, '--level', 2, '--B', 20, '--quiet'), 'level', '2')


@pytest.mark.parametrize('cmd', ['compare', 'report'])
def test_groups_unknown_column(files, tmp_path, cmd):
    extra = ['--models', 'uniform', 'coarse'] if cmd == 'compare' else ['--out', tmp_path / 'r']
    error_line(gmc(cmd, files / 'ex.csv', *extra, '--groups', 'zz', '--B', 20, '--quiet'), 'zz')


def test_argparse_errors_stay_argparse(files):
    r = gmc('points', files / 'ex.csv', '--lhs', 'many')
    assert r.returncode == 2 and 'Traceback' not in r.stderr and "invalid int value: 'many'" in r.stderr


# ------------------------------------------------------------------ images: gmc degrade (helper H3's per-image handling)
@pytest.mark.parametrize('bad', ['trunc.jpg', 'zero.png', 'x.png'])
def test_degrade_unreadable_image(files, tmp_path, bad):
    error_line(gmc('degrade', files / bad, '--name', 'gaussian_noise', '--out', tmp_path / 'o.png'), 'gmc degrade: error:', bad)


# ------------------------------------------------------------------ gmc score (helper H3): model and images
@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
    from gmc_nb.testing import tiny_vlm
    return tiny_vlm('llava', tmp_path_factory.mktemp('tiny') / 'llava', seed=1)


def test_score_truncated_safetensors(tiny_model, files, tmp_path):
    m = tmp_path / 'broken_model'; shutil.copytree(tiny_model, m)
    st = sorted(m.glob('*.safetensors'))
    assert st, f'no safetensors file in {list(m.iterdir())}'
    st[0].write_bytes(st[0].read_bytes()[:len(st[0].read_bytes()) // 2])
    imgs = tmp_path / 'imgs'; imgs.mkdir(); shutil.copy(files / 'good.jpg', imgs)
    error_line(gmc('score', '--model', m, '--images', imgs, '--prompt', 'qbench', '--out', tmp_path / 's.csv', '--device', 'cpu'),
               'gmc score: error:', st[0].name)


def test_score_device_foo(tiny_model, files, tmp_path):
    imgs = tmp_path / 'imgs'; imgs.mkdir(); shutil.copy(files / 'good.jpg', imgs)
    error_line(gmc('score', '--model', tiny_model, '--images', imgs, '--out', tmp_path / 's.csv', '--device', 'foo'), "device", 'foo')


def test_score_goes_on_past_unreadable_images(tiny_model, files, tmp_path):
    "One bad image is recorded in its row, the others are scored, and the run ends normally"
    imgs = tmp_path / 'imgs'; imgs.mkdir()
    for f in ('good.jpg', 'trunc.jpg', 'zero.png'): shutil.copy(files / f, imgs)
    out = tmp_path / 's.csv'
    r = gmc('score', '--model', tiny_model, '--images', imgs, '--prompt', 'qbench', '--out', out, '--device', 'cpu')
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    df = pd.read_csv(out)
    assert len(df) == 3, df
    err = df.set_index(df.images.map(lambda p: Path(p).name)).error
    assert pd.isna(err['good.jpg']) or err['good.jpg'] == ''
    assert isinstance(err['trunc.jpg'], str) and err['trunc.jpg'] and isinstance(err['zero.png'], str) and err['zero.png']


# ------------------------------------------------------------------ the contract itself: --debug and bugs
def test_debug_shows_traceback(files):
    for pos in ('before', 'after'):
        args = ['points', files / 'ex.csv', '--pred-col', 'uniform', '--device', 'foo']
        args = ['--debug', *args] if pos == 'before' else [*args, '--debug']
        r = gmc(*args)
        assert r.returncode != 0 and 'Traceback' in r.stderr and "ValueError: device: 'foo'" in r.stderr, (pos, r.stderr[-2000:])


BUG = ("import sys, gmc_nb.commands as c\nfrom gmc_nb.cli import main\n"
       "def boom(a): raise TypeError('unsupported operand')\n"
       "c.cmd_points = boom\n"
       "main()\n")


def test_unexpected_exception_is_a_bug_line(files):
    r = gmc('points', files / 'ex.csv', code=BUG)
    line = error_line(r, 'gmc points: internal error', 'bug', 'TypeError', rc=1)
    assert '--debug' in line
    r = gmc('points', files / 'ex.csv', '--debug', code=BUG)
    assert r.returncode == 1 and 'Traceback' in r.stderr and 'TypeError: unsupported operand' in r.stderr


def test_multiline_message_is_one_line(files):
    code = ("import gmc_nb.commands as c\nfrom gmc_nb.cli import main\n"
            "def bad(a): raise OSError('first line\\nsecond line')\n"
            "c.cmd_points = bad\nmain()\n")
    assert error_line(gmc('points', files / 'ex.csv', code=code), 'first line second line')


def test_pil_errors_are_user_errors(files):
    code = ("import gmc_nb.commands as c\nfrom gmc_nb.cli import main\nfrom PIL import Image\n"
            "def bad(a): raise Image.DecompressionBombError('image big.png: 1000000000 pixels exceeds the limit')\n"
            "c.cmd_points = bad\nmain()\n")
    error_line(gmc('points', files / 'ex.csv', code=code), 'big.png')


# ------------------------------------------------------------------ item 17: DMOS
@pytest.fixture(scope='module')
def dmos_table(tmp_path_factory):
    "The example as a DMOS (lower is better): dmos = 6 - mos"
    d = tmp_path_factory.mktemp('dmos')
    ex = example_scores(150)
    ex.rename(columns={'mos': 'dmos'}).assign(dmos=lambda t: 6 - t.dmos).to_csv(d / 'dmos.csv', index=False)
    ex.to_csv(d / 'mos.csv', index=False)
    return d


@pytest.mark.parametrize('cmd', ['points', 'surface'])
def test_dmos_needs_a_direction(dmos_table, tmp_path, cmd):
    extra = ['--out', tmp_path / 'o'] if cmd == 'surface' else ['--lhs', '3']
    error_line(gmc(cmd, dmos_table / 'dmos.csv', '--pred-col', 'uniform', *extra), "'dmos'", '--lower-better-mos', '--higher-better-mos')


def test_dmos_points_agree_with_mos(dmos_table, tmp_path):
    "With --lower-better-mos a good model's GMC is what it is on the MOS (not -0.8), and the meta records it"
    pts = pd.DataFrame({'Q': [6 - 2.5, 6 - 3.0], 'D': [0.5, 1.0]}); pts.to_csv(tmp_path / 'q_dmos.csv', index=False)
    pd.DataFrame({'Q': [2.5, 3.0], 'D': [0.5, 1.0]}).to_csv(tmp_path / 'q_mos.csv', index=False)
    r = gmc('points', dmos_table / 'dmos.csv', '--pred-col', 'uniform', '--lower-better-mos', '--sample-file', tmp_path / 'q_dmos.csv',
            '--method', 'SRCC', '--regulator', 'none', '--out', tmp_path / 'd.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    r = gmc('points', dmos_table / 'mos.csv', '--pred-col', 'uniform', '--sample-file', tmp_path / 'q_mos.csv',
            '--method', 'SRCC', '--regulator', 'none', '--out', tmp_path / 'm.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    d, m = pd.read_csv(tmp_path / 'd.csv'), pd.read_csv(tmp_path / 'm.csv')
    assert (d.SRCC > 0.5).all(), d
    np.testing.assert_allclose(d.SRCC, m.SRCC, atol=1e-9)
    meta = json.loads((tmp_path / 'd.meta.json').read_text())
    assert meta['mos_direction'] == 'lower' and meta['mos_column'] == 'dmos' and meta['predictions_negated'] == ['uniform']
    assert json.loads((tmp_path / 'm.meta.json').read_text())['mos_direction'] == 'higher'


def test_dmos_surface_records_direction(dmos_table, tmp_path):
    r = gmc('surface', dmos_table / 'dmos.csv', '--pred-col', 'uniform', '--lower-better-mos', '--grid-res', 9,
            '--method', 'SRCC', '--out', tmp_path / 's')
    assert r.returncode == 0, r.stderr[-2000:]
    summ = pd.read_csv(tmp_path / 's' / 'summary.csv')
    assert (summ.mos_direction == 'lower').all() and (summ.GMC > 0.5).all(), summ
    assert 'lower is better' in (tmp_path / 's' / 'summary.md').read_text()
    assert json.loads((tmp_path / 's' / 'meta.json').read_text())['predictions_negated'] == ['uniform']


def test_higher_better_mos_accepts_dmos_named_mos(dmos_table, tmp_path):
    "pyiqa's KADID column is called dmos but is a MOS: --higher-better-mos says so, and nothing is negated"
    r = gmc('points', dmos_table / 'dmos.csv', '--pred-col', 'uniform', '--higher-better-mos', '--lhs', 3, '--method', 'SRCC',
            '--out', tmp_path / 'h.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((tmp_path / 'h.meta.json').read_text())
    assert meta['mos_direction'] == 'higher' and meta['predictions_negated'] == []


# ------------------------------------------------------------------ item 18 (part): separators and duplicate ids
def test_semicolon_table_is_read(tmp_path):
    ex = example_scores(40)[['image', 'mos', 'uniform']]
    ex.to_csv(tmp_path / 'semi.csv', index=False, sep=';', decimal=',')
    ex.to_csv(tmp_path / 'comma.csv', index=False)
    for f in ('semi', 'comma'):
        r = gmc('points', tmp_path / f'{f}.csv', '--pred-col', 'uniform', '--grid', '3x2', '--method', 'SRCC', '--out', tmp_path / f'{f}_out.csv')
        assert r.returncode == 0, r.stderr[-2000:]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / 'semi_out.csv'), pd.read_csv(tmp_path / 'comma_out.csv'))


def test_duplicate_image_ids(tmp_path):
    ex = example_scores(40)
    ex.loc[7, 'image'] = ex.loc[3, 'image']
    ex.to_csv(tmp_path / 'dup.csv', index=False)
    error_line(gmc('points', tmp_path / 'dup.csv', '--pred-col', 'uniform', '--lhs', 3), 'img0003.png', '[3, 7]', '--allow-duplicate-ids')
    r = gmc('points', tmp_path / 'dup.csv', '--pred-col', 'uniform', '--lhs', 3, '--allow-duplicate-ids', '--out', tmp_path / 'o.csv')
    assert r.returncode == 0, r.stderr[-2000:]


# ------------------------------------------------------------------ gmc points --extrapolate (helper H1's option of gmc_points)
def test_points_extrapolate(files, tmp_path):
    pd.DataFrame({'Q': [0.0], 'D': [0.5]}).to_csv(tmp_path / 'outside.csv', index=False)    # MOS is in [1, 5]
    error_line(gmc('points', files / 'ex.csv', '--pred-col', 'uniform', '--sample-file', tmp_path / 'outside.csv'), 'Q')
    r = gmc('points', files / 'ex.csv', '--pred-col', 'uniform', '--sample-file', tmp_path / 'outside.csv', '--extrapolate',
            '--out', tmp_path / 'o.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path / 'o.meta.json').read_text())['extrapolate'] is True


# ------------------------------------------------------------------ issue 13: one resolver, one vocabulary, light help
def test_surface_records_the_regulator_used(files, tmp_path):
    "`--regulator lds` was recorded as `regulator: given` (the CLI computed the weights and passed an array)"
    r = gmc('surface', files / 'ex.csv', '--pred-col', 'uniform', '--regulator', 'lds', '--ks', 7, '--grid', 9,
            '--method', 'SRCC', '--quiet', '--out', tmp_path / 's')
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((tmp_path / 's' / 'meta.json').read_text())
    assert (meta['regulator'], meta['ks'], meta['sigma']) == ('lds', 7, 2.0), meta
    assert (pd.read_csv(tmp_path / 's' / 'summary.csv').regulator == 'lds').all()
    assert 'regulator: lds (ks=7, sigma=2)' in (tmp_path / 's' / 'summary.md').read_text()


def test_std_phi_without_std_records_the_estimate(files, tmp_path):
    "A table without std plus `--std-phi 3` was recorded as `std_source: column` (the CLI's estimate looked like a column)"
    pd.read_csv(files / 'ex.csv').drop(columns='std').to_csv(tmp_path / 'nostd.csv', index=False)
    r = gmc('points', tmp_path / 'nostd.csv', '--pred-col', 'uniform', '--std-phi', 3, '--lhs', 3, '--out', tmp_path / 'p.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((tmp_path / 'p.meta.json').read_text())
    assert meta['std_source'] == 'Beta estimate (phi=3)' and meta['regulator'] == 'gaussian', meta
    r = gmc('points', files / 'ex.csv', '--pred-col', 'uniform', '--lhs', 3, '--out', tmp_path / 'c.csv')
    assert json.loads((tmp_path / 'c.meta.json').read_text())['std_source'] == "column 'std'"
    r = gmc('points', files / 'ex.csv', '--pred-col', 'uniform', '--weights-file', tmp_path / 'w.txt', '--lhs', 3)
    error_line(r, 'w.txt')


def test_same_numbers_as_the_library(files, tmp_path):
    "The command line passes its options to gmc_inputs: the same surface as the library's with the same options"
    from gmc_nb.gmc.inputs import gmc_inputs
    from gmc_nb.gmc.surface import correlation_surface
    r = gmc('surface', files / 'ex.csv', '--pred-col', 'uniform', '--regulator', 'lds', '--sigma', 1.5, '--std-scale', 2,
            '--grid', 7, '--method', 'SRCC', '--device', 'cpu', '--quiet', '--out', tmp_path / 's')
    assert r.returncode == 0, r.stderr[-2000:]
    ex = pd.read_csv(files / 'ex.csv')
    inp = gmc_inputs(ex.mos, ex[['uniform']], std=ex['std'], rho='lds', sigma=1.5, tau=2.)
    want = correlation_surface(inp, n_grid=7, methods=['SRCC']).to_frame()
    got = pd.read_csv(tmp_path / 's' / 'surface.csv')
    np.testing.assert_allclose(got.SRCC, want.SRCC, rtol=0, atol=1e-12)


def test_one_vocabulary_and_hidden_old_spellings():
    "--grid/--boot/--seed/--level/--quiet/--device/--out where the concept exists; old spellings work but are not shown"
    from gmc_nb.cli import build_parser
    p = build_parser(); sub = p._subparsers._group_actions[0].choices
    want = {'points': ['--grid', '--seed', '--quiet', '--device', '--out'], 'surface': ['--grid', '--quiet', '--device', '--out'],
            'example': ['--grid', '--quiet', '--device', '--out'],
            'compare': ['--grid', '--boot', '--surface-boot', '--seed', '--level', '--quiet', '--out'],
            'report': ['--grid', '--boot', '--surface-boot', '--seed', '--level', '--quiet', '--out'],
            'score': ['--quiet', '--device', '--out'], 'debias': ['--seed', '--quiet', '--device', '--out'],
            'debias-report': ['--grid', '--boot', '--seed', '--out'], 'degrade': ['--seed', '--out']}
    for cmd, opts in want.items():
        have = sub[cmd]._option_string_actions
        assert not [o for o in opts if o not in have], (cmd, [o for o in opts if o not in have])
        helps = sub[cmd].format_help()
        for old in ('--grid-res', '--n-grid', '--B ', '--n-boot', '--surface-B', '--no-progress'): assert old not in helps, (cmd, old)
        if '--device' in opts: assert have['--device'].default == 'auto', cmd
    a = p.parse_args(['report', 'x.csv', '--out', 'o', '--B', '7', '--n-grid', '9', '--surface-B', '3'])
    assert (a.boot, a.grid, a.surface_boot) == (7, (9, 9), 3)
    a = p.parse_args(['surface', 'x.csv', '--out', 'o', '--grid-res', '11'])
    assert a.grid == (11, 11)
    assert p.parse_args(['points', 'x.csv', '--grid', '21x11']).grid == (21, 11)
    assert p.parse_args(['debias-report', 'r.jsonl', '--out', 'o', '--n-boot', '5']).boot == 5
    assert p.parse_args(['surface', 'x.csv', '--out', 'o']).grid is None        # None: the library's N_GRID


def test_defaults_agree_with_the_library():
    "The parser spells the library's choices and defaults without importing it: they must agree"
    import inspect
    from gmc_nb import cli
    from gmc_nb.cli import build_parser
    from gmc_nb.gmc.correlation import METHODS
    from gmc_nb.gmc.inputs import RANKS, gmc_inputs
    from gmc_nb.gmc.regulator import REGULATORS
    from gmc_nb.gmc.points import KERNELS
    from gmc_nb.analysis.report import RESAMPLING
    from gmc_nb.commands import square_grid
    from gmc_nb.gmc.surface import N_GRID
    assert (cli.METHODS, cli.RANKS, cli.REGULATORS, cli.KERNELS, cli.RESAMPLING) == (METHODS, RANKS, REGULATORS, KERNELS, RESAMPLING)
    sig = inspect.signature(gmc_inputs).parameters
    a = build_parser().parse_args(['surface', 'x.csv', '--out', 'o'])
    for opt, par in (('regulator', 'rho'), ('std_scale', 'tau'), ('std_floor', 'std_floor'), ('ranks', 'ranks'), ('ks', 'ks'), ('sigma', 'sigma')):
        assert getattr(a, opt) == sig[par].default, (opt, getattr(a, opt), sig[par].default)
    assert square_grid(a.grid) == N_GRID == 41


def test_surface_grid_must_be_square(files, tmp_path):
    error_line(gmc('surface', files / 'ex.csv', '--pred-col', 'uniform', '--grid', '9x3', '--out', tmp_path / 's'), '--grid', '9x3')
    assert gmc('points', files / 'ex.csv', '--grid', '3by2').returncode == 2


def test_points_regular_grid_by_one_number(files, tmp_path):
    r = gmc('points', files / 'ex.csv', '--pred-col', 'uniform', '--grid', 4, '--method', 'SRCC', '--quiet', '--out', tmp_path / 'g.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(pd.read_csv(tmp_path / 'g.csv')) == 16


def test_points_on_a_stored_data_set(shared_data, tmp_path):
    "The same input spec as compare/report: gmc:<dataset> on points"
    r = gmc('points', 'gmc:livec', '--pred-col', 'niqe', '--lhs', 3, '--method', 'SRCC', '--device', 'cpu', '--quiet', '--out', tmp_path / 'p.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((tmp_path / 'p.meta.json').read_text())
    assert meta['table'] == 'gmc:livec' and meta['models'] == ['niqe'] and meta['predictions_negated'] == [], meta   # the authors negated NIQE already
    assert meta['std_source'] == "column 'std'"


@pytest.mark.parametrize('argv', [['--help'], ['points', '--help'], ['surface', '--help'], ['compare', '--help'],
                                  ['debias', '--help'], ['score', '--help']])
def test_help_answers_in_half_a_second(argv):
    "Median of 5 runs of the console script, interpreter start included (was 2.3 s when help imported the library)"
    import statistics, time
    script = Path(sys.executable).with_name('gmc')
    cmd = [str(script)] if script.exists() else [sys.executable, '-c', 'from gmc_nb.cli import main; main()']
    times = []
    for _ in range(5):
        t = time.perf_counter(); r = subprocess.run(cmd + argv, capture_output=True, text=True, timeout=60); times.append(time.perf_counter() - t)
        assert r.returncode == 0 and 'usage: gmc' in r.stdout, r.stderr[-2000:]
    assert statistics.median(times) < 0.5, times


def test_debias_commands_pass_level_interval_and_mos_direction(monkeypatch, tmp_path):
    "`gmc debias-report --level --ci` and `gmc debias --lower-better-mos` reach the library (the shared vocabulary)"
    import gmc_nb.qdebias.report as rep, gmc_nb.qdebias.run as run
    from gmc_nb.cli import main
    seen = {}
    class _Report(dict):
        def __getitem__(self, k): return {'correlations': pd.DataFrame(columns=['n', 'SRCC', 'SRCC_lo', 'SRCC_hi', 'PLCC']), 'files': {'report': 'r.md'}}[k]
    monkeypatch.setattr(rep, 'debias_report', lambda *a, **k: seen.update(report=k) or _Report())
    main(['debias-report', str(tmp_path / 'r.jsonl'), '--out', str(tmp_path / 'o'), '--level', '0.9', '--ci', 'percentile'])
    assert seen['report']['level'] == 0.9 and seen['report']['kind'] == 'percentile', seen
    monkeypatch.setattr(run, 'run_debias', lambda *a, **k: seen.update(run=k) or dict(new_ok=0, new_errors=0, skipped=0, images_per_s=0., store='s'))
    main(['debias', '--model', 'm', '--images', str(tmp_path), '--mos', 'm.csv', '--out', str(tmp_path / 'x.jsonl'),
          '--lower-better-mos', '--device', 'cpu', '--quiet'])
    assert seen['run']['mos_direction'] == 'lower', seen


def test_python_m_runs_the_entry_point(tmp_path):
    "`python -m gmc_nb.cli` is the `gmc` console script (what `accelerate launch -m gmc_nb.cli` needs), errors included"
    r = subprocess.run([sys.executable, '-m', 'gmc_nb.cli', 'points', '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith('usage: gmc points'), r.stderr
    r = subprocess.run([sys.executable, '-m', 'gmc_nb.cli', 'points', str(tmp_path / 'none.csv')], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'none.csv' in r.stderr, r.stderr


def test_device_auto_under_accelerate_cpu(monkeypatch):
    "`accelerate launch --cpu` sets ACCELERATE_USE_CPU: `--device auto` then means the CPU even where CUDA exists"
    import torch
    from gmc_nb import commands
    monkeypatch.setattr(commands, 'check_device', lambda d: 'cuda')
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    monkeypatch.setenv('LOCAL_RANK', '1'); monkeypatch.setenv('RANK', '1'); monkeypatch.setenv('WORLD_SIZE', '2')
    monkeypatch.delenv('ACCELERATE_USE_CPU', raising=False)
    assert commands._device_for('auto') == 'cuda:1'
    monkeypatch.setenv('ACCELERATE_USE_CPU', 'true')
    assert commands._device_for('auto') == 'cpu'
