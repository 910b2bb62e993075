"""The picture of the house (nbs/99_house.ipynb) stays true: wings import downwards only, the runtime never
imports the testing module or a dev-only package, no module outgrows one subject, every public parameter is
documented, and `gmc --help` answers without importing the numerical stack."""
import ast, importlib.util, subprocess, sys
from pathlib import Path

import pytest

import gmc_nb

PKG = Path(gmc_nb.__file__).resolve().parent
ROOT = PKG.parent
SOURCES = sorted(p for p in PKG.rglob('*.py') if p.name not in ('_modidx.py', '__init__.py'))
DEV_ONLY = ('skimage', 'hypothesis', 'imagecorruptions', 'pytest', 'nbdev', 'execnb', 'playwright')
# what each floor may import from gmc_nb (a module always may import its own wing)
MAY_IMPORT = {'data': set(), 'images': {'data'}, 'gmc': {'data', 'images'},
              'analysis': {'data', 'images', 'gmc'}, 'qdebias': {'data', 'images', 'gmc', 'analysis'},
              'cli': {'data', 'images', 'gmc', 'analysis', 'qdebias', 'commands'},
              'commands': {'data', 'images', 'gmc', 'analysis', 'qdebias', 'cli'},
              'testing': {'data', 'images', 'gmc', 'analysis', 'qdebias'}}


def _place(p: Path) -> str:
    "The wing or top-level module a source file belongs to (`commands_beyond.py` is on the floor of `commands`, `cli_beyond.py` on that of `cli`)"
    f = p.relative_to(PKG).parts[0].removesuffix('.py')
    return 'commands' if f.startswith('commands') else 'cli' if f.startswith('cli') else f


def _imports(p: Path):
    "(absolute module name, line) of every import in file `p`, lazy ones inside functions included"
    pkg = '.'.join(('gmc_nb',) + p.relative_to(PKG).parent.parts)
    for n in ast.walk(ast.parse(p.read_text(encoding='utf-8'))):
        if isinstance(n, ast.Import):
            for a in n.names: yield a.name, n.lineno
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = pkg.split('.')[:len(pkg.split('.')) - n.level + 1]
                mod = '.'.join(base + ([n.module] if n.module else []))
            else: mod = n.module or ''
            yield mod, n.lineno
            if mod == 'gmc_nb' or (n.level and not n.module):
                for a in n.names: yield f'{mod}.{a.name}', n.lineno


@pytest.mark.parametrize('p', SOURCES, ids=[str(p.relative_to(PKG)) for p in SOURCES])
def test_imports_point_down(p):
    "A module imports its own wing and the floors below it, never a floor above, never `gmc_nb.testing`"
    me = _place(p); bad = []
    for mod, line in _imports(p):
        top = mod.split('.')[0]
        if top in DEV_ONLY and me != 'testing': bad.append(f'line {line}: {mod} is a dev-only package')
        if top != 'gmc_nb' or mod in ('gmc_nb', 'gmc_nb.__version__'): continue
        other = mod.split('.')[1]
        other = 'commands' if other.startswith('commands') else 'cli' if other.startswith('cli') else other
        if other != me and other not in MAY_IMPORT[me]: bad.append(f'line {line}: {me} imports {mod}')
    assert not bad, f'{p.relative_to(ROOT)}:\n' + '\n'.join(bad)


@pytest.mark.parametrize('p', SOURCES, ids=[str(p.relative_to(PKG)) for p in SOURCES])
def test_module_is_one_thing(p):
    "No module over 400 lines: a longer one is several things and is split"
    n = len(p.read_text(encoding='utf-8').splitlines())
    assert n <= 400, f'{p.relative_to(ROOT)} has {n} lines'


def test_every_public_parameter_has_a_docment():
    spec = importlib.util.spec_from_file_location('check_docments', ROOT / 'tools' / 'check_docments.py')
    cd = importlib.util.module_from_spec(spec); spec.loader.exec_module(cd)
    gaps = [f'{m}: {qn}({par})' for m in cd.modules() for qn, par in cd.missing(m)]
    assert not gaps, f'{len(gaps)} public parameters without a docment:\n' + '\n'.join(gaps)


def test_wings_are_subpackages():
    "`ls gmc_nb/` shows the architecture"
    for wing in ('gmc', 'analysis', 'qdebias'): assert (PKG / wing / '__init__.py').exists(), wing
    assert not [p.name for p in PKG.glob('*.py') if p.stem not in ('__init__', '_modidx', 'data', 'images', 'testing', 'cli', 'cli_beyond', 'commands', 'commands_beyond')]


@pytest.mark.parametrize('argv', [['--help'], ['points', '--help'], ['debias', '--help'], ['score', '--help']])
def test_help_is_fast_and_light(argv):
    "`gmc --help` imports neither numpy nor torch, and answers in well under a second"
    code = ("import sys, time; t = time.perf_counter()\nfrom gmc_nb.cli import main\n"
            f"try: main({argv!r})\nexcept SystemExit: pass\n"
            "heavy = sorted(m for m in ('numpy', 'torch', 'pandas', 'scipy', 'matplotlib', 'transformers') if m in sys.modules)\n"
            "print('HEAVY', heavy); print('SECONDS', time.perf_counter() - t)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert 'HEAVY []' in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
