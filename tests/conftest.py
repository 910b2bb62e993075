"""Shared fixtures: where the third-party data lives, and a clean skip when it is absent."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    "`$GMC_SHARED_DATA` or `../shared/data` beside the project root."
    return Path(os.environ.get('GMC_SHARED_DATA', ROOT.parent / 'shared' / 'data'))


@pytest.fixture
def shared_data():
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f'third-party data not found at {d} (set GMC_SHARED_DATA or place shared/data beside the repo)')
    return d


def pytest_addoption(parser):
    parser.addoption('--flags', default=os.environ.get('GMC_TEST_FLAGS', ''),
                     help='space-separated nbdev test flags to run (default skips: slow cuda)')


def _flags(config):
    return set((config.getoption('--flags') or '').split())


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long test, run with --flags slow (or GMC_TEST_FLAGS=slow)')
    config.addinivalue_line('markers', 'cuda: needs a GPU, run with --flags cuda')


def pytest_collection_modifyitems(config, items):
    flags = _flags(config)
    for item in items:
        for f in ('slow', 'cuda'):
            if f in item.keywords and f not in flags:
                item.add_marker(pytest.mark.skip(reason=f'{f} test: run with --flags {f} (or GMC_TEST_FLAGS={f})'))
