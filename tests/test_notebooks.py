"""Every notebook in nbs/ is a test: executed top to bottom, nbdev's semantics.

Cells flagged with a `tst_flags` flag from settings.ini (`slow`, `cuda`) are skipped unless the flag
is given with `pytest --flags "slow"` (or GMC_TEST_FLAGS). Each notebook runs in its own process,
as `nbdev_test` does, and a failure shows the notebook's name and the failing cell's traceback.
"""
import subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb')
             if not any(part.startswith(('.', '_')) for part in p.relative_to(ROOT / 'nbs').parts))

RUNNER = r'''
import sys, io, contextlib
from pathlib import Path
from nbdev.test import test_nb
fn, skip, force = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()
err = io.StringIO()
with contextlib.redirect_stderr(err):
    ok, secs = test_nb(fn, skip_flags=skip, force_flags=force, showerr=True)
sys.stdout.write(f"{fn.name}: {'ok' if ok else 'FAILED'} in {secs:.1f}s\n")
sys.stderr.write(err.getvalue())
sys.exit(0 if ok else 1)
'''


def _flags():
    from configparser import ConfigParser
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini')
    return cfg['DEFAULT'].get('tst_flags', '')


@pytest.mark.parametrize('nb', NBS, ids=[str(p.relative_to(ROOT / 'nbs')) for p in NBS])
def test_notebook_runs(nb, request):
    force = request.config.getoption('--flags')
    r = subprocess.run([sys.executable, '-c', RUNNER, str(nb), _flags(), force],
                       capture_output=True, text=True, cwd=nb.parent)
    if r.returncode != 0:
        pytest.fail(f'notebook {nb.relative_to(ROOT)} failed:\n{r.stdout}\n{r.stderr[-8000:]}', pytrace=False)


def test_notebooks_found():
    assert any(p.name == 'index.ipynb' for p in NBS), 'nbs/index.ipynb (the landing page) is missing'
    assert len(NBS) >= 2
