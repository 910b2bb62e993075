"""Dense GMC grids and surface bootstraps against the arithmetic (issue 17), every ratio from one run.

The flop bound of a dense grid is its matrix products, 2 · pairs · R · nD · nQ flops (R pair sums),
at the dgemm (or sgemm) rate measured here, in this run, by torch on all cores; an interpolated grid's
bound is that times its plan's share (kq · kd nodes per pair instead of nQ · nD levels). Each line
prints the times of the interpolated grid (the default), the exact products and the C kernel at the
same points, the bounds and the ratios.

    python bench/bench_grid.py                # LIVEC 101x101x3: 1 and 7 models vs the C kernel; B = 200 bands
    python bench/bench_grid.py --pipal        # + PIPAL 101x101x3, 1 model
    python bench/bench_grid.py --only grid    # just the grids (or: boot)
    python bench/bench_grid.py --clock cpu    # one thread, CPU seconds: ratios that hold on a loaded machine
"""
import argparse, os, statistics, time

import numpy as np
import pandas as pd


def gemm_gflops(dtype, n=2048, repeat=3):
    "GFLOP/s of an n x n matrix product on all cores (median of `repeat`)"
    import torch
    torch.set_num_threads(CLOCK['workers'] or len(os.sched_getaffinity(0)))
    a, b = torch.rand(n, n, dtype=dtype), torch.rand(n, n, dtype=dtype)
    a @ b
    ts = []
    for _ in range(repeat):
        t = CLOCK['now'](); a @ b; ts.append(CLOCK['now']() - t)
    return 2 * n ** 3 / statistics.median(ts) / 1e9


CLOCK = dict(now=time.perf_counter, workers=None)   # --clock cpu: process CPU time, one thread

LAST = {}   # the seconds of every call of the last `timed`

def timed(f, repeat, warm=True):
    "Median seconds of `repeat` calls after one warm-up (none when `repeat` is 1 or `warm` is False)"
    if repeat > 1 and warm: f()
    ts = []
    for _ in range(repeat):
        t = CLOCK['now'](); f(); ts.append(CLOCK['now']() - t)
    LAST['runs'] = [round(v, 2) for v in ts]
    return statistics.median(ts)


def grid_case(name, inp, n_grid, rates, repeat, c_too=True, precision='double', exact_too=True, warm=True):
    """One dense grid, every engine in the same run: interpolated (the default, interp='auto'), exact products
    (interp='none') and the C kernel at the same points; each beside its flop bound at the gemm rate measured here"""
    from gmc_nb.gmc.correlation import METHODS, _sum_rows
    from gmc_nb.gmc.points import gmc_points
    from gmc_nb.gmc.surface import correlation_surface
    n, R = len(inp.mos), len(_sum_rows(len(inp.models), METHODS, 'a', True))
    flops = 2. * n * (n - 1) / 2 * R * n_grid * n_grid
    bound = flops / (rates[precision] * 1e9)
    row = dict(case=name, n=n, R=R, precision=precision)
    if precision == 'double':
        surf = {}
        t = timed(lambda: surf.setdefault('s', correlation_surface(inp, n_grid=n_grid, workers=CLOCK['workers'])), repeat, warm)
        row['interp_runs_s'] = LAST['runs']
        eb = surf['s'].error_bound
        if eb is not None:
            from gmc_nb.gmc.engine_interp import _interp_share
            ax = np.linspace(inp.mos.min(), inp.mos.max(), n_grid)
            share = _interp_share(inp, ax, ax - ax[0], 1e-13)          # the plan of the default tol, 1e-10
            row.update(interp_s=t, interp_bound_s=share * bound, interp_over_bound=t / (share * bound), node_share=share,
                       largest_value_bound=max(float(np.nanmax(v)) for v in eb.values()))
        else: row.update(interp_s=t, interp_note='auto kept the exact engine')
    if exact_too:
        t = timed(lambda: correlation_surface(inp, n_grid=n_grid, precision=precision, interp='none', workers=CLOCK['workers']), repeat)
        row.update(exact_s=t, exact_bound_s=bound, exact_over_bound=t / bound)
        if 'interp_s' in row: row.update(interp_speedup_vs_exact=t / row['interp_s'])
    if c_too:
        lo, hi = inp.mos.min(), inp.mos.max()
        qq, dd = np.meshgrid(np.linspace(lo, hi, n_grid), np.linspace(0, hi - lo, n_grid))
        tc = timed(lambda: gmc_points(inp, Q=qq.ravel(), D=dd.ravel(), kernel='c', workers=CLOCK['workers']), 1)
        row.update(c_kernel_s=tc)
        for k in ('interp', 'exact'):
            if f'{k}_s' in row: row[f'{k}_speedup_vs_c'] = tc / row[f'{k}_s']
    print(row, flush=True)
    return row


def boot_case(inp, B, rates, n_plain=10, n_grid=None):
    from gmc_nb.gmc.correlation import _sum_rows
    from gmc_nb.gmc.surface import N_GRID
    from gmc_nb.analysis.surface_stats import bootstrap_surface
    N_GRID = n_grid or N_GRID
    def bands(bs):
        for along in 'QD': bs.marginal_band(inp.models[0], 'SRCC', along)
    def run(b, batch):
        bs = bootstrap_surface(inp, B=b, n_grid=N_GRID, methods='SRCC', batch=batch, workers=CLOCK['workers']); bands(bs); return bs
    run(2, True)                                                  # warm-up
    t = timed(lambda: run(B, True), 1)
    t_est = timed(lambda: run(1, True), 1)                        # the estimate and one replicate
    tp, tp1 = timed(lambda: run(n_plain + 1, False), 1), timed(lambda: run(1, False), 1)
    per_batch, per_plain = (t - t_est) / (B - 1), (tp - tp1) / n_plain
    from gmc_nb.gmc.inputs import gmc_inputs
    from gmc_nb.gmc.points import gmc_grid
    from gmc_nb.analysis.stats import resample_counts
    Cs, ax = resample_counts(len(inp.mos), 2, seed=0), np.linspace(inp.mos.min(), inp.mos.max(), N_GRID)
    def copies(b):                                                # bench_stats.py's plain rebuild: resampled copies, double
        i = np.repeat(np.arange(len(inp.mos)), Cs[b])
        dup = gmc_inputs(inp.mos[i], inp.preds[i], std=inp.std[i], rho=inp.rho[i], std_floor=1e-6)
        gmc_grid(dup, Qs=ax, Ds=ax - ax[0], methods=['SRCC'], workers=CLOCK['workers'])
    per_copies = timed(lambda: [copies(b) for b in range(2)], 1) / 2
    n, R = len(inp.mos), len(_sum_rows(1, ['SRCC'], 'a', True))
    flops = 2. * n * (n - 1) / 2 * R * N_GRID * N_GRID            # per replicate, all pairs (the batch's products)
    row = dict(case=f'bootstrap B={B} SRCC marginal bands, {N_GRID}x{N_GRID}, 1 model', n=n, total_s=t, estimate_and_1_rep_s=t_est,
               per_replicate_batch_s=per_batch, per_replicate_plain_s=per_plain, speedup_per_replicate=per_plain / per_batch,
               per_replicate_copies_double_s=per_copies, speedup_vs_copies=per_copies / per_batch,
               sgemm_bound_per_replicate_s=flops / (rates['single'] * 1e9))
    print(row, flush=True)
    return row


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--pipal', action='store_true', help='include PIPAL 101x101x3, 1 model (n = 23,200): its bound, and with --pipal-run its time')
    p.add_argument('--pipal-run', action='store_true', help='also run the PIPAL grid, interpolated (exact: ~10 min, not run)')
    p.add_argument('--models10', action='store_true', help='also LIVEC with 10 models (the 7, and 3 of them rescaled)')
    p.add_argument('--only', choices=['grid', 'boot'], default=None)
    p.add_argument('--repeat', type=int, default=3)
    p.add_argument('--B', type=int, default=200)
    p.add_argument('--boot-grid', type=int, default=None, help='grid points per axis of the bootstrap (default N_GRID = 41)')
    p.add_argument('--clock', choices=['wall', 'cpu'], default='wall', help='cpu: one thread, timed in process CPU seconds')
    a = p.parse_args()
    if a.clock == 'cpu': CLOCK.update(now=time.process_time, workers=1)
    from gmc_nb.data import shared_data_dir, read_floats
    from gmc_nb.gmc.inputs import gmc_inputs
    from gmc_nb.analysis.datasets import load_dataset
    import torch
    rates = dict(double=gemm_gflops(torch.float64), single=gemm_gflops(torch.float32))
    print(f"clock: {a.clock}, threads: {CLOCK['workers'] or len(os.sched_getaffinity(0))}")
    print(f"measured: dgemm {rates['double']:.1f} GFLOP/s, sgemm {rates['single']:.1f} GFLOP/s", flush=True)
    d = load_dataset('gmc:livec'); pr = d.oriented()
    rows = []
    if a.only in (None, 'grid'):
        one = gmc_inputs(d.mos, pr[['niqe']], std=d.std)
        rows.append(grid_case('livec 101x101x3, 1 model', one, 101, rates, a.repeat))
        rows.append(grid_case('livec 101x101x3, 1 model', one, 101, rates, a.repeat, c_too=False, precision='single'))
        seven = gmc_inputs(d.mos, pr, std=d.std)
        rows.append(grid_case('livec 101x101x3, 7 models', seven, 101, rates, a.repeat))
        rows.append(grid_case('livec 101x101x3, 7 models', seven, 101, rates, a.repeat, c_too=False, precision='single'))
        if a.models10:
            ten = gmc_inputs(d.mos, pd.concat([pr, pr.iloc[:, :3].add_suffix('_b') * 1.01], axis=1), std=d.std)
            rows.append(grid_case('livec 101x101x3, 10 models', ten, 101, rates, a.repeat, c_too=False))
        if a.pipal:
            root = shared_data_dir(required=True)
            t = pd.read_csv(root / 'predictions/pipal/ssim.csv')
            pip = gmc_inputs(t['Ground Truth Labels'], t['Results Scores for CC'].rename('ssim'),
                             std=read_floats(root / 'gmc_reference/pipal/mos_std.txt'),
                             rho=read_floats(root / 'gmc_reference/pipal/weights.txt'))
            n, R = len(pip.mos), 8
            print(f"pipal n={n}: 101x101x3, 1 model needs {2. * n * (n - 1) / 2 * R * 101 ** 2 / 1e12:.1f} TFLOP: bound "
                  f"{2. * n * (n - 1) / 2 * R * 101 ** 2 / rates['double'] / 1e9:.0f} s in double, "
                  f"{2. * n * (n - 1) / 2 * R * 101 ** 2 / rates['single'] / 1e9:.0f} s in single", flush=True)
            if a.pipal_run: rows.append(grid_case('pipal 101x101x3, 1 model (median of 3)', pip, 101, rates, 3, c_too=False, exact_too=False, warm=False))
    if a.only in (None, 'boot'):
        rows.append(boot_case(gmc_inputs(d.mos, pr[['qalign']], std=d.std), a.B, rates, n_grid=a.boot_grid))
    print()
    for r in rows: print(pd.Series(r).to_string(), '\n')
    print(f"cores: {len(os.sched_getaffinity(0))}, load average (1, 5, 15 min) at the end: {os.getloadavg()}")


if __name__ == '__main__':
    main()
