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
            if src.startswith(('data:', 'blob:')): continue   # inline images, and frames the widget manager draws
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


# --- The site as a reader opens it: served over http, the network fenced off, widgets live (issue 14) ---
import json, sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser_util as bu

REPR = re.compile(r'\b(VBox|HBox|interactive)\(')
# Pages whose first slider switches precomputed frames in the browser: GMC one point at a time, Q-Debias one image
# at a time (image x degradation list), and the degradation gallery (distortion x severity).
STEP_PAGES = ('19_explain', '43_explain', '32_degrade', '24_plots')   # step-throughs, the degradation gallery, the explorer
SHOTS_DIR = ROOT / '_docs' / '_screenshots'
VIEW_TAG = 'script[type="application/vnd.jupyter.widget-view+json"]'


def _component(nb: Path) -> bool:
    "A notebook that exports a module with at least one public class, or public function that takes parameters"
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    srcs = [''.join(c['source']) if isinstance(c['source'], list) else c['source'] for c in cells if c['cell_type'] == 'code']
    if not any(re.search(r'^#\|\s*default_exp\b', s, re.M) for s in srcs): return False
    return any(re.search(r'^#\|\s*export\b', s, re.M) and re.search(r'^(class [A-Za-z]|def [A-Za-z]\w*\(\s*[A-Za-z_*])', s, re.M) for s in srcs)


def _wait_widgets(page, timeout_ms=20_000) -> str:
    "Wait for the widgets HTML manager to draw every saved widget view; '' when done (or none), else a problem"
    n = page.locator(VIEW_TAG).count()
    if not n: return ''
    try:
        page.wait_for_function("""n => document.querySelectorAll('.jupyter-widgets, .widget-subarea > *').length >= n""",
                               arg=n, timeout=timeout_ms)
        return ''
    except Exception:
        return f'{n} saved widget view(s) not drawn within {timeout_ms / 1000:.0f} s'


# Text a reader sees outside the source-code blocks (a repr in an output, not `W.VBox(` in the code).
_READER_TEXT = """() => { const m = (document.querySelector('main') || document.body).cloneNode(true);
  m.querySelectorAll('div.sourceCode, pre.sourceCode, .cell-code, script, style').forEach(e => e.remove());
  return m.innerText; }"""

# Indices (in document order) of the docments tables nbdev's show_doc writes: a header row naming Type/Default/Details.
_API_TABLES = """() => [...document.querySelectorAll('table')].map((t, i) => {
  const row = t.querySelector('thead tr') || t.querySelector('tr'); if (!row) return -1;
  const h = [...row.querySelectorAll('th, td')].map(c => c.innerText.trim());
  return ['Type', 'Default', 'Details'].filter(k => h.includes(k)).length >= 2 ? i : -1; }).filter(i => i >= 0)"""


@pytest.fixture(scope='module')
def crawl(site):
    """Every page opened once in Chromium over http with the network fenced: per page, what a reader sees.

    Yields (results, base_url, context, outside); results[name] = dict(repr=..., api_tables=..., widgets=...)."""
    out, bd = site
    with bu.serve(out) as base, bu.browser_context(base) as (ctx, outside):
        results = {}
        page = ctx.new_page()
        for nb in bd.pages():
            rel = nb.relative_to(bd.NBS).with_suffix('.html').as_posix()
            page.goto(f'{base}/{rel}', wait_until='load', timeout=60_000)
            widgets = _wait_widgets(page)
            text = page.evaluate(_READER_TEXT)
            results[rel] = dict(nb=nb, repr=sorted({m.group(0) for m in REPR.finditer(text)}),
                                api_tables=len(page.evaluate(_API_TABLES)), widgets=widgets)
        page.close()
        yield results, base, ctx, outside


@pytest.mark.slow
def test_no_widget_shows_as_its_repr(crawl):
    results = crawl[0]
    bad = [f"{k}: shows {', '.join(r['repr'])}... as text instead of controls" + (f" ({r['widgets']})" if r['widgets'] else '')
           for k, r in results.items() if r['repr'] or r['widgets']]
    assert not bad, '\n'.join(bad)


@pytest.mark.slow
def test_every_component_page_has_a_parameter_table(crawl):
    results = crawl[0]
    comps = {k: r for k, r in results.items() if _component(r['nb'])}
    assert len(comps) >= 20, f'expected the component pages, found {sorted(comps)}'
    bare = sorted(k for k, r in comps.items() if not r['api_tables'])
    assert not bare, (f'{len(bare)}/{len(comps)} component pages have no show_doc parameter table '
                      f"(a <table> whose header names Type/Default/Details): {', '.join(bare)}")


@pytest.mark.slow
def test_no_request_leaves_the_site(crawl):
    outside = crawl[3]
    hosts = sorted({re.sub(r'^(\w+://[^/]+).*', r'\1', u) for u in outside})
    assert not outside, f'{len(outside)} request(s) left the site, to {hosts}: e.g. {outside[:5]}'


def _step_through(ctx, base, name, shots=None):
    "Open a step-through page, move its first slider with the keyboard; what it showed before and after"
    page = ctx.new_page()
    try:
        page.goto(f'{base}/{name}.html', wait_until='load', timeout=60_000)
        problem = _wait_widgets(page)
        sliders = page.locator(bu.SLIDER)
        assert sliders.count(), f'{name}.html: no slider on the page' + (f' ({problem})' if problem else f'; widget controls drawn: {bu.controls_drawn(page)}')
        slider = sliders.first
        root = slider.locator('xpath=ancestor::div[contains(@class, "cell-output")][1]')
        root = root.element_handle() if root.count() else page.locator('main').element_handle()
        slider.scroll_into_view_if_needed()
        root.evaluate("e => e.scrollIntoView({block: 'start'})")
        if shots: page.screenshot(path=str(shots[0]))
        before, after, v0, v1 = bu.press_and_wait_change(page, slider.element_handle(), root)
        if shots: page.screenshot(path=str(shots[1]))
        more = None
        if before == after:          # diagnose: does the figure follow at all, after more presses?
            more = bu.press_and_wait_change(page, slider.element_handle(), root, presses=4)
        return before, after, v0, v1, more
    finally:
        page.close()


@pytest.mark.slow
@pytest.mark.parametrize('name', STEP_PAGES)
def test_step_through_slider_changes_the_figure(crawl, name):
    _, base, ctx, _ = crawl
    shots = None
    if name == '19_explain':
        SHOTS_DIR.mkdir(parents=True, exist_ok=True)
        shots = (SHOTS_DIR / 'gmc_step_before.png', SHOTS_DIR / 'gmc_step_after.png')
    before, after, v0, v1, more = _step_through(ctx, base, name, shots)
    assert before, f'{name}.html: no figure shown beside the slider'
    assert v0 != v1, f'{name}.html: ArrowRight on the focused slider did not move it (value {v0!r})'
    assert before != after, (f'{name}.html: slider moved {v0} -> {v1} with ArrowRight but the figure did not change'
                             + (' (nor after 4 more presses)' if more and more[0] == more[1] else
                                ' (it did after 4 more presses: one key press must step one frame)' if more else ''))


@pytest.mark.slow
def test_screenshot_of_an_api_table(crawl):
    results, base, ctx, _ = crawl
    with_table = [k for k, r in results.items() if r['api_tables'] and _component(r['nb'])]
    assert with_table, 'no component page has a parameter table to photograph'
    name = '19_explain.html' if '19_explain.html' in with_table else with_table[0]
    page = ctx.new_page()
    try:
        page.goto(f'{base}/{name}', wait_until='load', timeout=60_000)
        idx = page.evaluate(_API_TABLES)
        table = page.locator('table').nth(idx[0])
        box = table.locator('xpath=ancestor::div[contains(@class, "cell-output")][1]')
        SHOTS_DIR.mkdir(parents=True, exist_ok=True)
        png = SHOTS_DIR / 'api_table.png'
        (box if box.count() else table).screenshot(path=str(png))
        assert png.stat().st_size > 5_000, f'api_table.png of {name} looks empty'
    finally:
        page.close()
