"""Q-Debias scoring with reuse (gmc_nb.qdebias.reuse.score_requests_reused) vs the plain batched path
(gmc_nb.qdebias.lmm.score_requests) vs the published one-by-one loop (the same requests at batch size 1).

Each image gives the 8 Q-Debias requests (4 degraded copies x conditional + semantic prompt; degraded copy
first, query second). The copies are made once, before timing, and shared by every variant. Variants are
interleaved within each repeat (load from other processes hits them alike); the table shows medians, images/s,
the work counted by hooks on the model (vision tiles, language-model passes and token positions, padding
included), the speed-up against the one-by-one loop and against plain batching, and the largest score
difference against plain batching. Rows 'images only' and 'prefix only' split the saving.

Models are randomly initialised (no download):
  --config tiny  the tiny LLaVA / Idefics3 of the tests (CPU, seconds)
  --config real  real widths: SigLIP-so400m/14 @384 (729 tokens an image) + Qwen2-1.5B, the LLaVA-style config of
                 bench/bench_lmm.py, depth reduced to --vision-layers / --text-layers (default 1 / 1) so it runs on
                 a CPU; --full-depth keeps 27 / 28 (a GPU: bfloat16 by default there).

Examples:
  python bench/bench_reuse.py                                # tiny LLaVA on CPU
  python bench/bench_reuse.py --arch idefics3
  python bench/bench_reuse.py --config real --n-images 1 --repeats 1 --threads 2
  python bench/bench_reuse.py --config real --full-depth --device cuda --n-images 8 --batch-size 16
"""
import argparse, importlib.util, json, statistics, sys, time
from pathlib import Path

import numpy as np


def _load(name):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f'{name}.py'))
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m


def build(config='tiny', arch='llava', device='cpu', dtype='auto', vision_layers=1, text_layers=1, full_depth=False):
    "An LMM: the tiny test model, or the real-width LLaVA-style config (depth reduced unless full_depth)."
    import torch
    from gmc_nb.qdebias.lmm import LMM, _torch_dtype, _resolve_device
    device = _resolve_device(device); td = _torch_dtype(dtype, device)
    if config == 'tiny':
        from gmc_nb.testing import tiny_vlm_parts
        model, proc = tiny_vlm_parts(arch, seed=0)
        return LMM(model.to(device=device, dtype=td).eval(), proc, name=f'tiny-{arch}')
    from transformers import LlavaForConditionalGeneration
    bl = _load('bench_lmm')
    cfg = bl.real_config()
    if not full_depth:
        cfg.vision_config.num_hidden_layers, cfg.text_config.num_hidden_layers = vision_layers, text_layers
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(cfg, dtype=td)
    v, t = cfg.vision_config.num_hidden_layers, cfg.text_config.num_hidden_layers
    return LMM(model.eval(), bl.real_processor(), name=f'real-width llava (SigLIP {v} + Qwen2 {t} layers)')


def qdebias_batch(n_images, size):
    "(requests, n): the 8 Q-Debias requests of each of n photographs (degraded copies made here, once)."
    from gmc_nb.qdebias.prompting import degraded_views, qdebias_requests
    from gmc_nb.images import model_view
    ims, _, _ = _load('bench_debias').photos(n_images, size)
    reqs = []
    for k, im in enumerate(ims):
        x = model_view(im)
        reqs += qdebias_requests(x, degraded_views(x, f'img{k}'), baseline=False)[1]
    return reqs, len(ims)


def variants(batch_size):
    "(name, function(lmm, requests) -> DataFrame) in table order."
    from gmc_nb.qdebias.lmm import score_requests
    from gmc_nb.qdebias.reuse import score_requests_reused
    return [('one-by-one (published)', lambda m, r: score_requests(m, r, batch_size=1)),
            ('plain batched', lambda m, r: score_requests(m, r, batch_size=batch_size)),
            ('images only', lambda m, r: score_requests_reused(m, r, batch_size=batch_size, reuse='images')),
            ('prefix only', lambda m, r: score_requests_reused(m, r, batch_size=batch_size, reuse='prefix')),
            ('reused (images + prefix)', lambda m, r: score_requests_reused(m, r, batch_size=batch_size))]


def measure(lmm, reqs, n_images, batch_size=8, repeats=3, only=None):
    "One dict per variant: median s, images/s, counted work, ratios vs one-by-one and plain, max |Δscore| vs plain."
    from gmc_nb.qdebias.reuse import count_passes
    import torch
    sync = (lambda: torch.cuda.synchronize()) if lmm.device.type == 'cuda' else (lambda: None)
    vs = [v for v in variants(batch_size) if only is None or v[0] in only]
    vs[-1][1](lmm, reqs[:8])                                 # warm-up
    times, work, scores = {n: [] for n, _ in vs}, {}, {}
    for r in range(repeats):
        for name, f in vs:
            with count_passes(lmm) as c:
                sync(); t = time.perf_counter(); df = f(lmm, reqs); sync()
            times[name].append(time.perf_counter() - t); work[name] = c.as_dict(); scores.setdefault(name, df.score.to_numpy())
    med = {n: statistics.median(ts) for n, ts in times.items()}
    base, plain = med.get(vs[0][0]), med.get('plain batched')
    ref = scores.get('plain batched', scores[vs[0][0]])
    return [dict(variant=n, batch=1 if n.startswith('one-by-one') else batch_size, median_s=med[n],
                 images_per_s=n_images / med[n], **work[n], vs_one_by_one=base / med[n] if base else float('nan'),
                 vs_plain=plain / med[n] if plain else float('nan'), max_abs_dscore=float(np.abs(scores[n] - ref).max()))
            for n, _ in vs]


def print_table(rows):
    print(f'\n{"variant":<26} {"batch":>5} {"median s":>9} {"images/s":>9} {"vis tiles":>9} {"LM passes":>9} '
          f'{"LM tokens":>9} {"vs 1-by-1":>9} {"vs plain":>8} {"max|Δscore|":>11}')
    for r in rows:
        print(f'{r["variant"]:<26} {r["batch"]:>5} {r["median_s"]:>9.3f} {r["images_per_s"]:>9.2f} {r["vision_images"]:>9} '
              f'{r["lm_passes"]:>9} {r["lm_tokens"]:>9} {r["vs_one_by_one"]:>8.2f}x {r["vs_plain"]:>7.2f}x {r["max_abs_dscore"]:>11.1e}')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--config', choices=['tiny', 'real'], default='tiny')
    ap.add_argument('--arch', choices=['llava', 'idefics3'], default='llava', help='tiny architecture')
    ap.add_argument('--device', default='cpu', help='cpu, cuda or auto')
    ap.add_argument('--dtype', default='auto', help='auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16')
    ap.add_argument('--vision-layers', type=int, default=1, help='real config: vision tower depth (full: 27)')
    ap.add_argument('--text-layers', type=int, default=1, help='real config: language model depth (full: 28)')
    ap.add_argument('--full-depth', action='store_true', help='real config at its full depth (2.1 B parameters)')
    ap.add_argument('--n-images', type=int, default=0, help='query images (default 12 tiny, 1 real)')
    ap.add_argument('--size', type=int, default=0, help='longer side of the photographs (px); default 64 tiny, 512 real')
    ap.add_argument('--batch-size', type=int, default=8, help='requests per window / forward pass')
    ap.add_argument('--repeats', type=int, default=0, help='default 5 tiny, 1 real')
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads (default 1: steadier on a shared CPU; 0: torch default)')
    ap.add_argument('--no-one-by-one', action='store_true', help='skip the batch-size-1 loop (slow at full depth)')
    ap.add_argument('--json', default='', help='also write the rows to this JSON file')
    a = ap.parse_args(argv)
    import torch
    if a.threads: torch.set_num_threads(a.threads)
    tiny = a.config == 'tiny'
    lmm = build(a.config, a.arch, a.device, a.dtype, a.vision_layers, a.text_layers, a.full_depth)
    reqs, n = qdebias_batch(a.n_images or (12 if tiny else 1), a.size or (64 if tiny else 512))
    print(f'{lmm!r}; {n} photographs x 8 Q-Debias requests, batch {a.batch_size}, median of {a.repeats or (5 if tiny else 1)}; '
          f'torch {torch.__version__}, threads {torch.get_num_threads()}')
    only = None if not a.no_one_by_one else [v for v, _ in variants(a.batch_size)][1:]
    rows = measure(lmm, reqs, n, a.batch_size, a.repeats or (5 if tiny else 1), only)
    print_table(rows)
    if a.json: Path(a.json).write_text(json.dumps(dict(model=lmm.name, n_images=n, rows=rows), indent=1))


if __name__ == '__main__':
    sys.exit(main())
