"""GMC speed: gmc_nb's exact fast kernels vs the plain pairwise loop (the reference's offset loop,
rewritten as `gmc_point`), on the real data in ../shared/data, in one run.

Each case runs in a fresh subprocess so that its peak memory (max RSS) is its own. Times are
medians over --repeat runs after one warm-up (the warm-up also pays torch's import). The baseline
loop is timed on a few query points and scaled to 100 points x 3 methods (it is linear in both):
the scaled figure is marked 'extrapolated'.

    python bench/bench_gmc.py                 # LIVEC, KADID, dense surfaces (CPU)
    python bench/bench_gmc.py --pipal         # + PIPAL (n = 23,200)
    python bench/bench_gmc.py --device cuda   # the fast kernels on a GPU
    python bench/bench_gmc.py --pipal --torch-too  # + the torch CPU kernel on PIPAL (slow)

On the CPU, scattered points are timed with the compiled C kernel ('c') and the torch kernel ('torch');
dense surfaces use the separable grid path (torch matrix products). The grid against its flop bound,
and the batched surface bootstrap, are timed by bench/bench_grid.py.
"""
import argparse, json, os, resource, statistics, subprocess, sys, time
from pathlib import Path

import numpy as np
import pandas as pd

CASES = {
    # name: (dataset folder, meta_info or std file, reference folder, model)
    'livec': ('LIVEC', 'meta_info_LIVEChallengeDataset.csv', 'LIVEC_Gauss', 'niqe'),
    'kadid': ('kadid10k', 'meta_info_KADID10kDataset.csv', 'kadid10k_Gauss', 'ssim'),
    'pipal': ('pipal', 'mos_std.txt', 'pipal', 'ssim'),
}


def load(root, case):
    from gmc_nb.data import read_floats
    from gmc_nb.gmc.inputs import gmc_inputs
    ds, stdsrc, ref, model = CASES[case]
    t = pd.read_csv(root / 'predictions' / ds / f'{model}.csv')
    std = (read_floats(root / 'gmc_reference' / ref / stdsrc) if stdsrc.endswith('.txt')
           else pd.read_csv(root / 'predictions' / stdsrc)['std'])
    inp = gmc_inputs(t['Ground Truth Labels'], t['Results Scores for CC'].rename(model), std=std,
                     rho=read_floats(root / 'gmc_reference' / ref / 'weights.txt'))
    return inp, pd.read_csv(root / 'gmc_reference' / ref / 'sample100.csv')


def run_one(a):
    "Child process: time one case, print one JSON line"
    from gmc_nb.data import shared_data_dir
    from gmc_nb.gmc.points import gmc_points
    from gmc_nb.gmc.correlation import gmc_point, METHODS
    from gmc_nb.gmc.inputs import gmc_inputs
    from gmc_nb.gmc.surface import correlation_surface
    root = shared_data_dir(required=True)
    kind, case = a.child.split(':')
    inp, pts = load(root, case)
    if kind == 'fast':
        f = lambda: gmc_points(inp, Q=pts.Q, D=pts.D, device=a.device, kernel=a.kernel)
    elif kind == 'surface':
        f = lambda: correlation_surface(inp, n_grid=101, device=a.device)
    elif kind == 'surface7':
        from gmc_nb.cli import livec_scores
        sc = livec_scores(root)
        inp7 = gmc_inputs(sc.mos, sc.preds, std=sc.std)
        f = lambda: correlation_surface(inp7, n_grid=101, device=a.device)
    elif kind == 'loop':
        k = a.loop_points
        def f():
            for q, d in zip(pts.Q[:k], pts.D[:k]):
                for m in METHODS: gmc_point(inp, q, d, 0, m)
    f()                                           # warm-up (imports torch, fills caches)
    if a.device.startswith('cuda'):
        import torch; torch.cuda.synchronize()
    times = []
    for _ in range(a.repeat if kind != 'loop' else 1):
        t = time.perf_counter(); f()
        if a.device.startswith('cuda'): torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    print(json.dumps(dict(times=times, maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, n=len(inp.mos))))


def child(args):
    r = subprocess.run([sys.executable, __file__] + args, capture_output=True, text=True)
    if r.returncode != 0: raise SystemExit(f'case {args} failed:\n{r.stderr[-3000:]}')
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--pipal', action='store_true', help='include PIPAL (n = 23,200; minutes on 2 cores)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--repeat', type=int, default=3)
    p.add_argument('--kernel', default='auto', help="gmc_points kernel for the child runs: auto, c or torch")
    p.add_argument('--torch-too', action='store_true', help='also time the torch kernel on PIPAL (the C kernel is the CPU default)')
    p.add_argument('--child'); p.add_argument('--loop-points', type=int, default=3)
    a = p.parse_args()
    if a.child: return run_one(a)
    common = ['--device', a.device, '--repeat', str(a.repeat)]
    rows = []
    cases = ['livec', 'kadid'] + (['pipal'] if a.pipal else [])
    for case in cases:
        kernels = ['auto'] if a.device != 'cpu' else (['c', 'torch'] if case != 'pipal' or a.torch_too else ['c'])
        loop_pts = 100 if case == 'livec' else (3 if case == 'kadid' else 1)
        loop = child(['--child', f'loop:{case}', '--loop-points', str(loop_pts)])
        loop_full = loop['times'][0] * 100 / loop_pts
        for kernel in kernels:
            fast = child(['--child', f'fast:{case}', '--kernel', kernel] + common)
            med = statistics.median(fast['times'])
            rows.append(dict(case=f'{case} n={fast["n"]}: 100 points x 3 methods', device=a.device, kernel=kernel,
                             fast_s=med, fast_runs=len(fast['times']),
                             loop_s=loop_full, loop_note='measured' if loop_pts == 100 else f'extrapolated from {loop_pts} point(s)',
                             speedup=loop_full / med, peak_rss_mb=fast['maxrss_mb']))
            print(rows[-1], flush=True)
    for kind, label in [('surface', 'livec dense 101x101 surface, 1 model x 3 methods'),
                        ('surface7', 'livec dense 101x101 surface, 7 models x 3 methods')]:
        r = child(['--child', f'{kind}:livec'] + common)
        rows.append(dict(case=label, device=a.device, kernel='grid', fast_s=statistics.median(r['times']), fast_runs=len(r['times']),
                         loop_s=np.nan, loop_note='', speedup=np.nan, peak_rss_mb=r['maxrss_mb']))
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print()
    print(df.to_markdown(index=False, floatfmt='.2f'))
    print(f"\ncores: {len(os.sched_getaffinity(0))}, load average (1, 5, 15 min) at the end: {os.getloadavg()}")


if __name__ == '__main__':
    main()
