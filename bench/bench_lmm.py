"""Images per second of first-token LMM scoring, batched vs one by one (gmc_nb.lmm.score_requests).

The baseline is batch size 1 (one forward pass per image) in the same run; the table shows medians
over --repeats and the speed-up against it. Models are randomly initialised (no download):

  --config tiny  the tiny LLaVA / Idefics3 of the tests (CPU, seconds)
  --config real  a 2B-class LLaVA-style model: SigLIP-so400m/14 @384 vision tower (729 image tokens)
                 + Qwen2-1.5B language model, random weights, bfloat16 by default on CUDA.
                 Meant for a GPU: `python bench/bench_lmm.py --config real --device cuda --find-max`.
                 `--dry-run` only builds the config and counts parameters on the meta device.

Examples:
  python bench/bench_lmm.py                                   # tiny LLaVA on CPU
  python bench/bench_lmm.py --arch idefics3 --batch-sizes 1,4,16
  python bench/bench_lmm.py --config real --dry-run           # checks the real-size config on CPU
  python bench/bench_lmm.py --config real --device cuda --n-images 64 --batch-sizes 1,8,16,32 --find-max
"""
import argparse, statistics, sys, time

import numpy as np


def real_config(vocab_size=151936):
    "A 2B-class LLaVA-style config: SigLIP-so400m/14 at 384 px + Qwen2-1.5B."
    from transformers import LlavaConfig, SiglipVisionConfig, Qwen2Config
    vis = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                             image_size=384, patch_size=14)
    txt = Qwen2Config(vocab_size=vocab_size, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                      num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
                      rope_theta=1e6, tie_word_embeddings=True)
    return LlavaConfig(vision_config=vis, text_config=txt, image_token_id=4,  # '<image>' in the tiny tokenizer
                       vision_feature_layer=-1, vision_feature_select_strategy='full')


def real_processor():
    "The in-memory tokenizer of the tests with a SigLIP 384 px PIL image processor: 729 image tokens per image."
    from transformers import LlavaProcessor, SiglipImageProcessorPil
    from gmc_nb.testing import tiny_tokenizer, CHATML_TEMPLATE
    tok = tiny_tokenizer()
    assert tok.convert_tokens_to_ids('<image>') == 4
    ip = SiglipImageProcessorPil(size={'height': 384, 'width': 384})
    return LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=14, vision_feature_select_strategy='full',
                          num_additional_image_tokens=0, chat_template=CHATML_TEMPLATE)


def n_params(cfg):
    import torch
    from transformers import LlavaForConditionalGeneration
    with torch.device('meta'):
        m = LlavaForConditionalGeneration(cfg)
    return sum(p.numel() for p in m.parameters())


def build(args):
    import torch
    from gmc_nb.qdebias.lmm import LMM, _torch_dtype, _resolve_device
    from gmc_nb.testing import tiny_vlm_parts
    device = _resolve_device(args.device)
    dtype = _torch_dtype(args.dtype, device)
    if args.config == 'tiny':
        model, proc = tiny_vlm_parts(args.arch, seed=0)
        name = f'tiny-{args.arch}'
    else:
        from transformers import LlavaForConditionalGeneration
        cfg = real_config()
        torch.manual_seed(0)
        with torch.device(device):
            model = LlavaForConditionalGeneration._from_config(cfg, dtype=dtype)
        proc = real_processor()
        name = 'real-2B-llava'
    return LMM(model.to(device=device, dtype=dtype).eval(), proc, name=name)


def images(n, size, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size * 4 // 3, 3), dtype=np.uint8) for _ in range(n)]


def timed(lmm, reqs, bs):
    import torch
    from gmc_nb.qdebias.lmm import score_requests
    if torch.cuda.is_available() and lmm.device.type == 'cuda': torch.cuda.synchronize()
    t = time.perf_counter()
    df = score_requests(lmm, reqs, batch_size=bs)
    return time.perf_counter() - t, df


def find_max(lmm, img, start=8, limit=4096):
    "Largest batch (doubling) whose single forward pass fits in GPU memory."
    import torch
    best, bs = 0, start
    while bs <= limit:
        try:
            timed(lmm, [('qbench', [img])] * bs, bs)
            best = bs; peak = torch.cuda.max_memory_allocated() / 2**30
            print(f'  batch {bs:5d}: ok, peak {peak:.1f} GiB', flush=True)
            bs *= 2
        except torch.OutOfMemoryError:
            print(f'  batch {bs:5d}: out of memory', flush=True)
            break
        finally:
            torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    return best


def add_model_args(ap):
    "The options that choose the model (shared with bench_debias.py)"
    ap.add_argument('--config', choices=['tiny', 'real'], default='tiny')
    ap.add_argument('--arch', choices=['llava', 'idefics3'], default='llava', help='tiny architecture')
    ap.add_argument('--device', default='cpu', help='cpu, cuda or auto')
    ap.add_argument('--dtype', default='auto', help='auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(ap)
    ap.add_argument('--n-images', type=int, default=32)
    ap.add_argument('--image-size', type=int, default=48, help='height of the random input images (px)')
    ap.add_argument('--batch-sizes', default='1,4,8,16', help='comma list; 1 is the one-by-one baseline')
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch default)')
    ap.add_argument('--find-max', action='store_true', help='CUDA: also find the largest batch that fits')
    ap.add_argument('--dry-run', action='store_true', help='only build the config and count parameters')
    args = ap.parse_args(argv)

    if args.config == 'real' and args.dry_run:
        cfg = real_config()
        print(f'real config: {type(cfg).__name__}, vision {cfg.vision_config.model_type} '
              f'{cfg.vision_config.num_hidden_layers}x{cfg.vision_config.hidden_size}, text {cfg.text_config.model_type} '
              f'{cfg.text_config.num_hidden_layers}x{cfg.text_config.hidden_size}; '
              f'{n_params(cfg) / 1e9:.2f} B parameters (meta device, nothing allocated)')
        proc = real_processor()
        from gmc_nb.qdebias.lmm import render_prompt
        from PIL import Image
        enc = proc(text=[render_prompt(proc, 'qbench')], images=[[Image.new('RGB', (512, 384))]], return_tensors='pt')
        print(f'one qbench request: {enc["input_ids"].shape[1]} tokens, pixel_values {tuple(enc["pixel_values"].shape)}')
        return
    if args.dry_run:
        print('--dry-run only applies to --config real'); return

    import torch
    if args.threads: torch.set_num_threads(args.threads)
    lmm = build(args)
    bss = [int(b) for b in args.batch_sizes.split(',')]
    if 1 not in bss: bss = [1] + bss
    ims = images(args.n_images, args.image_size if args.config == 'tiny' else max(args.image_size, 384))
    reqs = [('qbench', [im]) for im in ims]
    print(f'{lmm!r}; {args.n_images} images of {ims[0].shape[1]}x{ims[0].shape[0]} px, qbench prompt, '
          f'median of {args.repeats}; torch {torch.__version__}, threads {torch.get_num_threads()}')
    if lmm.device.type == 'cuda': print(f'GPU: {torch.cuda.get_device_name()}')
    timed(lmm, reqs[:max(bss)], max(bss))  # warm-up
    rows, ref = [], None
    for bs in bss:
        ts, df = zip(*[timed(lmm, reqs, bs) for _ in range(args.repeats)])
        med = statistics.median(ts)
        if bs == 1: base, ref = med, df[0].score.to_numpy()
        diff = np.abs(df[0].score.to_numpy() - ref).max()
        rows.append((bs, med, args.n_images / med, base / med, diff))
    print(f'\n{"batch":>6} {"median s":>9} {"images/s":>9} {"vs 1-by-1":>9} {"max|Δscore|":>12}')
    for bs, med, ips, sp, diff in rows:
        print(f'{bs:>6} {med:>9.3f} {ips:>9.1f} {sp:>8.2f}x {diff:>12.1e}')
    if args.find_max:
        if lmm.device.type != 'cuda': print('--find-max needs --device cuda'); return
        print('largest batch that fits:', find_max(lmm, ims[0]))


if __name__ == '__main__':
    sys.exit(main())
