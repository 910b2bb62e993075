"""How fast `gmc --help` and `gmc <cmd> --help` answer, next to a bare interpreter that imports argparse.

The command line is only a parser until a command runs (issue 13: help in under 0.5 s). Each case starts a fresh
interpreter, so the numbers include Python's own start-up; the bare-interpreter row is that floor. Set
`GMC_BENCH_OTHER=/path/to/another/checkout` to time that checkout's `gmc --help` in the same run.
Medians of `GMC_BENCH_REPEAT` (default 7) runs; the machines are shared, so compare rows of one run."""
import os, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEAT = int(os.environ.get('GMC_BENCH_REPEAT', 7))


def timed(code, pythonpath=ROOT):
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    ts = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        subprocess.run([sys.executable, '-c', code], env=env, cwd=pythonpath, capture_output=True, check=False)  # cwd: `-c` puts it first on sys.path
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main():
    help_of = lambda argv: f"from gmc_nb.cli import main\ntry: main({argv!r})\nexcept SystemExit: pass"
    rows = [('python -c "import argparse" (floor)', timed('import argparse'))]
    for argv in (['--help'], ['points', '--help'], ['surface', '--help'], ['debias', '--help'], ['score', '--help']):
        rows.append(('gmc ' + ' '.join(argv), timed(help_of(argv))))
    other = os.environ.get('GMC_BENCH_OTHER')
    if other: rows.append((f'gmc --help at {other}', timed(help_of(['--help']), other)))
    floor = rows[0][1]
    print(f'{"case":45s} {"median s":>9s} {"x floor":>8s}')
    for name, t in rows: print(f'{name:45s} {t:9.3f} {t / floor:8.1f}')


if __name__ == '__main__':
    main()
