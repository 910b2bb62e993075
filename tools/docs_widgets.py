"""Jupyter widgets in the static docs: vendor the HTML manager and embed each notebook's saved widget state.

`install(site_dir)` runs at the end of the docs build. It installs `@jupyter-widgets/html-manager`
(pinned in tools/widgets/package.json and package-lock.json) from the npm registry with `npm ci`
unless tools/widgets/node_modules already holds it, copies its standalone bundle `dist/embed.js`
(controls, base and output built in: it loads nothing else, so no CDN) with its font files into
`site_dir/site_libs/widgets/`, and for every page whose notebook in nbs/ carries widget state
(`metadata.widgets`) inserts that state as `<script type="application/vnd.jupyter.widget-state+json">`
and replaces each widget output's text repr (smalldocs renders only its `text/plain`) by
`<script type="application/vnd.jupyter.widget-view+json">`, which the manager renders in place.
"""
import html, json, shutil, subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, PKG = ROOT / 'nbs', ROOT / 'tools' / 'widgets'
STATE_MIME, VIEW_MIME = 'application/vnd.jupyter.widget-state+json', 'application/vnd.jupyter.widget-view+json'
DIST = PKG / 'node_modules' / '@jupyter-widgets' / 'html-manager' / 'dist'


def bundle_dir(pkg=PKG) -> Path:
    "The html-manager's dist folder, installed with `npm ci` from the lock file when absent (cached after)"
    dist = pkg / 'node_modules' / '@jupyter-widgets' / 'html-manager' / 'dist'
    if not (dist / 'embed.js').exists():
        r = subprocess.run(['npm', 'ci', '--prefix', str(pkg), '--no-audit', '--no-fund', '--ignore-scripts'],
                           capture_output=True, text=True)
        if r.returncode != 0 or not (dist / 'embed.js').exists():
            raise SystemExit(f'npm ci --prefix {pkg} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}')
    return dist


def vendor(site_dir) -> Path:
    "Copy embed.js and the fonts it refers to into site_libs/widgets/; returns that folder"
    dest = Path(site_dir) / 'site_libs' / 'widgets'
    dest.mkdir(parents=True, exist_ok=True)
    for f in bundle_dir().iterdir():
        if f.name == 'embed.js' or f.suffix in ('.woff', '.woff2', '.ttf', '.eot', '.svg') or f.name.endswith('LICENSE.txt'):
            shutil.copy2(f, dest / f.name)
    return dest


def _src(c):
    return ''.join(c) if isinstance(c, list) else c


def widget_state(nb: dict):
    "The saved widget state of a notebook (the `state` mapping), or None"
    st = nb.get('metadata', {}).get('widgets', {}).get(STATE_MIME, {})
    return st if st.get('state') else None


def widget_views(nb: dict) -> list:
    "(text repr, model_id) of every widget output of a notebook, in order"
    out = []
    for c in nb['cells']:
        for o in c.get('outputs', []):
            d = o.get('data', {})
            if VIEW_MIME in d: out.append((_src(d.get('text/plain', '')), d[VIEW_MIME]['model_id']))
    return out


def _script(mime, obj):
    body = json.dumps(obj).replace('</', '<\\/')
    return f'<script type="{mime}">{body}</script>'


def embed_page(page: str, nb: dict, lib_rel: str) -> str:
    "The page with `nb`'s widget state, the manager's script and a view script in place of each widget repr"
    st = widget_state(nb)
    if st is None: return page
    state = dict(version_major=st.get('version_major', 2), version_minor=st.get('version_minor', 0), state=st['state'])
    for text, mid in widget_views(nb):
        if mid not in st['state']: continue                  # a widget closed before the state was saved
        view = _script(VIEW_MIME, {'version_major': 2, 'version_minor': 0, 'model_id': mid})
        rep = f'<pre><code>{html.escape(text)}</code></pre>'
        page = page.replace(rep, f'<div class="jupyter-widgets-view">{view}</div>', 1)
    head = f'<script src="{lib_rel}/embed.js"></script>\n'
    head += _script(STATE_MIME, state) + '\n'
    return page.replace('</head>', head + '</head>', 1)


def install(site_dir) -> list:
    "Vendor the widgets manager into site_dir and embed widget state in the pages that have it; returns those pages"
    site = Path(site_dir)
    done, vendored = [], False
    for nb_path in sorted(NBS.rglob('*.ipynb')):
        rel = nb_path.relative_to(NBS)
        if any(p.startswith(('.', '_')) for p in rel.parts): continue
        page = site / rel.with_suffix('.html')
        if not page.exists(): continue
        nb = json.loads(nb_path.read_text(encoding='utf-8'))
        if widget_state(nb) is None: continue
        if not vendored: vendor(site); vendored = True
        lib_rel = '/'.join(['..'] * (len(rel.parts) - 1) + ['site_libs', 'widgets'])
        page.write_text(embed_page(page.read_text(encoding='utf-8'), nb, lib_rel), encoding='utf-8')
        done.append(str(rel.with_suffix('.html')))
    return done


if __name__ == '__main__':
    import sys
    print('\n'.join(install(sys.argv[1] if len(sys.argv) > 1 else ROOT / '_docs')))
