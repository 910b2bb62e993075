"""The step-through notebooks in a real JupyterLab, as a reader uses them (slow).

Starts `jupyter lab` headless on a temp copy of nbs/, opens 19_explain (GMC one point at a time) and
43_explain (Q-Debias one image at a time) in Chromium through Playwright, runs all cells from the Run
menu, moves a step-through slider with the keyboard (on 43 the live widget's, which recomputes in the kernel), and
checks that the figure changes. The server
it started is always stopped. Requests that would leave 127.0.0.1 are aborted.
"""
import os, re, shutil, signal, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser_util as bu

ROOT = Path(__file__).resolve().parents[1]
TOKEN = 't'
NOTEBOOKS = ('19_explain', '43_explain')
# On 43 the slider moved is the live widget's (its image slider, class `qdebias-live-slider`), which recomputes in the
# kernel, not the precomputed frame explorer's above it, whose frames switch in the browser alone. On 19 the first
# slider is moved (the frame explorer's): step_widget's FloatSliders do not move with ArrowRight in JupyterLab 4.
LIVE_SLIDER = {'43_explain': ', '.join(f'.jp-OutputArea-output .qdebias-live-slider{h}'
                                       for h in (' .noUi-handle', ' [role="slider"]', ' input[type="range"]'))}


def _jupyter():
    exe = Path(sys.executable).with_name('jupyter-lab')
    if exe.exists(): return [str(exe)]
    if shutil.which('jupyter-lab'): return [shutil.which('jupyter-lab')]
    pytest.skip('jupyterlab not installed (pip install -e ".[dev]" brings it)')


@pytest.fixture(scope='module')
def lab():
    "A headless JupyterLab on a temp copy of nbs/; yields its base URL and stops it afterwards"
    bu.chromium_path(); bu.sync_playwright()
    cmd = _jupyter()
    pytest.importorskip('ipywidgets', reason='ipywidgets not installed')
    tmp = Path(tempfile.mkdtemp(prefix='gmc_lab_'))
    nbdir = tmp / 'nbs'
    shutil.copytree(ROOT / 'nbs', nbdir, ignore=shutil.ignore_patterns('_docs', '_proc', '.ipynb_checkpoints'))
    # every cell drawn (no windowing, so each prompt is in the DOM); no news pop-up over the page
    for ext, conf in (('notebook-extension/tracker', '{"windowingMode": "none"}'),
                      ('apputils-extension/notification', '{"fetchNews": "false", "checkForUpdates": false}')):
        f = tmp / 'settings' / '@jupyterlab' / f'{ext}.jupyterlab-settings'
        f.parent.mkdir(parents=True, exist_ok=True); f.write_text(conf)
    port = bu.free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / 'cfg'), JUPYTER_RUNTIME_DIR=str(tmp / 'rt'),
               JUPYTERLAB_SETTINGS_DIR=str(tmp / 'settings'), JUPYTERLAB_WORKSPACES_DIR=str(tmp / 'ws'),
               MPLBACKEND='module://matplotlib_inline.backend_inline')
    log = open(tmp / 'lab.log', 'w')
    proc = subprocess.Popen(cmd + ['--allow-root', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
                                   f'--ServerApp.token={TOKEN}', '--ServerApp.disable_check_xsrf=True',
                                   f'--ServerApp.root_dir={nbdir}', '--ServerApp.port_retries=0',
                                   '--LabApp.news_url=', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate'],
                            cwd=nbdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f'jupyter lab exited ({proc.returncode}):\n{(tmp / "lab.log").read_text()[-2000:]}')
            try:
                with urllib.request.urlopen(f'{base}/api/status?token={TOKEN}', timeout=5) as r:
                    if r.status == 200: break
            except OSError: pass
            if time.time() > deadline: pytest.fail(f'jupyter lab did not answer in 120 s:\n{(tmp / "lab.log").read_text()[-2000:]}')
            time.sleep(1)
        yield base, tmp
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try: proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL); proc.wait(10)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _accept_kernel_dialog(page, wait_ms=8000):
    "JupyterLab may ask which kernel to start (a notebook whose kernelspec it cannot match): take the proposed one"
    try: page.wait_for_selector('.jp-Dialog', timeout=wait_ms)
    except Exception: return
    page.locator('.jp-Dialog .jp-mod-accept').first.click()


def _run_all(page, timeout_ms):
    """Run > Run All Cells from the menu bar, then wait until the kernel is idle with no cell queued or running.

    Returns the prompts, e.g. ['[1]:', '[2]:', '[ ]:'] (a '[ ]' after an error: Run All stops there)."""
    prompts = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.innerText.trim())"
    page.locator('.lm-MenuBar-itemLabel', has_text='Run').first.click()
    page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()
    page.wait_for_function(f"() => ({prompts})().some(t => /\\[(\\*|\\d+)\\]/.test(t))", timeout=60_000, polling=500)
    page.wait_for_function(f"""() => !({prompts})().some(t => t.includes('*')) &&
        document.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]')""", timeout=timeout_ms, polling=1000)
    return page.evaluate(prompts)


@pytest.mark.slow
@pytest.mark.parametrize('name', NOTEBOOKS)
def test_step_through_in_jupyterlab(lab, name):
    base, tmp = lab
    with bu.browser_context(base, viewport=(1400, 1000)) as (ctx, outside):
        page = ctx.new_page()
        page.set_default_timeout(120_000)
        page.goto(f'{base}/lab/tree/{name}.ipynb?token={TOKEN}&reset', wait_until='load', timeout=180_000)
        page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=180_000)
        _accept_kernel_dialog(page)
        page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=180_000)
        try: prompts = _run_all(page, timeout_ms=480_000)
        except Exception:
            page.screenshot(path=str(tmp.parent / f'gmc_lab_{name}_failed.png')); raise
        errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]:has-text("Traceback"), '
                              '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
        assert not errors.count(), f'{name}: a cell failed in JupyterLab:\n' + errors.first.inner_text()[-2000:]
        assert all(re.fullmatch(r'\[\d+\]:', p) for p in prompts), f'{name}: not every cell ran: {prompts}'
        sliders = page.locator(LIVE_SLIDER.get(name, bu.slider_selector('.jp-OutputArea-output')))
        assert sliders.count(), f'{name}: no slider drawn after Run All; widget controls drawn: {bu.controls_drawn(page)}'
        slider = sliders.first
        slider.scroll_into_view_if_needed()
        root = slider.locator('xpath=ancestor::div[contains(@class, "jp-OutputArea-output")][1]').element_handle()
        page.wait_for_timeout(1000)
        before, after, v0, v1 = bu.press_and_wait_change(page, slider.element_handle(), root, timeout_s=90)
        assert before, f'{name}: no figure shown beside the slider in JupyterLab'
        assert v0 != v1, f'{name}: ArrowRight on the focused slider did not move it (value {v0!r})'
        assert before != after, f'{name}: slider moved {v0} -> {v1} but the figure did not change within 90 s'
        shots = ROOT / '_docs' / '_screenshots'
        if shots.parent.exists():
            shots.mkdir(exist_ok=True); page.screenshot(path=str(shots / f'lab_{name}.png'))
        page.close()
