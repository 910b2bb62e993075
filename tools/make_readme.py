"""README.md from nbs/index.ipynb, without Quarto (nbdev_readme needs it).

Markdown cells are copied; visible code cells become ```python blocks followed by their text
output; cells whose first line is a `#| hide` directive are left out. Relative links of the
notebook (`(00_data.ipynb)`, `(tutorials/x.ipynb)`, `(../Makefile)`) are rewritten to paths from the
repository root (`nbs/00_data.ipynb`, `Makefile`), so they work from a clone and on GitHub.
`--check` exits 1 when README.md differs from what would be written.
"""
import json, os, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _src(c):
    return ''.join(c['source']) if isinstance(c['source'], list) else c['source']


_LINK = re.compile(r'(\]\(|<img [^>]*src=")([^)\s"]+)')


def root_link(target: str) -> str:
    "A link of nbs/index.ipynb as a path from the repository root (URLs, anchors and absolute paths unchanged)"
    if re.match(r'[a-zA-Z][\w+.-]*:|#|/', target): return target
    path, sep, frag = target.partition('#')
    rel = os.path.normpath(os.path.join('nbs', path)).replace(os.sep, '/')
    return rel + sep + frag


def render(nb_path=ROOT / 'nbs' / 'index.ipynb') -> str:
    nb = json.loads(Path(nb_path).read_text(encoding='utf-8'))
    parts = []
    for c in nb['cells']:
        src = _src(c).strip()
        if not src: continue
        if c['cell_type'] == 'markdown':
            parts.append(_LINK.sub(lambda m: m[1] + root_link(m[2]), src))
            continue
        if c['cell_type'] != 'code' or src.startswith('#| hide'): continue
        code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|'))
        parts.append(f'```python\n{code}\n```')
        for o in c.get('outputs', []):
            txt = o.get('text') or o.get('data', {}).get('text/plain')
            if o.get('output_type') == 'stream' and o.get('name') == 'stderr': continue
            if txt:
                txt = ''.join(txt) if isinstance(txt, list) else txt
                if txt.startswith('<Figure') or txt.startswith('<Axes'): continue
                parts.append('```\n' + txt.rstrip() + '\n```')
    head = '<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n'
    return head + '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    text, out = render(), ROOT / 'README.md'
    if '--check' in sys.argv:
        ok = out.exists() and out.read_text(encoding='utf-8') == text
        print('README.md is in sync with nbs/index.ipynb' if ok else 'README.md is out of date: run make readme')
        sys.exit(0 if ok else 1)
    out.write_text(text, encoding='utf-8')
    print(f'wrote {out}')
