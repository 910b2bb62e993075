"""Every docs page opened in headless Chromium: no Python traceback, a real body, no missing image.

Needs Debian's `chromium` (.ci/run installs it) and is flagged slow. Screenshots of the index and of
one component page are saved under _docs/_screenshots/ for a person to look at.
"""
import html, re, shutil, subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update']


def _chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name): return shutil.which(name)
    pytest.skip('chromium not installed (apt-get install chromium); .ci/run installs it')


@pytest.fixture(scope='module')
def site():
    import importlib.util
    spec = importlib.util.spec_from_file_location('build_docs', ROOT / 'tools' / 'build_docs.py')
    bd = importlib.util.module_from_spec(spec); spec.loader.exec_module(bd)
    return bd.build(), bd


def _dom(chrome, page):
    r = subprocess.run([chrome, *FLAGS, '--virtual-time-budget=3000', '--dump-dom', page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f'chromium failed on {page}: {r.stderr[-500:]}'
    return r.stdout


@pytest.mark.slow
def test_every_page_renders_in_chromium(site):
    out, bd = site
    chrome = _chromium()
    problems = []
    for nb in bd.pages():
        page = out / nb.relative_to(bd.NBS).with_suffix('.html')
        dom = _dom(chrome, page)
        main = re.search(r'<main.*?</main>', dom, re.S)
        body = html.unescape(re.sub(r'<[^>]+>', ' ', main.group(0) if main else dom))
        if len(body.split()) < 30: problems.append(f'{page.name}: empty body')
        if 'Traceback (most recent call last)' in body or 'cell-output-error' in dom:
            problems.append(f'{page.name}: shows a Python traceback')
        for src in re.findall(r'<img[^>]+src="([^"]+)"', dom):
            if src.startswith('data:'): continue
            u = urlparse(src)
            if u.scheme in ('http', 'https'): continue
            f = Path(unquote(u.path)) if u.scheme == 'file' else (page.parent / unquote(u.path))
            if not f.exists(): problems.append(f'{page.name}: missing image {src}')
    assert not problems, '\n'.join(problems)


@pytest.mark.slow
def test_screenshots_of_index_and_a_component(site):
    out, _ = site
    chrome = _chromium()
    shots = out / '_screenshots'; shots.mkdir(exist_ok=True)
    for name in ('index', '18_surface'):
        png = shots / f'{name}.png'
        subprocess.run([chrome, *FLAGS, f'--screenshot={png}', '--window-size=1200,1600', (out / f'{name}.html').as_uri()],
                       capture_output=True, timeout=120)
        assert png.exists() and png.stat().st_size > 20_000, f'no screenshot of {name}'
