"""The offline docs site builds, and every page carries its notebook's title; README is generated."""
import importlib.util, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_docs_build_has_every_page_with_its_title():
    bd = _load('build_docs')
    out = bd.build()
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
