"""Offline docs: render the _quarto.yml project in nbs/ with smalldocs (pure Python) into _docs/.

`nbdev_docs` does the same with Quarto where Quarto is installed. As nbdev_docs does before Quarto, this
script copies nbs/ to _proc/ and runs nbdev's notebook processors on it (`nbdev.processors.FilterDefaults`:
`#| hide` cells go, `add_show_docs` puts a `show_doc` after every exported function and class and
`exec_show_docs` runs it), with two changes for this site: the exported source stays on the page, and
`show_doc` ends with the docments table (type, default, details). Processed notebooks are cached in
.venv/docs-cache. After smalldocs renders, the site is made to ask nothing outside itself (KaTeX vendored from
the npm registry, the theme's web-font import dropped), tools/docs_widgets.py installs the widgets manager
when present, and the site moves to the top-level `_docs/` (the `doc_path` of settings.ini); `check` finds
a missing page or a page without its title.
"""
import html as _h, json, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, OUT, PROC = ROOT / 'nbs', ROOT / '_docs', ROOT / '_proc'
CACHE = ROOT / '.venv' / 'docs-cache'  # ignored: processed notebooks and KaTeX survive rebuilds, so `make docs` stays fast


def notebook_title(nb: Path) -> str:
    "The first `# Title` of a notebook's markdown"
    for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
        if c['cell_type'] != 'markdown': continue
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        m = re.search(r'^# (.+)$', src, re.M)
        if m: return m.group(1).strip()
    return ''


def pages():
    "Notebooks rendered as pages: every notebook under nbs/ not in a hidden or underscore folder"
    return sorted(p for p in NBS.rglob('*.ipynb')
                  if not any(part.startswith(('.', '_')) for part in p.relative_to(NBS).parts))


# ---------------------------------------------------------------- nbdev's processors, before smalldocs

TABLE_CLASS = 'docments-table'  # the fenced div round each parameter table, for the CSS and the tests


def _lib_twin(sym):
    "The object the library exports under `sym`'s name: a class run in a notebook cell has no source for docments"
    if (getattr(sym, '__module__', '') or '').startswith('gmc_nb'): return sym
    import importlib
    try: from gmc_nb._modidx import d
    except ImportError: return sym
    qn = getattr(sym, '__qualname__', '')
    for mod, syms in d.get('syms', {}).items():
        if f'{mod}.{qn}' in syms:
            try: return getattr(importlib.import_module(mod), qn)
            except (ImportError, AttributeError): return sym
    return sym


def docments_table(sym) -> str:
    "fastcore's `DocmentTbl` as a Markdown table, with `|` in a type or a default escaped and docments on one line"
    from fastcore.docments import DocmentTbl, _maybe_nm
    try: t = DocmentTbl(_lib_twin(sym))
    except Exception: return ''  # a builtin or an object with no signature: no table, as nbdev
    if not t.has_docment: return ''
    cell = lambda o: ' '.join(_maybe_nm(o).split()).replace('|', '\\|')
    row = lambda l: '| ' + ' | '.join(cell(o) for o in l) + ' |'
    hdr = t._hdr_list
    lines = [row(hdr), row(['-' * max(3, len(h)) for h in hdr])] + [row(r) for r in t._row_list]
    if t.has_return:
        ret = [cell(t.dm['return'][c]) for c in t._columns]
        lines.append(row(['**Returns**'] + [f'**{r}**' if r else '' for r in ret]))
    return '\n'.join(lines)


def _table_renderer():
    "nbdev's `BasicMarkdownRenderer` (heading, source link, signature, docstring) followed by the docments table"
    from nbdev.showdoc import BasicMarkdownRenderer

    class TableRenderer(BasicMarkdownRenderer):
        "show_doc as nbdev renders it, then the table of parameters: type, default and details"
        def _repr_markdown_(self):
            tbl = docments_table(self.sym)
            return super()._repr_markdown_() + (f'\n\n::: {{.{TABLE_CLASS}}}\n\n{tbl}\n\n:::\n' if tbl else '')
    return TableRenderer


def _evaluable(cell) -> str:
    """The code nbdev's `exec_show_docs` runs for `cell`, made light: exported cells and `show_doc` calls whole,
    and only the import statements of any other cell (nbdev runs a cell that mixes imports and work whole)."""
    import ast
    from nbdev.processors import _show_docs, cell_lang
    if cell.cell_type != 'code' or cell_lang(cell) != 'python' or not cell.source: return ''
    if cell.directives_.get('eval:', [''])[0].lower() == 'false' or 'nbdev_export' + '()' in cell.source: return ''
    if cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'}: return cell.source
    trees = cell.parsed_()
    if not trees: return ''
    if _show_docs(trees): return cell.source
    imps = [n for t in trees for n in getattr(t, 'body', [t]) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return '\n'.join(ast.unparse(n) for n in imps if not (isinstance(n, ast.ImportFrom) and n.module == '__future__'))


def _procs() -> list:
    "nbdev_docs' processors (nbdev.processors.FilterDefaults), for an offline site that keeps the source cells"
    from nbdev.processors import FilterDefaults, exec_show_docs, rm_export, add_links
    from fastcore.basics import str2bool

    class exec_show_docs_tables(exec_show_docs):
        "nbdev's `exec_show_docs` with the table renderer, running only what the API docs need"
        def __call__(self, cell):
            if not self.nb.has_docs_ or not hasattr(self, 'k'): return
            fm = getattr(self.nb, 'frontmatter_', {})
            if str2bool(fm.get('skip_showdoc', False)): return
            code = _evaluable(cell)
            if not code: return
            if code == cell.source: self.k.cell(cell)
            else: self.k.run(code)
            if self.k.exc:
                raise Exception(f"Error in notebook {fm.get('title', '')!r}, cell {cell.idx_}:\n{code}") from self.k.exc

        def end(self): pass  # the widget state saved in the notebook stays as it is (nbdev adds what its run made)

    swap = {exec_show_docs: exec_show_docs_tables}
    # rm_export would drop the exported source (the issue keeps it); add_links points at the published site's page names
    return [swap.get(p, p) for p in FilterDefaults().procs() if p not in (rm_export, add_links)]


def process_notebook(nb_path: Path, procs=None) -> None:
    "Run nbdev's processors on one notebook of the _proc copy, in place: show_doc cells with their tables after each export"
    import os
    from execnb.nbio import nb2dict, read_nb
    from nbdev.process import NBProcessor
    nb = read_nb(nb_path)
    old = os.environ.get('IN_TEST')
    os.environ['IN_TEST'] = '1'  # as nbdev.serve_drv: notebooks skip their slow work
    try: NBProcessor(nb=nb, procs=procs or _procs()).process()
    finally:
        if old is None: os.environ.pop('IN_TEST', None)
        else: os.environ['IN_TEST'] = old
    c0 = nb.cells[0] if nb.cells else None
    if c0 is not None and c0.cell_type == 'raw':  # keep the notebook's own page name (nbdev would drop the number)
        c0.source = '\n'.join(l for l in c0.source.splitlines() if not l.startswith('output-file:'))
    raw = json.loads(nb_path.read_text(encoding='utf-8'))  # metadata as saved: widget state has keys nb2dict would mangle
    raw['cells'] = [nb2dict(c) for c in nb.cells]
    nb_path.write_text(json.dumps(raw), encoding='utf-8')


def preprocess(src=NBS, dest=PROC) -> Path:
    """Copy nbs/ to _proc/ and run nbdev's processors on every notebook, as `nbdev_docs` does before Quarto:
    `#| hide` cells go, `show_doc` with its parameter table follows every exported function and class."""
    if dest.exists(): shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns('_docs', '.ipynb_checkpoints'))
    import hashlib
    lib = hashlib.sha256(Path(__file__).read_bytes())  # the processed notebook depends on it, the library and itself
    for f in [ROOT / 'settings.ini', *sorted((ROOT / 'gmc_nb').rglob('*.py'))]: lib.update(f.read_bytes())
    cache = CACHE / 'proc'; cache.mkdir(parents=True, exist_ok=True)
    todo = []
    for nb in sorted(dest.rglob('*.ipynb')):
        hit = cache / (hashlib.sha256(lib.digest() + nb.read_bytes()).hexdigest()[:32] + '.ipynb')
        if hit.exists(): shutil.copyfile(hit, nb)
        else: todo.append((nb, hit))
    if not todo: return dest
    procs = _procs()
    import nbdev.showdoc as sd
    plain = sd.BasicMarkdownRenderer
    sd.BasicMarkdownRenderer = _table_renderer()  # show_doc's default renderer, whichever way a notebook imports it
    try:
        for nb, hit in todo:
            process_notebook(nb, procs)
            shutil.copyfile(nb, hit)
    finally: sd.BasicMarkdownRenderer = plain
    live = {h.name for _, h in todo} | {p.name for p in cache.iterdir() if p.stat().st_mtime > __import__('time').time() - 7 * 86400}
    for old in cache.iterdir():
        if old.name not in live: old.unlink()  # a week of old versions at most
    return dest


KATEX_VERSION = '0.16.11'  # the version smalldocs links to; vendored from the npm registry
KATEX_CDN = f'https://cdn.jsdelivr.net/npm/katex@{KATEX_VERSION}/dist'


def katex_dist():
    "KaTeX's dist/ folder from the npm registry (`npm pack katex@0.16.11`), cached; None when npm cannot fetch it"
    import tarfile
    home = CACHE / f'katex-{KATEX_VERSION}'
    dist = home / 'dist'
    if (dist / 'katex.min.js').exists(): return dist
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(['npm', 'pack', f'katex@{KATEX_VERSION}', '--silent'], cwd=CACHE,
                           capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired): return None
    tgz = CACHE / f'katex-{KATEX_VERSION}.tgz'
    if r.returncode != 0 or not tgz.exists(): return None
    with tarfile.open(tgz) as tf:
        tf.extractall(home, members=[m for m in tf.getmembers() if m.name.startswith('package/dist/')], filter='data')
    if dist.exists(): shutil.rmtree(dist)
    (home / 'package' / 'dist').rename(dist)
    tgz.unlink()
    return dist


EXTERNAL_IMPORT = re.compile(r'@import\s+url\(\s*["\']?https?://[^)]*\)\s*;?')
EXTERNAL_REF = re.compile(r"""<(?:link|script)\b[^>]*?\b(?:href|src)=["']((?:https?:)?//[^"']+)"""
                          r"""|@import\s+(?:url\()?\s*["']?((?:https?:)?//[^"') ;]+)"""
                          r"""|url\(\s*["']?((?:https?:)?//[^"')]+)""")


def external_refs(out=OUT) -> list:
    "Every `<link>`/`<script>` href/src, `@import` and `url()` of the built site that points outside it: (file, url)"
    found = []
    for f in sorted([*out.rglob('*.html'), *out.rglob('*.css')]):
        for m in EXTERNAL_REF.finditer(f.read_text(encoding='utf-8', errors='replace')):
            found.append((f.relative_to(out).as_posix(), next(g for g in m.groups() if g)))
    return found


def localise(out=OUT) -> list:
    """Make the site ask nothing outside itself: KaTeX from site_libs/katex, the theme's web-font `@import`
    dropped (styles.css names system fonts). Returns what still points outside, for the caller to report."""
    for css in out.rglob('*.css'):
        t = css.read_text(encoding='utf-8')
        if EXTERNAL_IMPORT.search(t): css.write_text(EXTERNAL_IMPORT.sub('', t), encoding='utf-8')
    maths = [p for p in out.rglob('*.html') if KATEX_CDN in p.read_text(encoding='utf-8')]
    dist = katex_dist() if maths else None
    if maths and dist is None:
        print(f'docs: npm could not fetch katex@{KATEX_VERSION}; maths pages keep the CDN link', file=sys.stderr)
    elif maths:
        shutil.copytree(dist, out / 'site_libs' / 'katex', dirs_exist_ok=True)
        for p in maths:
            rel = '/'.join(['..'] * (len(p.relative_to(out).parts) - 1) + ['site_libs', 'katex'])
            p.write_text(p.read_text(encoding='utf-8').replace(KATEX_CDN, rel), encoding='utf-8')
    return external_refs(out)


def install_widgets(out=OUT):
    "tools/docs_widgets.py's `install(site_dir)`, when that file exists: the Jupyter widgets HTML manager, vendored"
    f = ROOT / 'tools' / 'docs_widgets.py'
    if not f.exists(): return None
    import importlib.util
    spec = importlib.util.spec_from_file_location('docs_widgets', f)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod.install(out)


def build(quiet=True) -> Path:
    proc = preprocess()
    exe = Path(sys.executable).with_name('smalldocs')
    cmd = [str(exe) if exe.exists() else 'smalldocs', 'render', str(proc)] + (['--quiet'] if quiet else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f'smalldocs failed ({r.returncode}):\n{r.stdout}\n{r.stderr}')
    if OUT.exists(): shutil.rmtree(OUT)
    shutil.move(str(proc / '_docs'), str(OUT))
    left = localise(OUT)
    if left: print(f'docs: {len(left)} reference(s) outside the site, e.g. {left[0]}', file=sys.stderr)
    install_widgets(OUT)
    return OUT


def _norm(s):
    "Text for comparison: typographic quotes and dashes made plain, whitespace collapsed"
    for a, b in (('\u2019', "'"), ('\u2018', "'"), ('\u201c', '"'), ('\u201d', '"'), ('\u2013', '-'), ('\u2014', '-')):
        s = s.replace(a, b)
    return ' '.join(s.split())


def check(out=OUT) -> list:
    "Problems found: a missing page, or a page without its notebook's title"
    problems = []
    for nb in pages():
        html = out / nb.relative_to(NBS).with_suffix('.html')
        if not html.exists(): problems.append(f'missing page {html.relative_to(ROOT)}'); continue
        title = notebook_title(nb)
        if title and _norm(title) not in _norm(_h.unescape(html.read_text(encoding='utf-8'))):
            problems.append(f'{html.relative_to(ROOT)} lacks its title {title!r}')
    return problems


if __name__ == '__main__':
    out = build()
    probs = check(out)
    for p in probs: print('docs:', p)
    print(f'docs: {len(pages())} pages in {out}' + ('' if not probs else f', {len(probs)} problem(s)'))
    sys.exit(1 if probs else 0)
