"""Link check, offline: README.md's relative links resolve to files of the repository (anchors ignored; http(s)
links only checked for syntax, no network), and every local href/src of every page of the built site resolves
to a file in _docs/."""
import html, importlib.util, re, sys, types
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
MD_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
HTML_REF = re.compile(r'''<(?:a|link|script|img|source|iframe)\b[^>]*?\s(?:href|src)\s*=\s*["']([^"']*)["']''', re.I)


def built_site() -> Path:
    "The site, built once per test session whichever of the docs test modules asks first"
    cache = sys.modules.setdefault('_gmc_docs_site', types.ModuleType('_gmc_docs_site'))
    if not getattr(cache, 'out', None):
        spec = importlib.util.spec_from_file_location('build_docs', ROOT / 'tools' / 'build_docs.py')
        bd = importlib.util.module_from_spec(spec); spec.loader.exec_module(bd)
        cache.out = bd.build()
    return cache.out


def url_problem(url: str) -> str:
    "'' for a well-formed http(s) or mailto link, else what is wrong with it"
    u = urlparse(url)
    if u.scheme in ('http', 'https'):
        if not re.fullmatch(r'[A-Za-z0-9.-]+(:\d+)?', u.netloc or '') or '.' not in u.netloc: return f'bad host in {url}'
        if re.search(r'\s', url): return f'whitespace in {url}'
        return ''
    if u.scheme == 'mailto': return '' if '@' in url else f'bad mailto {url}'
    return f'unknown scheme in {url}'


def local_target(url: str, base: Path):
    "The file a relative link points at, or None for an external, anchor-only or data link"
    u = urlparse(url)
    if u.scheme or u.netloc or url.startswith(('#', 'data:', 'javascript:')) or not u.path: return None
    return (base / unquote(u.path)).resolve()


def readme_problems(text: str, root: Path = ROOT) -> list:
    probs = []
    for url in MD_LINK.findall(text) + HTML_REF.findall(text):
        url = html.unescape(url)
        if urlparse(url).scheme:
            p = url_problem(url)
            if p: probs.append(p)
            continue
        f = local_target(url, root)
        if f is not None and not f.exists(): probs.append(f'README.md: {url} -> no such file')
    return probs


def test_readme_links_resolve():
    probs = readme_problems((ROOT / 'README.md').read_text(encoding='utf-8'))
    assert not probs, f'{len(probs)} broken link(s) in README.md:\n' + '\n'.join(probs[:30])


def test_link_checker_finds_broken_links(tmp_path):
    (tmp_path / 'nbs').mkdir(); (tmp_path / 'nbs' / 'a.ipynb').write_text('{}')
    text = ('[ok](nbs/a.ipynb#part) [bad](a.ipynb) [web](https://github.com/x/y) [badweb](https://bad_host!/x)'
            ' ![pic](nbs/missing.png) [anchor](#top) <a href="nbs/a.ipynb">x</a>')
    probs = readme_problems(text, tmp_path)
    assert len(probs) == 3, probs
    assert any('a.ipynb -> no such file' in p for p in probs) and any('missing.png' in p for p in probs)
    assert any('bad host' in p for p in probs)


def test_every_local_link_of_the_site_resolves():
    out = built_site()
    probs, pages = [], sorted(out.rglob('*.html'))
    assert len(pages) >= 40
    for page in pages:
        for url in HTML_REF.findall(page.read_text(encoding='utf-8', errors='replace')):
            f = local_target(html.unescape(url), page.parent)
            if f is None: continue
            if f.is_dir(): f = f / 'index.html'
            if not f.exists(): probs.append(f'{page.relative_to(out)}: {url}')
            elif out.resolve() not in f.parents and f != out.resolve(): probs.append(f'{page.relative_to(out)}: {url} leaves _docs')
    assert not probs, f'{len(probs)} broken local link(s):\n' + '\n'.join(probs[:40])
