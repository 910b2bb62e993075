"""One-go GPU check (issue 16): writes one JSON file with

  gmc   GMC on PIPAL (n = 23,200; the GMC authors' 100 query points x PLCC/SRCC/KRCC, ssim): the C kernel and
        the torch kernel on the CPU vs CUDA, times and the largest difference;
  lmm   a randomly initialised real-size image-text-to-text model (LLaVA-style: SigLIP-so400m/14 @384 + Qwen2-1.5B,
        2.1 B parameters, the config of bench/bench_lmm.py) in bfloat16: the largest batch of Q-Debias requests that
        fits, images/s batched vs the published one-by-one loop, and the saving of image reuse and the prefix cache
        (gmc_nb.qdebias.reuse) against plain batching, with the work counted on the model.

Each part records its own error instead of stopping the run; --budget bounds the whole (parts not started in
time are marked skipped). --tiny runs the same code on the CPU at tiny sizes (PIPAL subsampled, the tiny LLaVA
of the tests) in under 2 minutes.

  bench/gpu_check.sh                       # on a GPU machine: results in $OUT/gpu_check.json (or --out)
  bench/gpu_check.sh --tiny --out /tmp/g.json
PIPAL is read from the shared data folder (GMC_SHARED_DATA, or shared/data beside the project root).
"""
import argparse, importlib.util, json, os, platform, sys, time, traceback
from pathlib import Path

import numpy as np

T0 = time.perf_counter()


def _bench(name):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f'{name}.py'))
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m


def _timed(f, sync=lambda: None):
    sync(); t = time.perf_counter(); out = f(); sync()
    return time.perf_counter() - t, out


def environment():
    import torch, transformers
    cuda = torch.cuda.is_available()
    return dict(python=platform.python_version(), torch=torch.__version__, transformers=transformers.__version__,
                cuda=cuda, gpu=torch.cuda.get_device_name() if cuda else None,
                gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
                cpu_threads=torch.get_num_threads())


def gmc_part(tiny):
    "GMC at the GMC authors' PIPAL points: C and torch on the CPU, and CUDA (torch on the CPU stands in when tiny)."
    import torch, pandas as pd
    from gmc_nb.data import shared_data_dir, read_floats
    from gmc_nb.analysis.datasets import read_gmc_predictions
    from gmc_nb.gmc.points import gmc_points
    root = shared_data_dir()
    if root is None: return dict(skipped='no shared data folder (set GMC_SHARED_DATA)')
    data = read_gmc_predictions('pipal', models=['ssim'], root=root)
    ref = root / 'gmc_reference' / 'pipal'
    mos, pred = data.mos, data.oriented()['ssim'].to_numpy()
    std, rho = read_floats(ref / 'mos_std.txt'), read_floats(ref / 'weights.txt')
    pts = pd.read_csv(ref / 'sample100.csv').rename(columns={'Qd': 'D'})   # Qd: the |ΔMOS| level
    if tiny:   # a subsample, 10 points: the same calls at CPU-test size
        keep = np.sort(np.random.default_rng(0).choice(len(mos), 1500, replace=False))
        mos, pred, std, rho, pts = mos[keep], pred[keep], std[keep], rho[keep], pts.iloc[:10]
    kw = dict(std=std, rho=rho, extrapolate=tiny)
    run = lambda dev, kernel, p=pts: gmc_points(mos, pred, p.Q, p.D, device=dev, kernel=kernel, **kw)
    cols = ['PLCC', 'SRCC', 'KRCC']
    out = dict(n_images=int(len(mos)), n_points=int(len(pts)), methods=cols, model='ssim')
    t_c, r_c = _timed(lambda: run('cpu', 'c'))
    few = pts.iloc[:10]
    t_t, r_t = _timed(lambda: run('cpu', 'torch', few))
    out['cpu_c_s'], out[f'cpu_torch_s_{len(few)}_points'] = t_c, t_t
    out['max_abs_diff_torch_cpu_vs_c'] = float(np.abs(r_t[cols].to_numpy() - r_c[cols].to_numpy()[:len(few)]).max())
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    sync = torch.cuda.synchronize if dev == 'cuda' else (lambda: None)
    t_first, r_g = _timed(lambda: run(dev, 'torch'), sync)
    t_warm, r_g = _timed(lambda: run(dev, 'torch'), sync)
    out.update(device=dev, device_first_s=t_first, device_warm_s=t_warm, speedup_device_vs_c=t_c / t_warm,
               max_abs_diff_device_vs_c=float(np.abs(r_g[cols].to_numpy() - r_c[cols].to_numpy()).max()))
    return out


def find_max_batch(lmm, reqs, start, limit, step_s):
    "Largest batch (doubling) of Q-Debias requests whose forward pass fits; peak memory per batch tried."
    import torch
    from gmc_nb.qdebias.lmm import score_requests
    cuda = lmm.device.type == 'cuda'
    tried, best, bs = [], 0, start
    while bs <= limit:
        batch = (reqs * (bs // len(reqs) + 1))[:bs]
        try:
            t, _ = _timed(lambda: score_requests(lmm, batch, batch_size=bs), torch.cuda.synchronize if cuda else (lambda: None))
            peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
            tried.append(dict(batch=bs, ok=True, s=t, peak_gib=peak)); best = bs
            if t > step_s: break
            bs *= 2
        except torch.OutOfMemoryError:
            tried.append(dict(batch=bs, ok=False)); break
        finally:
            if cuda: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    return best, tried


def lmm_part(tiny, budget_left):
    "Largest batch, images/s batched vs one-by-one, reuse and prefix-cache savings, on the real-size model (tiny when asked)."
    import torch
    br = _bench('bench_reuse')
    cuda = torch.cuda.is_available() and not tiny
    lmm = br.build('tiny' if tiny else 'real', 'llava', 'cuda' if cuda else 'cpu', 'auto', full_depth=True)
    n_params = sum(p.numel() for p in lmm.model.parameters())
    out = dict(model=lmm.name, parameters=int(n_params), dtype=str(lmm.dtype), device=str(lmm.device))
    reqs, n = br.qdebias_batch(2 if tiny else 16, 64 if tiny else 512)
    best, tried = find_max_batch(lmm, reqs, 8, 32 if tiny else 1024, 5 if tiny else 30)
    out.update(largest_batch=best, batches_tried=tried)
    if budget_left() < (10 if tiny else 120): out['throughput'] = 'skipped (budget)'; return out
    bs = 8 if tiny else min(max(best, 8), 64)
    rows = br.measure(lmm, reqs, n, batch_size=bs, repeats=1 if tiny else 3)
    br.print_table(rows)
    by = {r['variant']: r for r in rows}
    out.update(n_images=n, requests=len(reqs), batch_size=bs, throughput=rows,
               images_per_s_one_by_one=by['one-by-one (published)']['images_per_s'],
               images_per_s_batched=by['plain batched']['images_per_s'],
               images_per_s_reused=by['reused (images + prefix)']['images_per_s'],
               batched_vs_one_by_one=by['plain batched']['vs_one_by_one'],
               reused_vs_plain=by['reused (images + prefix)']['vs_plain'],
               prefix_cache_vs_plain=by['prefix only']['vs_plain'], image_reuse_vs_plain=by['images only']['vs_plain'])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--tiny', '--dry-run', dest='tiny', action='store_true', help='CPU, tiny sizes, < 2 minutes')
    ap.add_argument('--out', default='', help='results file (default $OUT/gpu_check.json, else ./gpu_check.json)')
    ap.add_argument('--budget', type=float, default=450, help='seconds for the whole run; later parts are skipped past it')
    ap.add_argument('--parts', default='gmc,lmm', help='comma list of parts to run')
    a = ap.parse_args(argv)
    out = Path(a.out or (Path(os.environ['OUT']) / 'gpu_check.json' if os.environ.get('OUT') else 'gpu_check.json'))
    left = lambda: a.budget - (time.perf_counter() - T0)
    res = dict(mode='tiny (CPU)' if a.tiny else 'full', environment=environment())
    for part, fn in (('gmc', lambda: gmc_part(a.tiny)), ('lmm', lambda: lmm_part(a.tiny, left))):
        if part not in a.parts.split(','): continue
        if left() <= 0: res[part] = dict(skipped='budget spent'); continue
        t = time.perf_counter()
        try: res[part] = fn()
        except Exception as e:
            res[part] = dict(error=f'{type(e).__name__}: {e}', traceback=traceback.format_exc(limit=6))
        res[part]['part_s'] = time.perf_counter() - t
        print(f'[{part}] {time.perf_counter() - t:.1f} s', flush=True)
        out.write_text(json.dumps(res, indent=1, default=str))   # written after each part: a killed run keeps what it had
    res['total_s'] = time.perf_counter() - T0
    out.write_text(json.dumps(res, indent=1, default=str))
    print(f'wrote {out} ({res["total_s"]:.1f} s)')


if __name__ == '__main__':
    sys.exit(main())
