"""Benchmark: the four Q-Debias distortions, gmc_nb.degrade vs imagecorruptions-imaug, in one run.

Usage: python bench/bench_degrade.py [--repeats N] [--large-repeats N] [--sizes 1024x768,4000x3000]
Prints a table with median seconds (over repeats), the ratio reference/ours, and the peak memory
(tracemalloc: NumPy allocations) of one call on each size. The photograph is scikit-image's astronaut,
resized (bicubic) to each size. imagecorruptions-imaug is a dev-only dependency; without it, only ours is timed.
"""
import argparse, statistics, sys, time, tracemalloc, warnings
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gmc_nb.qdebias.degrade import QDEBIAS, degrade# noqa: E402

try:
    from imagecorruptions import corrupt
except ImportError as e:  # pragma: no cover
    corrupt = None
    print(f'imagecorruptions-imaug not importable ({e}); timing ours only', file=sys.stderr)


def photo(w, h):
    import skimage.data
    return np.asarray(Image.fromarray(skimage.data.astronaut()).resize((w, h), Image.BICUBIC))


def timed(f, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def peak_mb(f):
    tracemalloc.start(); tracemalloc.reset_peak()
    f()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--repeats', type=int, default=5, help='repeats on the small image')
    ap.add_argument('--large-repeats', type=int, default=3, help='repeats on images over 4 megapixels')
    ap.add_argument('--sizes', default='1024x768,4000x3000')
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    rows = []
    for size in a.sizes.split(','):
        w, h = map(int, size.split('x'))
        x = photo(w, h)
        reps = a.repeats if w * h <= 4e6 else a.large_repeats
        for name, sev in QDEBIAS:
            ours = lambda: degrade(x, name, sev, seed=0)
            t_ours = timed(ours, reps)
            m_ours = peak_mb(ours)
            if corrupt is not None:
                np.random.seed(0)
                ref = lambda: corrupt(x, sev, name)
                t_ref = timed(ref, reps); m_ref = peak_mb(ref)
            else:
                t_ref = m_ref = float('nan')
            rows.append((f'{w}x{h}', f'{name} {sev}', t_ours, t_ref, t_ref / t_ours, m_ours, m_ref))
            print(f'{rows[-1][0]:>10} {rows[-1][1]:<12} ours {t_ours:8.3f} s  ref {t_ref:8.3f} s  '
                  f'ratio {t_ref / t_ours:5.1f}x  peak ours {m_ours:7.0f} MB  ref {m_ref:7.0f} MB', flush=True)
    print('\n| size | distortion | ours median s | imagecorruptions-imaug median s | ref/ours | peak MB ours | peak MB ref |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.1f}x | {r[5]:.0f} | {r[6]:.0f} |')
    for size in sorted({r[0] for r in rows}, key=lambda s: int(s.split('x')[0])):
        so = sum(r[2] for r in rows if r[0] == size); sr = sum(r[3] for r in rows if r[0] == size)
        print(f'| {size} | all four | {so:.3f} | {sr:.3f} | {sr / so:.1f}x | | |')


if __name__ == '__main__':
    main()
