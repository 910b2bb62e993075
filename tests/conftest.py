"""Shared fixtures: where the third-party data lives (the library's one resolver), and a clean skip when it is absent."""
import os

import pytest

from gmc_nb.data import shared_data_dir


@pytest.fixture
def shared_data():
    d = shared_data_dir()
    if d is None:
        pytest.skip('third-party data not found (set GMC_SHARED_DATA or place shared/data beside the repo)')
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
