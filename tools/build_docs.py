"""Offline docs: render the _quarto.yml project in nbs/ with smalldocs (pure Python) into _docs/.

`nbdev_docs` does the same with Quarto where Quarto is installed. This script renders, moves the
site to the top-level `_docs/` (the `doc_path` of settings.ini) and checks that the index and every
page in the sidebar exist and carry their titles.
"""
import html as _h, json, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, OUT, PROC = ROOT / 'nbs', ROOT / '_docs', ROOT / '_proc'


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


def preprocess(src=NBS, dest=PROC) -> Path:
    """Copy nbs/ to _proc/ turning nbdev's `#| hide` into Quarto's `#| include: false`.

    nbdev_docs does this step itself before Quarto runs; smalldocs reads Quarto's options only."""
    if dest.exists(): shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns('_docs', '.ipynb_checkpoints'))
    for nb in dest.rglob('*.ipynb'):
        d = json.loads(nb.read_text(encoding='utf-8'))
        for c in d['cells']:
            if c['cell_type'] != 'code': continue
            src_ = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
            lines = src_.splitlines()
            if any(l.strip() == '#| hide' for l in lines):
                c['source'] = '\n'.join('#| include: false' if l.strip() == '#| hide' else l for l in lines)
        nb.write_text(json.dumps(d), encoding='utf-8')
    return dest


def build(quiet=True) -> Path:
    proc = preprocess()
    exe = Path(sys.executable).with_name('smalldocs')
    cmd = [str(exe) if exe.exists() else 'smalldocs', 'render', str(proc)] + (['--quiet'] if quiet else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f'smalldocs failed ({r.returncode}):\n{r.stdout}\n{r.stderr}')
    if OUT.exists(): shutil.rmtree(OUT)
    shutil.move(str(proc / '_docs'), str(OUT))
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
