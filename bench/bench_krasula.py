"""Benchmark of gmc_nb.analysis.krasula on KonIQ-10k (10073 images, 15 Q-Bench LMMs; needs ../shared/data).

1. The vectorised `krasula_auc`: AUC_DS, AUC_BW, CC_0 with DeLong intervals and all pairwise tests of the 15 LMMs
   on the full set (50 727 628 pairs), timed once; peak memory (ru_maxrss) printed.
2. The quadratic-loop formulation, as the reference code does it (a Python loop over the pairs for the z-test and the
   score differences, then the AUCs by sorting the pair scores, DeLong by midranks), on a subsample sized to take
   about --loop-seconds, against the vectorised code on the same subsample: both times and the ratio; the loop time is
   extrapolated to the full set as O(n^2) (said so in the output).

Usage: .venv/bin/python bench/bench_krasula.py [--quick] [--loop-seconds 30] [--models 15]
"""
import argparse, resource, time
import numpy as np

from gmc_nb.data import shared_data_dir
from gmc_nb.analysis.krasula import krasula_auc, koniq_votes, fast_delong
from gmc_nb.qdebias.qbench import read_qbench


def loop_formulation(mos, std, n, preds):
    "Pairs by plain loops (the reference code's way), then per model the AUCs by midranks (fast_delong) and CC_0"
    N = len(mos); sig, dif = [], {m: [] for m in preds}
    P = {m: preds[m].to_numpy() for m in preds}
    for i in range(N):
        for j in range(i):
            den = std[i] ** 2 / n[i] + std[j] ** 2 / n[j]
            z = (mos[i] - mos[j]) / np.sqrt(den if den != 0 else 1e-8)
            sig.append(1 if z > 2 else (-1 if z < -2 else 0))
            for m in P: dif[m].append(P[m][i] - P[m][j])
    sig = np.array(sig); X = np.array([dif[m] for m in P]).T
    D, S = sig != 0, sig == 0
    ads, cds = fast_delong(np.abs(X[D]), np.abs(X[S]))
    B = np.where(sig[D, None] > 0, X[D], -X[D]); abw, cbw = fast_delong(B, -B)
    return ads, abw, (B > 0).mean(0)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true', help='3 LMMs, 2000 images, a 5 s loop run')
    ap.add_argument('--loop-seconds', type=float, default=30.)
    ap.add_argument('--models', type=int, default=15)
    a = ap.parse_args(argv)
    root = shared_data_dir(required=True)
    d = read_qbench('koniq', root=root)
    d = d.select(d.models[:3 if a.quick else a.models])
    v = koniq_votes(root).loc[list(d.images)]
    mos, std, n, preds = v['mos'].to_numpy(), v['std'].to_numpy(), v['n'].to_numpy(), d.oriented()
    if a.quick:
        keep = np.random.default_rng(0).choice(len(mos), 2000, replace=False); mos, std, n, preds = mos[keep], std[keep], n[keep], preds.iloc[keep]
        a.loop_seconds = 5.
    N = len(mos); M = preds.shape[1]
    t = time.perf_counter(); res = krasula_auc(mos, preds, std, n); tv = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"vectorised: {M} LMMs on {N} KonIQ-10k images ({N * (N - 1) // 2:,} pairs, {int(res.table['n_different'].iloc[0]):,} "
          f"different), AUCs + CC_0 + DeLong intervals + {len(res.tests)} tests: {tv:.1f} s, peak RSS {rss:.2f} GB")
    print(res.table[['model', 'AUC_DS', 'AUC_BW', 'CC_0']].round(4).to_string(index=False))
    # calibrate the loop on 300 images, then size the subsample for ~loop_seconds (time grows as n^2)
    rng = np.random.default_rng(1); k0 = 300; s0 = rng.choice(N, k0, replace=False)
    t = time.perf_counter(); loop_formulation(mos[s0], std[s0], n[s0], preds.iloc[s0]); t0 = time.perf_counter() - t
    k = int(min(N, .8 * k0 * np.sqrt(a.loop_seconds / t0)))   # .8: the sorts grow a little faster than n^2
    sub = rng.choice(N, k, replace=False)
    t = time.perf_counter(); ads, abw, cc = loop_formulation(mos[sub], std[sub], n[sub], preds.iloc[sub]); tl = time.perf_counter() - t
    t = time.perf_counter(); rs = krasula_auc(mos[sub], preds.iloc[sub], std[sub], n[sub]); tvs = time.perf_counter() - t
    err = max(np.abs(rs.table['AUC_DS'] - ads).max(), np.abs(rs.table['AUC_BW'] - abw).max(), np.abs(rs.table['CC_0'] - cc).max())
    full = tl * (N * (N - 1)) / (k * (k - 1))
    print(f"subsample of {k} images ({k * (k - 1) // 2:,} pairs): loop {tl:.1f} s, vectorised {tvs:.2f} s, ratio {tl / tvs:.0f}x, "
          f"max |difference| {err:.1e}")
    print(f"loop extrapolated to the full {N} images as O(n^2) (not run): {full:.0f} s = {full / 3600:.1f} h, {full / tv:.0f}x the vectorised {tv:.1f} s")


if __name__ == '__main__':
    main()
