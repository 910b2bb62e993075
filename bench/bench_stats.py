"""Benchmark of gmc_nb.stats on LIVE Challenge (1162 images, 7 NR models; needs ../shared/data).

1. 1000 bootstrap replicates of global PLCC/SRCC/KRCC for 7 models (target <= 5 s on the 2-core CPU),
   against the plain way: resample indices, call scipy per replicate, model and method (timed on fewer
   replicates and scaled to 1000).
2. Bootstrap bands of the 101-point marginal curves (along MOS and along |dMOS|) from B replicates of the dense
   101 x 101 SRCC surface, multiplicity-weighted regulator reusing the core (target <= 60 s), replicates in single
   precision (the default) and in double, against the plain way: copy the resampled data and rebuild the inputs
   per replicate (timed on 2 replicates and scaled).

Usage: .venv/bin/python bench/bench_stats.py [--repeats 3] [--surface-B 200] [--nd 101] [--models 1] [--no-double]
"""
import argparse, sys, time
from dataclasses import replace
import numpy as np
from scipy import stats

from gmc_nb.analysis.datasets import load_dataset
from gmc_nb.analysis.stats import bootstrap_global, resample_counts
from gmc_nb.analysis.surface_stats import bootstrap_surface
from gmc_nb.gmc.inputs import gmc_inputs
from gmc_nb.gmc.points import gmc_grid


def timed(f, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--baseline-B', type=int, default=50, help='replicates timed for the scipy baseline (scaled to 1000)')
    ap.add_argument('--surface-B', type=int, default=200)
    ap.add_argument('--nd', type=int, default=101, help='|dMOS| levels of the marginal grid')
    ap.add_argument('--no-double', action='store_true', help='skip the band run with double-precision replicates')
    ap.add_argument('--models', type=int, default=1, help='models in the surface band run')
    a = ap.parse_args(argv)
    d = load_dataset('livec'); y = d.mos; P = d.oriented(); X = P.to_numpy(); n = len(y)
    rows = []

    t_ours = timed(lambda: bootstrap_global(y, P, B=1000, seed=0, jackknife=False), a.repeats)
    t_jack = timed(lambda: bootstrap_global(y, P, B=1000, seed=0, jackknife=True), a.repeats)
    C = resample_counts(n, a.baseline_B, seed=0)
    def plain():
        for b in range(a.baseline_B):
            i = np.repeat(np.arange(n), C[b])
            for k in range(X.shape[1]):
                stats.pearsonr(y[i], X[i, k]); stats.spearmanr(y[i], X[i, k]); stats.kendalltau(y[i], X[i, k])
    t_plain = timed(plain, max(1, a.repeats - 2)) * 1000 / a.baseline_B
    rows += [('global, 1000 reps x 7 models x 3 methods: weighted', t_ours, t_plain / t_ours),
             ('  same + jackknife for BCa', t_jack, t_plain / t_jack),
             ('  plain scipy loop (scaled from %d reps)' % a.baseline_B, t_plain, 1.0)]

    inp = d.gmc_inputs()
    m = a.models
    sub = replace(inp, preds=inp.preds[:, :m], models=inp.models[:m])
    Qs = np.linspace(y.min(), y.max(), 101); Ds = np.linspace(0, np.ptp(y), a.nd)
    bands = {}
    for prec in ['single'] + ([] if a.no_double else ['double']):
        t = time.perf_counter()
        sb = bootstrap_surface(sub, B=a.surface_B, seed=0, Qs=Qs, Ds=Ds, methods=['SRCC'], rep_precision=prec)
        bands[prec] = (sb.marginal_band(sub.models[0], 'SRCC', 'Q'), sb.marginal_band(sub.models[0], 'SRCC', 'D'))
        bands[prec + '_t'] = time.perf_counter() - t
    Cs = resample_counts(n, 2, seed=0)
    def plain_rep(b):
        i = np.repeat(np.arange(n), Cs[b])
        dup = gmc_inputs(inp.mos[i], inp.preds[i, :m], std=inp.std[i], rho=inp.rho[i], std_floor=1e-6)
        gmc_grid(dup, Qs=Qs, Ds=Ds, methods=['SRCC'])
    t = time.perf_counter(); [plain_rep(b) for b in range(2)]; t_plain_rep = (time.perf_counter() - t) / 2
    t_plain_band = t_plain_rep * (a.surface_B + 1)
    for prec in ['single', 'double']:
        if prec + '_t' in bands:
            rows.append((f'marginal bands 101 Q x {a.nd} D, {m} model(s), B={a.surface_B}, {prec} replicates',
                         bands[prec + '_t'], t_plain_band / bands[prec + '_t']))
    rows.append(('  plain: copy resampled data per replicate, double (scaled from 2 reps)', t_plain_band, 1.0))
    band = bands['single'][0]
    print(f'LIVE Challenge n={n}, models={d.models}')
    print(f"{'case':<75} {'median s':>9} {'speed-up':>9}")
    for name, s, r in rows: print(f'{name:<75} {s:9.2f} {r:9.1f}')
    w = (band.hi - band.lo)
    print(f'band width (SRCC, {sub.models[0]}): median {w.median():.3f}, max {w.max():.3f}; estimate range '
          f'{band.estimate.min():.3f}..{band.estimate.max():.3f}')
    if 'double' in bands:
        dev = max(np.nanmax(np.abs(bands['single'][k][c] - bands['double'][k][c])) for k in (0, 1) for c in ('lo', 'hi'))
        print(f'largest difference of a band limit, single vs double replicates: {dev:.1e}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
