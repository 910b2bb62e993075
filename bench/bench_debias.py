"""Q-Debias throughput: the batched pipeline (gmc_nb.prompting.prompt_logits) vs the published one-by-one loop.

The published script runs, per image, 4 degradations x 2 prompts = 8 forward passes at batch size 1.
The baseline here is exactly that (the same requests through the same code at batch size 1); the
pipeline puts the 8 requests of several images into each forward pass. Both include degrading the
images (seeded, identical). Medians over --repeats, images/s and forward passes per image, speed-up vs
the one-by-one loop measured in the same run, and the largest score difference between the two.
A third row times the whole resumable run (`gmc_nb.debias.run_debias`: store, fsync per image).

Models are randomly initialised (no download):
  --config tiny  the tiny LLaVA / Idefics3 of the tests (CPU, seconds)
  --config real  the 2B-class LLaVA-style model of bench/bench_lmm.py (SigLIP-so400m @384 + Qwen2-1.5B),
                 random weights, bf16 on CUDA. For a GPU:
                 python bench/bench_debias.py --config real --device cuda --n-images 32 --batch-sizes 8,16,32,64

Examples:
  python bench/bench_debias.py                          # tiny LLaVA on CPU
  python bench/bench_debias.py --arch idefics3 --batch-sizes 8,32
"""
import argparse, importlib.util, math, statistics, sys, tempfile, time
from pathlib import Path

import numpy as np


def _bench_lmm():
    spec = importlib.util.spec_from_file_location('bench_lmm', Path(__file__).with_name('bench_lmm.py'))
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m


def build(args):
    "The same model as bench_lmm.py builds (tiny from configs, or the random 2B-class LLaVA)"
    return _bench_lmm().build(args)


def photos(n, size):
    "Real photographs from installed wheels (skimage, matplotlib), cycled to n, longer side `size`."
    from gmc_nb.testing import sample_dataset
    from gmc_nb.images import open_image
    d = Path(tempfile.mkdtemp(prefix='bench_debias_'))
    img_dir, mos = sample_dataset(d, n=min(n, 12), size=size)
    ims = [np.asarray(open_image(p)) for p in sorted(img_dir.glob('*.png'))]   # as run_debias reads them
    return [ims[i % len(ims)] for i in range(n)], img_dir, mos


def sync(lmm):
    import torch
    if lmm.device.type == 'cuda': torch.cuda.synchronize()


def timed_pipeline(lmm, ims, ids, bs, images_per_batch):
    from gmc_nb.qdebias.prompting import prompt_logits
    sync(lmm); t = time.perf_counter()
    parts = [prompt_logits(lmm, ims[s:s + images_per_batch], ids[s:s + images_per_batch], baseline=False, batch_size=bs)
             for s in range(0, len(ims), images_per_batch)]
    sync(lmm)
    import pandas as pd
    return time.perf_counter() - t, pd.concat(parts, ignore_index=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _bench_lmm().add_model_args(ap)
    ap.add_argument('--n-images', type=int, default=12)
    ap.add_argument('--size', type=int, default=0, help='longer side of the photographs (px); default 64 tiny, 512 real')
    ap.add_argument('--batch-sizes', default='8,32', help='requests per forward pass for the pipeline (comma list)')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads (default 1: steadier on a shared CPU; 0: torch default)')
    ap.add_argument('--no-run', action='store_true', help='skip the run_debias (store + fsync) row')
    args = ap.parse_args(argv)

    import torch
    if args.threads: torch.set_num_threads(args.threads)
    lmm = build(args)
    size = args.size or (64 if args.config == 'tiny' else 512)
    ims, img_dir, mos = photos(args.n_images, size)
    ids = [f'img{i}' for i in range(len(ims))]
    n = len(ims)
    print(f'{lmm!r}; {n} photographs, longer side {size} px, 4 degradations x 2 prompts = 8 requests per image; '
          f'median of {args.repeats}; torch {torch.__version__}, threads {torch.get_num_threads()}')
    if lmm.device.type == 'cuda': print(f'GPU: {torch.cuda.get_device_name()}')
    timed_pipeline(lmm, ims[:2], ids[:2], 16, 2)   # warm-up
    # variants interleaved within each repeat, so load from other processes hits them alike
    bss = [int(b) for b in args.batch_sizes.split(',')]
    variants = [('one-by-one (published)', 1, 1)] + [(f'pipeline, {max(1, bs // 8)} img/batch', bs, max(1, bs // 8)) for bs in bss]
    times = {v[0]: [] for v in variants}; first = {}
    for r in range(args.repeats):
        for name, bs, ipb in variants:
            t, df = timed_pipeline(lmm, ims, ids, bs, ipb)
            times[name].append(t); first.setdefault(name, df.drop(columns='id').to_numpy())
    base = statistics.median(times[variants[0][0]]); ref = first[variants[0][0]]
    rows = []
    for name, bs, ipb in variants:
        passes = sum(math.ceil(8 * len(ims[s:s + ipb]) / bs) for s in range(0, n, ipb)) / n
        rows.append((name, bs, passes, statistics.median(times[name]), float(np.abs(first[name] - ref).max())))
    if not args.no_run:
        from gmc_nb.qdebias.run import run_debias
        bs = max(int(b) for b in args.batch_sizes.split(','))
        ts = []
        for r in range(args.repeats):
            out = Path(tempfile.mkdtemp()) / 'r.jsonl'
            sync(lmm); t = time.perf_counter()
            run_debias(lmm, img_dir, mos, out, baseline=False, batch_images=max(1, bs // 8), batch_size=bs, progress=False)
            sync(lmm); ts.append(time.perf_counter() - t)
        nr = min(n, 12)
        rows.append(('run_debias (store, fsync)', bs, math.ceil(8 * max(1, bs // 8) / bs) / max(1, bs // 8) * 1.0,
                     statistics.median(ts) * n / nr, float('nan')))
    print(f'\n{"variant":<28} {"batch":>5} {"passes/img":>10} {"median s":>9} {"images/s":>9} {"vs 1-by-1":>9} {"max|Δlogit|":>11}')
    for name, bs, passes, med, diff in rows:
        print(f'{name:<28} {bs:>5} {passes:>10.2f} {med:>9.3f} {n / med:>9.2f} {base / med:>8.2f}x {diff:>11.1e}')
    print(f'\n(run_debias row: {min(n, 12)} distinct images, time scaled to {n}; includes reading files and writing the store)')


if __name__ == '__main__':
    sys.exit(main())
