"""The offline docs site builds, and every page carries its notebook's title; README is generated.

The site is built once for this module (`make docs` runs the same `tools/build_docs.py`): component pages carry
nbdev's `show_doc` with a docments table per exported symbol, the site asks nothing outside itself, and
DataFrames, code blocks and search results are styled to be read."""
import importlib, importlib.util, inspect, json, re, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def site():
    "The site, built once per test session (tests/test_links.py shares it)"
    sys.path.insert(0, str(ROOT / 'tests'))
    try: from test_links import built_site
    finally: sys.path.pop(0)
    return built_site(), _load('build_docs')


def test_docs_build_has_every_page_with_its_title(site):
    out, bd = site
    assert (out / 'index.html').exists()
    names = {p.stem for p in bd.pages()}
    for comp in ('00_data', '10_std', '11_regulator', '12_modulator', '14_correlation', '18_surface', '50_cli'):
        assert comp in names, f'component notebook {comp} missing from nbs/'
    assert bd.check(out) == []
    assert 'gmc_nb' in (out / 'index.html').read_text(encoding='utf-8')


def test_readme_is_generated_from_index():
    mr = _load('make_readme')
    assert (ROOT / 'README.md').read_text(encoding='utf-8') == mr.render(), 'README.md is out of date: run make readme'
    text = mr.render()
    for cmd in ('make example', 'make test'):
        assert cmd in text, f'README must name the command {cmd!r}'


def _default_exp(nb: Path):
    for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        m = c['cell_type'] == 'code' and re.search(r'^#\|\s*default_exp\s+([\w.]+)\s*$', src, re.M)
        if m: return m.group(1)


def _documented_api(modname) -> list:
    "Public functions and classes of a module with at least one docmented parameter: each must get a table"
    from fastcore.docments import docments
    mod = importlib.import_module(f'gmc_nb.{modname}')
    names = [n for n in getattr(mod, '__all__', []) if not n.startswith('_')]
    objs = [getattr(mod, n) for n in names if inspect.isfunction(getattr(mod, n, None)) or inspect.isclass(getattr(mod, n, None))]
    def has(o):
        try: return any(v.get('docment') for k, v in docments(o, full=True).items() if k not in ('self', 'return'))
        except Exception: return False
    return [o.__name__ for o in objs if getattr(o, '__module__', '') == mod.__name__ and has(o)]


def _tables(page: Path) -> int:
    return page.read_text(encoding='utf-8').count(f'class="{TABLE}"')


TABLE = 'docments-table'


def test_component_pages_have_parameter_tables(site):
    out, bd = site
    assert bd.TABLE_CLASS == TABLE
    missing, checked = [], 0
    for nb in bd.pages():
        mod = _default_exp(nb)
        if not mod: continue
        api = _documented_api(mod)
        if not api: continue  # e.g. gmc.engine_torch exports only private helpers
        checked += 1
        page = out / nb.relative_to(bd.NBS).with_suffix('.html')
        if _tables(page) < 1: missing.append(f'{page.name} ({mod}: {", ".join(api[:3])})')
    assert checked >= 30, f'only {checked} component notebooks found'
    assert not missing, 'component pages without a docments table:\n' + '\n'.join(missing)


def test_stats_page_has_bootstrap_global_table_and_source(site):
    out, _ = site
    h = (out / '21_stats.html').read_text(encoding='utf-8')
    i = h.find('id="bootstrap_global"')
    assert i >= 0, 'no show_doc heading for bootstrap_global'
    after = h[i:i + 20000]
    tbl = re.search(rf'<div class="{TABLE}">(.*?)</table>', after, re.S)
    assert tbl, 'bootstrap_global has no parameter table'
    cells = re.sub(r'<[^>]+>', ' ', tbl.group(1))
    for word in ('Type', 'Default', 'Details', 'mos', 'seed', 'replicates', 'Returns'):
        assert word in cells, f'bootstrap_global table lacks {word!r}'
    assert 'def</span> <span class="fu">bootstrap_global' in h, 'the exported source cell should still show'


def test_site_makes_no_request_outside_itself(site):
    out, bd = site
    assert bd.external_refs(out) == []
    for f in [*out.rglob('*.html'), *out.rglob('*.css')]:  # belt and braces: the usual suspects by name
        t = f.read_text(encoding='utf-8', errors='replace')
        for host in ('fonts.googleapis.com', 'fonts.gstatic.com', 'cdn.jsdelivr.net', 'unpkg.com', 'cdnjs.cloudflare.com'):
            for m in re.finditer(re.escape(host), t):
                ctx = t[max(0, m.start() - 200):m.start()]
                assert not re.search(r'(<link|<script|@import|url\()[^<>]*$', ctx), f'{f.relative_to(out)} loads {host}'


def test_external_ref_detector_catches_each_kind(tmp_path):
    bd = _load('build_docs')
    (tmp_path / 'a.html').write_text('<link rel="stylesheet" href="https://x.org/a.css"><script src="//cdn.y/z.js"></script>'
                                     '<a href="https://fine.example/">a link is not a request</a>')
    (tmp_path / 's.css').write_text('@import url(https://fonts.googleapis.com/css2?family=X);\n.b{background:url("http://i/x.png")}')
    found = {u for _, u in bd.external_refs(tmp_path)}
    assert found == {'https://x.org/a.css', '//cdn.y/z.js', 'https://fonts.googleapis.com/css2?family=X', 'http://i/x.png'}


def test_maths_and_fonts_are_local(site):
    out, _ = site
    maths = [p for p in out.rglob('*.html') if 'katex.min.js' in p.read_text(encoding='utf-8')]
    if maths:
        assert (out / 'site_libs' / 'katex' / 'katex.min.js').exists()
        assert any((out / 'site_libs' / 'katex' / 'fonts').glob('*.woff2'))
    theme = ''.join(p.read_text(encoding='utf-8') for p in (out / 'site_libs' / 'themes').glob('*.css'))
    assert '@import url(http' not in theme


def test_dataframes_code_and_search_are_styled(site):
    out, _ = site
    css = (out / 'styles.css').read_text(encoding='utf-8')
    rules = re.sub(r'/\*.*?\*/', '', css, flags=re.S)
    def rule(sel_word, *props):
        for m in re.finditer(r'([^{}]+)\{([^}]*)\}', rules):
            if sel_word in m.group(1) and all(p in m.group(2) for p in props): return True
        return False
    assert rule('table.dataframe td', 'padding'), 'DataFrame cells need padding'
    assert rule('table.dataframe td', 'text-align: right'), 'DataFrame numbers right-aligned'
    assert rule('table.dataframe thead th', 'background'), 'DataFrame header row styled'
    assert rule('pre code', 'white-space: pre-wrap'), 'code blocks must wrap'
    assert rule('.smalldocs-search-results', 'background') and rule('.search-result', 'color'), 'search results readable'
    page = (out / '21_stats.html').read_text(encoding='utf-8')
    assert 'styles.css' in page
