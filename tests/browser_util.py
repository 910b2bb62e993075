"""Helpers for the browser tests: Debian's Chromium driven by Playwright, a local server, the network fenced off.

Playwright comes from PyPI (the dev extras); its own browser download is never used: the browser is the
system `chromium` (`apt-get install chromium`, as .ci/run does). Every request to a host other than the
one under test is aborted and recorded, so a page that reaches outside fails its test instead of
quietly working only online.
"""
import functools, hashlib, http.server, shutil, socket, threading
from contextlib import contextmanager
from urllib.parse import urlparse

import pytest

ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
        '--disable-component-update', '--no-first-run']


def chromium_path() -> str:
    "The system Chromium, or a skip saying how to get it"
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name): return shutil.which(name)
    pytest.skip('chromium not installed (apt-get install chromium); .ci/run installs it')


def sync_playwright():
    "Playwright's sync entry point, or a skip saying how to get it"
    mod = pytest.importorskip('playwright.sync_api',
                              reason='playwright not installed (pip install -e ".[dev]" brings it; no browser download needed)')
    return mod.sync_playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass


@contextmanager
def serve(folder):
    "Serve `folder` on 127.0.0.1 from a thread; yields the base URL ('http://127.0.0.1:PORT')"
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(folder)))
    t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    try: yield f'http://127.0.0.1:{srv.server_address[1]}'
    finally:
        srv.shutdown(); srv.server_close(); t.join(10)


@contextmanager
def browser_context(base_url, viewport=(1280, 1000)):
    """A Playwright browser context on the system Chromium whose requests may reach `base_url`'s host only.

    Yields (context, outside): `outside` is the list of URLs that were aborted because they left the site."""
    exe = chromium_path()
    sp = sync_playwright()
    allowed = urlparse(base_url).netloc
    outside = []

    def fence(route):
        u = urlparse(route.request.url)
        if u.scheme in ('data', 'blob', 'about') or u.netloc == allowed: return route.continue_()
        outside.append(route.request.url); return route.abort()

    with sp() as p:
        b = p.chromium.launch(executable_path=exe, args=ARGS)
        try:
            ctx = b.new_context(viewport={'width': viewport[0], 'height': viewport[1]})
            ctx.route('**/*', fence)
            yield ctx, outside
            ctx.close()
        finally:
            b.close()


# The figure a widget shows: every visible <img> (its src) and inline <svg> outside the controls, hashed.
FIGURE_JS = """root => {
  const vis = e => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
                     return r.width > 20 && r.height > 20 && s.visibility !== 'hidden' && s.display !== 'none' && e.offsetParent !== null; };
  const ctl = '.widget-slider, .widget-dropdown, .widget-button, .widget-toggle-buttons, .jp-InputArea, .sourceCode, nav';
  const out = [];
  root.querySelectorAll('img').forEach(e => { if (vis(e) && !e.closest(ctl)) out.push('img:' + e.currentSrc + e.src); });
  root.querySelectorAll('svg').forEach(e => { if (vis(e) && !e.closest(ctl) && !e.parentElement.closest('svg')) out.push('svg:' + e.outerHTML); });
  root.querySelectorAll('canvas').forEach(e => { if (vis(e) && !e.closest(ctl)) { try { out.push('canvas:' + e.toDataURL()); } catch (err) {} } });
  return out;
}"""

# Slider handles as the ipywidgets 8 front end draws them (noUiSlider), or a plain range input.
SLIDER = '.widget-slider .noUi-handle, .widget-slider [role="slider"], .widget-slider input[type="range"], input[type="range"]'


def slider_selector(within: str = '') -> str:
    "SLIDER, each alternative limited to descendants of `within` (a CSS selector) when given"
    return ', '.join(f'{within} {alt.strip()}'.strip() for alt in SLIDER.split(','))


def figure_signature(root_handle) -> tuple:
    "Short hashes of what `root_handle` displays as figures (see FIGURE_JS)"
    return tuple(hashlib.sha1(s.encode()).hexdigest()[:12] for s in root_handle.evaluate(FIGURE_JS))


def press_and_wait_change(page, slider, root, timeout_s=10.0, presses=1):
    """Focus `slider`, press ArrowRight `presses` times, and wait up to `timeout_s` for the figure under `root`
    to change. Returns (before, after, value_before, value_after)."""
    before = figure_signature(root)
    val = lambda: slider.evaluate("e => e.getAttribute('aria-valuenow') ?? e.value ?? ''")
    v0 = val()
    slider.focus()
    for _ in range(presses): page.keyboard.press('ArrowRight')
    after, step = before, 0.25
    for _ in range(int(timeout_s / step)):
        page.wait_for_timeout(int(step * 1000))
        after = figure_signature(root)
        if after != before: break
    return before, after, v0, val()


CONTROLS_JS = """root => [...new Set([...root.querySelectorAll('.jupyter-widgets')].flatMap(e => [...e.classList])
  .filter(c => c.startsWith('widget-') && !['widget-inline-hbox', 'widget-box'].includes(c)))].sort().join(' ')"""


def controls_drawn(page) -> str:
    "The kinds of widget controls on the page (widget-* classes), for a failure message"
    return page.evaluate(f'() => ({CONTROLS_JS})(document)') or 'none'
