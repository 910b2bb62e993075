"""gmc_nb.qdebias.degrade (and its distortions and filters): parity with ImageNet-C (imagecorruptions-imaug, dev-only), seeding, input conversion, CLI.

Parity tests skip with a reason when imagecorruptions-imaug (or scikit-image, for the photographs) is not importable.
"""
import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gmc_nb.qdebias.degrade import DEGRADATIONS, QDEBIAS, degrade, degradation_table
from gmc_nb.images import as_rgb8
from gmc_nb.qdebias.distortions import (Degradation, get_degradation, image_seed, list_degradations, motion_blur_at,
                                        plasma_fractal, register_degradation)
from gmc_nb.qdebias.filters import canny, equalize_hist, hsv_to_rgb, rgb_to_hsv, truncated_distance
from gmc_nb.commands import register_cli

DETERMINISTIC = ['zoom_blur', 'saturate', 'contrast', 'brightness', 'pixelate', 'jpeg_compression', 'defocus_blur',
                 'gaussian_blur']


def _photos():
    skd = pytest.importorskip('skimage.data', reason='scikit-image (dev-only) provides the sample photographs')
    import matplotlib.cbook as cbook
    with cbook.get_sample_data('grace_hopper.jpg') as f:
        hopper = np.asarray(Image.open(f).convert('RGB'))
    return dict(astronaut=skd.astronaut(), chelsea=skd.chelsea(), coffee=skd.coffee(), rocket=skd.rocket(),
                hopper=hopper)


@pytest.fixture(scope='module')
def photos():
    return _photos()


@pytest.fixture(scope='module')
def ic():
    try:
        import imagecorruptions
        import imagecorruptions.corruptions  # noqa: F401
    except Exception as e:  # ImportError, or its own imports (cv2, numba) failing
        pytest.skip(f'imagecorruptions-imaug (dev-only reference) not importable: {e!r}')
    return imagecorruptions


# ---------------------------------------------------------------- parity, deterministic distortions
@pytest.mark.parametrize('name', DETERMINISTIC)
def test_parity_deterministic(name, photos, ic):
    "Mean absolute difference from the reference <= 1 grey level on full-size photographs, every severity."
    for key in ('astronaut', 'coffee', 'hopper'):
        x = photos[key]
        for s in range(1, 6):
            if name == 'defocus_blur' and key != 'coffee' and s < 5: continue   # keep the file fast
            ours = degrade(x, name, s)
            ref = ic.corrupt(x, s, name)
            d = np.abs(ours.astype(int) - ref.astype(int))
            assert ours.shape == ref.shape and ours.dtype == np.uint8
            assert d.mean() <= 1, (name, key, s, d.mean())
            assert d.max() <= 1, (name, key, s, np.argwhere(d > 1)[:5])


def test_parity_grayscale_input(photos, ic):
    g = photos['coffee'].mean(-1).astype(np.uint8)
    for name in ('zoom_blur', 'contrast', 'saturate'):
        d = np.abs(degrade(g, name, 3).astype(int) - ic.corrupt(g, 3, name).astype(int))
        assert d.mean() <= 1


def test_motion_blur_parity(photos, ic):
    x = photos['chelsea']
    for (r, sg), angle in zip(DEGRADATIONS['motion_blur'].params, (-44., -10., 0., 17., 45.)):
        ours = np.clip(motion_blur_at(x, r, sg, angle), 0, 255).astype(np.uint8)
        ref = np.uint8(np.clip(ic.corruptions._motion_blur(x, radius=r, sigma=sg, angle=angle), 0, 255))
        assert np.abs(ours.astype(int) - ref).mean() <= 1


def test_hsv_matches_skimage(photos):
    skc = pytest.importorskip('skimage.color')
    x = photos['astronaut'][::3, ::3] / 255.
    np.testing.assert_allclose(rgb_to_hsv(x), skc.rgb2hsv(x), atol=1e-12)
    h = skc.rgb2hsv(x)
    np.testing.assert_allclose(hsv_to_rgb(h), skc.hsv2rgb(h), atol=1e-12)


# ---------------------------------------------------------------- spatter pipeline and random statistics
def test_canny_equalize_match_opencv(ic):
    cv2 = pytest.importorskip('cv2', reason='OpenCV comes with imagecorruptions-imaug (dev-only)')
    from scipy import ndimage as ndi
    rng = np.random.default_rng(0)
    for sigma in (1, 2, 4):
        img = ndi.gaussian_filter(rng.random((120, 170)) * 255, sigma).astype(np.uint8)
        for lo, hi in ((50, 150), (10, 30)):
            assert (canny(img, lo, hi) == (cv2.Canny(img, lo, hi) > 0)).all()
        np.testing.assert_array_equal(equalize_hist(img), cv2.equalizeHist(img))
    e = rng.random((90, 140)) > .97
    exact = np.minimum(ndi.distance_transform_edt(~e), 20)
    np.testing.assert_allclose(truncated_distance(e), exact, atol=1e-5)


def test_spatter_same_noise_matches_reference(photos, ic):
    "Fed the same liquid noise, our spatter equals the reference's up to a fraction of a grey level."
    x = photos['rocket'][:240, :320].copy()
    noise = np.random.default_rng(5).standard_normal(x.shape[:2]).astype(np.float32)

    class Fixed:
        def standard_normal(self, shape, dtype=None): return noise.copy()

    orig = np.random.normal
    try:
        np.random.normal = lambda size, loc, scale: noise.astype(np.float64) * scale + loc
        for s in (1, 2, 3):
            ref = np.uint8(ic.corruptions.spatter(Image.fromarray(x), s))
            ours = DEGRADATIONS['spatter'].fn(x, DEGRADATIONS['spatter'].params[s - 1], Fixed())
            assert np.abs(ref.astype(int) - ours).mean() < 1, s
    finally:
        np.random.normal = orig


def test_spatter_statistics(photos, ic):
    x = photos['coffee'][::2, ::2].copy()
    for s in (2, 4):
        ours = np.mean([(degrade(x, 'spatter', s, seed=i) != x).any(-1).mean() for i in range(4)])
        refs = []
        for i in range(4):
            np.random.seed(i)
            refs.append((ic.corrupt(x, s, 'spatter') != x).any(-1).mean())
        assert abs(ours - np.mean(refs)) < .25 * np.mean(refs) + .01, (s, ours, refs)


def _spectrum(a, nb=10):
    f = np.abs(np.fft.rfft2(a - a.mean()))
    k = np.hypot(np.fft.fftfreq(a.shape[0])[:, None], np.fft.rfftfreq(a.shape[1])[None]).ravel()
    idx = np.digitize(k, np.geomspace(1 / max(a.shape), .5, nb + 1))
    return np.array([f.ravel()[idx == i].mean() for i in range(1, nb + 1)])


def test_fog_spectrum(ic):
    flat = np.full((128, 128, 3), 90, np.uint8)
    ours, ref = [], []
    for i in range(8):
        ours.append(_spectrum(degrade(flat, 'fog', 4, seed=i)[..., 0].astype(float)))
        np.random.seed(i)
        ref.append(_spectrum(ic.corrupt(flat, 4, 'fog')[..., 0].astype(float)))
    ratio = np.mean(ours, 0) / np.mean(ref, 0)
    assert np.all((ratio > .6) & (ratio < 1.6)), ratio
    assert abs(ratio.mean() - 1) < .2, ratio


def test_plasma_fractal():
    m = plasma_fractal(64, 1.5, seed=0)
    assert m.dtype == np.float32 and m.shape == (64, 64) and m.min() == 0 and m.max() == 1
    np.testing.assert_array_equal(m, plasma_fractal(64, 1.5, seed=0))
    with pytest.raises(ValueError, match='mapsize'):
        plasma_fractal(100)


# ---------------------------------------------------------------- seeding, shapes, inputs
@pytest.mark.parametrize('name', list(DEGRADATIONS))
def test_every_distortion_every_severity(name):
    rng = np.random.default_rng(1)
    x = (rng.random((37, 53, 3)) * 255).astype(np.uint8)
    for s in range(1, 6):
        y = degrade(x, name, s, seed=3)
        assert y.shape == x.shape and y.dtype == np.uint8
        if DEGRADATIONS[name].random:
            np.testing.assert_array_equal(y, degrade(x, name, s, seed=3))
            np.testing.assert_array_equal(y, degrade(x, name, s, seed=np.random.default_rng(3)))


def test_random_reproducible_and_seed_sensitive(photos):
    x = photos['chelsea']
    for name in ('spatter', 'fog', 'gaussian_noise', 'motion_blur', 'elastic_transform'):
        a = degrade(x, name, 3, seed=image_seed('chelsea.png'))
        assert (a == degrade(x, name, 3, seed=image_seed('chelsea.png'))).all()
        assert (a != degrade(x, name, 3, seed=image_seed('chelsea2.png'))).any()
    assert image_seed('x') == image_seed('x') != image_seed('x', base_seed=1)


def test_odd_and_tiny_sizes():
    rng = np.random.default_rng(2)
    for h, w in ((8, 8), (9, 31), (33, 8), (257, 129)):
        x = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        for name in DEGRADATIONS:
            assert degrade(x, name, 5, seed=0).shape == (h, w, 3)


def test_no_liquid_spatter_is_identity():
    x = np.full((40, 40, 3), 128, np.uint8)

    class NoLiquid:
        def standard_normal(self, shape, dtype=None): return np.full(shape, -10, np.float32)

    y = DEGRADATIONS['spatter'].fn(x, DEGRADATIONS['spatter'].params[2], NoLiquid())
    np.testing.assert_array_equal(y, x)   # the reference produces NaN -> garbage here


def test_inputs(photos):
    x = photos['chelsea']
    np.testing.assert_array_equal(degrade(Image.fromarray(x), 'contrast', 2), degrade(x, 'contrast', 2))
    g = x[..., 1]
    np.testing.assert_array_equal(degrade(g, 'contrast', 2), degrade(np.stack([g] * 3, -1), 'contrast', 2))
    np.testing.assert_array_equal(degrade(g[..., None], 'pixelate', 2), degrade(Image.fromarray(g), 'pixelate', 2))
    x16 = x.astype(np.uint16) * 257
    np.testing.assert_array_equal(as_rgb8(x16), x)
    np.testing.assert_array_equal(as_rgb8(Image.fromarray(x16[..., 0])), np.stack([x[..., 0]] * 3, -1))
    rgba = np.dstack([x, np.full(x.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(as_rgb8(rgba), x)
    np.testing.assert_array_equal(as_rgb8(Image.fromarray(rgba)), x)
    p = Image.fromarray(x).convert('P')
    assert as_rgb8(p).shape == x.shape


@pytest.mark.parametrize('bad, field', [
    (np.zeros((20, 20, 3), np.float32), 'image.dtype'),
    (np.zeros((20, 20, 3), np.int32), 'image.dtype'),
    (np.zeros((20, 20, 3), bool), 'image.dtype'),
    (np.zeros((20, 20, 5), np.uint8), 'image.shape'),
    (np.zeros((2, 20, 20, 3), np.uint8), 'image.shape'),
    (np.zeros((5, 20, 3), np.uint8), 'image.shape'),
    ('img.png', 'image'),
])
def test_bad_input(bad, field):
    with pytest.raises(ValueError, match=field):
        degrade(bad, 'fog', 1, seed=0)


def test_bad_arguments():
    x = np.zeros((20, 20, 3), np.uint8)
    for kw, field in ((dict(name='frost', severity=1), 'name'), (dict(name='fog', severity=0), 'severity'),
                      (dict(name='fog', severity=True), 'severity'), (dict(name='fog', severity=1, seed=-3), 'seed'),
                      (dict(name='fog', severity=1, seed='0'), 'seed')):
        with pytest.raises(ValueError, match=field):
            degrade(x, **kw)


def test_registry():
    t = degradation_table()
    assert len(t) == len(DEGRADATIONS) >= 12
    assert {'name', 'random', 'severities', 'description'} <= set(t.columns)
    assert all(len(d.params) == 5 for d in DEGRADATIONS.values())
    assert [n for n, _ in QDEBIAS] == ['zoom_blur', 'spatter', 'saturate', 'fog']
    assert DEGRADATIONS['spatter'].params[2] == (.65, .3, 2, .68, .5, 0)
    assert DEGRADATIONS['fog'].params[3] == (2.5, 1.5)
    assert DEGRADATIONS['saturate'].params[2] == (2, 0)
    assert len(DEGRADATIONS['zoom_blur'].params[2]) == 11


def test_registry_pattern():
    "One registry pattern (as prompts and datasets): register (refusing a name twice), get (listing the names), list."
    assert list_degradations() == sorted(DEGRADATIONS) and 'fog' in list_degradations()
    assert get_degradation('fog') is DEGRADATIONS['fog']
    with pytest.raises(ValueError, match="name: unknown distortion 'frost'; known: gaussian_noise, shot_noise"):
        get_degradation('frost')
    with pytest.raises(ValueError, match='already registered'):
        register_degradation(DEGRADATIONS['fog'])
    with pytest.raises(ValueError, match='params'):
        Degradation('x', lambda x, c, rng: x, (1, 2))
    with pytest.raises(ValueError, match='family'):
        Degradation('x', lambda x, c, rng: x, (1,) * 5, family='snow')
    try:
        d = register_degradation(Degradation('identity', lambda x, c, rng: x.copy(), (0,) * 5, description='no change'))
        assert get_degradation('identity') is d and 'identity' in list_degradations()
        x = np.arange(8 * 9 * 3, dtype=np.uint8).reshape(8, 9, 3)
        np.testing.assert_array_equal(degrade(x, 'identity', 2), x)             # a registered entry is usable at once
        assert 'identity' in degradation_table().name.tolist()
    finally:
        DEGRADATIONS.pop('identity', None)


def test_cli(tmp_path, capsys):
    ap = argparse.ArgumentParser(prog='gmc')
    register_cli(ap.add_subparsers())
    x = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    src, out = tmp_path / 'in.png', tmp_path / 'out.png'
    Image.fromarray(x).save(src)
    a = ap.parse_args(['degrade', str(src), '--name', 'fog', '--severity', '4', '--seed', '0', '--out', str(out)])
    a.func(a)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), degrade(x, 'fog', 4, seed=0))
    a = ap.parse_args(['degrade', '--list'])
    a.func(a)
    assert 'zoom_blur' in capsys.readouterr().out


# ---------------------------------------------------------------- one image rule: open_image (issue 12, items 7-10)
def _png_claiming(path, w, h):
    "A tiny PNG whose header claims w x h pixels (1-bit grayscale) and whose data is one compressed row."
    import struct, zlib
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack('>IIBBBBB', w, h, 1, 0, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'\0' * 64)) + chunk(b'IEND', b''))
    return path


@pytest.fixture(scope='module')
def image_files(tmp_path_factory):
    "Synthetic files and the RGB 8-bit array each must give: 16-bit ramp, EXIF-rotated JPEG, RGBA PNG, P + transparency."
    from PIL import ImageOps
    d = tmp_path_factory.mktemp('one_rule')
    out = {}
    ramp = np.tile(np.linspace(0, 65535, 96).astype(np.uint16), (24, 1))
    Image.fromarray(ramp).save(d / 'ramp16.png')
    assert Image.open(d / 'ramp16.png').mode.startswith('I;16')
    out['ramp16.png'] = as_rgb8(ramp)
    rng = np.random.default_rng(0)
    base = np.repeat(np.repeat(rng.integers(0, 256, (6, 10, 3), dtype=np.uint8), 8, 0), 8, 1)   # 48 x 80 blocks
    for o in (3, 6, 8):
        exif = Image.Exif(); exif[0x0112] = o
        Image.fromarray(base).save(d / f'exif{o}.jpg', quality=95, exif=exif)
        with Image.open(d / f'exif{o}.jpg') as im: out[f'exif{o}.jpg'] = np.asarray(ImageOps.exif_transpose(im).convert('RGB'))
    rgba = np.zeros((20, 30, 4), np.uint8); rgba[..., 0] = 200; rgba[..., 1] = 30
    rgba[..., 3] = np.linspace(0, 255, 30).astype(np.uint8)
    Image.fromarray(rgba).save(d / 'rgba.png')
    out['rgba.png'] = as_rgb8(rgba)
    pal = Image.fromarray(np.tile(np.arange(4, dtype=np.uint8), (16, 4))).convert('P')
    pal.putpalette([10, 20, 30, 200, 0, 0, 0, 200, 0, 0, 0, 200] + [0] * 756); pal.info['transparency'] = 0
    pal.save(d / 'pal.png', transparency=0)
    exp = np.asarray(Image.open(d / 'pal.png').convert('RGB')).copy(); exp[::, 0::4] = 255   # index 0 transparent: white
    out['pal.png'] = exp
    return d, out


def test_one_rule_every_path(image_files):
    "degrade, the LMM scorer's input and the debias explainer see the same array, the documented one, for every file."
    from gmc_nb.images import open_image
    from gmc_nb.qdebias.lmm import load_image
    from gmc_nb.images import model_view
    from gmc_nb.qdebias.explain import _prepare_image
    d, expected = image_files
    for name, exp in expected.items():
        f = d / name
        got = np.asarray(open_image(f))
        np.testing.assert_array_equal(got, exp, err_msg=name)
        np.testing.assert_array_equal(model_view(f), exp, err_msg=f'images.model_view {name}')
        np.testing.assert_array_equal(model_view(f, max_side=32), np.asarray(open_image(f, max_side=32)), err_msg=f'model_view 32 {name}')
        np.testing.assert_array_equal(np.asarray(load_image(f)), exp, err_msg=f'lmm.load_image {name}')
        np.testing.assert_array_equal(np.asarray(load_image(Image.open(f))), exp, err_msg=f'lmm.load_image(PIL) {name}')
        np.testing.assert_array_equal(_prepare_image(f, None, None)[0], exp, err_msg=f'debias_explain {name}')
        np.testing.assert_array_equal(degrade(f, 'contrast', 2), degrade(exp, 'contrast', 2), err_msg=f'degrade {name}')
        np.testing.assert_array_equal(degrade(Image.open(f), 'contrast', 2), degrade(exp, 'contrast', 2))
        s = _prepare_image(f, None, 32)[0]
        np.testing.assert_array_equal(np.asarray(load_image(f, max_side=32)), s, err_msg=f'max_side {name}')
        assert max(s.shape[:2]) == min(32, max(exp.shape[:2]))
    assert expected['exif6.jpg'].shape == (80, 48, 3) and expected['exif3.jpg'].shape == (48, 80, 3)
    assert expected['ramp16.png'][0, -1, 0] == 255 and len(np.unique(expected['ramp16.png'])) > 90   # not clipped to 255


def test_one_rule_16bit_shrunk_not_clipped(image_files):
    from gmc_nb.images import open_image
    d, _ = image_files
    a = np.asarray(open_image(d / 'ramp16.png', max_side=48))
    assert a.shape == (12, 48, 3) and a[0, 0, 0] <= 2 and a[0, -1, 0] >= 253
    assert np.all(np.diff(a[0, :, 0].astype(int)) >= 0)           # still a ramp


def test_pixel_limit_is_a_clear_error(tmp_path):
    "A header claiming 100000 x 100000 pixels is refused before decoding, naming the file and the size, in every path."
    from gmc_nb.images import open_image, MAX_PIXELS
    from gmc_nb.qdebias.lmm import load_image
    from gmc_nb.qdebias.explain import _prepare_image
    f = _png_claiming(tmp_path / 'bomb.png', 100_000, 100_000)
    assert f.stat().st_size < 200
    for fn in (lambda: open_image(f), lambda: load_image(f), lambda: _prepare_image(f, None, 512),
               lambda: degrade(f, 'fog', 4, seed=0)):
        with pytest.raises(ValueError, match=r'bomb\.png.*100000x100000.*max_pixels'): fn()
    assert MAX_PIXELS == 100_000_000
    with pytest.raises(ValueError, match='max_pixels'): open_image(_png_claiming(tmp_path / 's.png', 64, 64), max_pixels=100)


@pytest.mark.parametrize('kind', ['truncated_jpeg', 'zero_bytes', 'directory', 'text', 'missing'])
def test_unreadable_is_a_value_error_naming_the_file(kind, tmp_path):
    from gmc_nb.images import open_image
    from gmc_nb.qdebias.lmm import load_image
    from gmc_nb.qdebias.explain import _prepare_image
    f = tmp_path / ('bad.jpg' if kind == 'truncated_jpeg' else 'bad.png')
    if kind == 'truncated_jpeg':
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(f, quality=90)
        f.write_bytes(f.read_bytes()[:1500])
    elif kind == 'zero_bytes': f.write_bytes(b'')
    elif kind == 'directory': f.mkdir()
    elif kind == 'text': f.write_text('not an image at all')
    for fn in (lambda: open_image(f), lambda: load_image(f), lambda: _prepare_image(f, None, None),
               lambda: degrade(f, 'contrast', 1)):
        with pytest.raises(ValueError, match=r'bad\.(jpg|png)'): fn()


def test_cli_degrade_unreadable_and_exif(tmp_path):
    "`gmc degrade` reads through open_image: EXIF applied; a zero-byte file is a ValueError naming it."
    ap = argparse.ArgumentParser(); register_cli(ap.add_subparsers(dest='cmd'))
    x = np.repeat(np.repeat(np.random.default_rng(1).integers(0, 256, (4, 6, 3), dtype=np.uint8), 8, 0), 8, 1)
    exif = Image.Exif(); exif[0x0112] = 6
    Image.fromarray(x).save(tmp_path / 'r.jpg', quality=95, exif=exif)
    a = ap.parse_args(['degrade', str(tmp_path / 'r.jpg'), '--name', 'contrast', '--severity', '1', '--out', str(tmp_path / 'o.png')])
    a.func(a)
    assert np.asarray(Image.open(tmp_path / 'o.png')).shape == (48, 32, 3)
    (tmp_path / 'z.png').write_bytes(b'')
    a = ap.parse_args(['degrade', str(tmp_path / 'z.png'), '--name', 'fog', '--out', str(tmp_path / 'o2.png')])
    with pytest.raises(ValueError, match='z.png'): a.func(a)
    a = ap.parse_args(['degrade', '--name', 'fog'])
    with pytest.raises(ValueError, match='IMAGE.*--out'): a.func(a)


_PEAK = r"""
import sys, numpy as np
from PIL import Image
from gmc_nb.qdebias.explain import _prepare_image
def status(key):
    for l in open('/proc/self/status'):
        if l.startswith(key): return int(l.split()[1]) / 1024
import gc; gc.collect()
open('/proc/self/clear_refs', 'w').write('5')      # reset the peak (VmHWM) to the current RSS
r0 = status('VmRSS')
x = _prepare_image(sys.argv[1], None, 512)[0]
print(x.shape[0], x.shape[1], status('VmHWM') - r0)
"""


def _peak_mb(path):
    "Height, width and the growth of the peak RSS (MB) of reading `path` with max_side=512, in a fresh interpreter."
    import subprocess, sys
    out = subprocess.run([sys.executable, '-c', _PEAK, str(path)], capture_output=True, text=True, check=True)
    h, w, mb = out.stdout.split()
    return int(h), int(w), float(mb)


@pytest.mark.skipif(not Path('/proc/self/clear_refs').exists(), reason='needs Linux /proc peak-RSS reset')
def test_big_images_shrunk_on_load(tmp_path):
    "6000x4000 JPEG (72 MB as RGB) and 4000x3000 PNG (36 MB) read at max_side=512: no full-size RGB copies."
    y = np.linspace(0, 255, 4000, dtype=np.float32)[:, None]; xx = np.linspace(0, 255, 6000, dtype=np.float32)[None]
    Image.merge('RGB', [Image.fromarray(((y + xx) / 2).astype(np.uint8))] * 3).save(tmp_path / 'big.jpg', quality=85)
    h, w, mb = _peak_mb(tmp_path / 'big.jpg')
    assert (h, w) == (341, 512)
    assert mb < 30, f'peak RSS grew by {mb:.0f} MB reading a 6000x4000 JPEG at max_side=512 (draft: ~8 MB)'
    g = np.add.outer(np.arange(3000) % 251, np.arange(4000) % 253).astype(np.uint8)
    Image.merge('RGB', [Image.fromarray(g), Image.fromarray(g[::-1]), Image.fromarray(g[:, ::-1])]).save(tmp_path / 'big.png', compress_level=1)
    h, w, mb = _peak_mb(tmp_path / 'big.png')
    assert (h, w) == (384, 512)
    assert mb < 72, f'peak RSS grew by {mb:.0f} MB reading a 4000x3000 PNG (36 MB decoded) at max_side=512'


# ---------------------------------------------------------------- the gallery, live and precomputed (issue 14)
from gmc_nb.qdebias.degrade import degradation_frames, gallery
import io as _io

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def _grad(h=48, w=64, k=0):
    "A smooth test photo with some texture, deterministic"
    yy, xx = np.mgrid[:h, :w]
    return np.stack([(xx * 4 + k) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)


def _decode(b):
    return np.asarray(Image.open(_io.BytesIO(b)).convert('RGB'))


def test_degradation_frames_keys_bytes_and_values():
    ims = {'a': _grad(), 'b': _grad(k=40)}
    fr = degradation_frames(ims, ['fog', 'saturate'], (1, 5), seed=3, width=64, colors=None)
    assert list(fr) == [(n, s, k) for n in ('fog', 'saturate') for s in (1, 5) for k in ('a', 'b')]
    assert all(b[:8] == PNG_MAGIC for b in fr.values())
    for (n, s, k), b in fr.items():               # full colour: exactly `degrade` at that severity and seed
        np.testing.assert_array_equal(_decode(b), degrade(ims[k], n, s, seed=3))
    pal = degradation_frames(ims, ['fog'], (4,), seed=3, width=64)   # default: 256-colour palette, a few grey levels off
    assert np.abs(_decode(pal['fog', 4, 'a']).astype(int) - degrade(ims['a'], 'fog', 4, seed=3)).mean() < 4
    assert len(degradation_frames({'a': _grad()}, width=32)) == len(DEGRADATIONS) * 5
    small = degradation_frames({'a': _grad(96, 128)}, 'fog', [4], width=32, colors=None)['fog', 4, 'a']
    assert _decode(small).shape == (24, 32, 3)    # thumbnail, aspect kept


@pytest.mark.parametrize('kw, field', [
    (dict(severities=(0, 3)), 'severities'), (dict(severities=(2.0,)), 'severities'), (dict(severities=()), 'severities'),
    (dict(names=['frost']), 'frost'), (dict(names=[]), 'names'), (dict(colors=1), 'colors'), (dict(colors=300), 'colors'),
    (dict(width=2), 'width'), (dict(width=True), 'width'), (dict(images=[_grad()]), 'images'), (dict(images={}), 'images'),
])
def test_degradation_frames_bad_input(kw, field):
    kw = dict(dict(images={'a': _grad()}, names=['fog']), **kw)
    with pytest.raises(ValueError, match=field):
        degradation_frames(**kw)


def _links(src):
    import warnings
    import ipywidgets as W
    from ipywidgets.widgets.widget_link import Link
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        return [w.target for w in W.Widget.widgets.values() if isinstance(w, Link) and w.source == (src, 'index')]


def test_static_gallery_sliders_switch_frames():
    pytest.importorskip('ipywidgets')
    g = gallery({'a': _grad()}, ['fog', 'saturate', 'contrast'], width=64, static=True)
    sliders, (originals, stack) = g.children[0].children, g.children[1].children
    assert [s.description for s in sliders] == ['distortion', 'severity']
    assert [o[0] for o in sliders[0].options] == ['fog', 'saturate', 'contrast']
    assert 'degrade-frames' in g._dom_classes and 'original: a' in originals.value
    assert (len(stack.children), len(stack.children[0].children)) == (3, 5)
    assert _links(sliders[0]) == [(stack, 'selected_index')]
    assert 'base64,' in stack.children[1].children[4].value          # saturate, severity 5: an inline PNG
    g2 = gallery({'a': _grad(), 'b': _grad(k=9)}, ['fog'], width=32, static=True)
    assert [s.description for s in g2.children[0].children] == ['distortion', 'severity', 'image']


def test_live_gallery_recomputes_on_release_and_caches():
    pytest.importorskip('ipywidgets')
    g = gallery({'a': _grad(), 'b': _grad(k=9)}, ['fog', 'saturate'], width=64)
    (img, name), (sev, seed, row), view = g.children[0].children, g.children[1].children, g.children[2]
    assert sev.continuous_update is False
    first = view.value
    sev.value = 5; assert view.value != first
    sev.value = 3; assert view.value == first
    sev.value = 5
    assert g.copies.cache_info().misses == 2 and g.copies.cache_info().hits >= 2
    np.testing.assert_array_equal(_decode(view.value)[:, 64:], degrade(_grad(), 'fog', 5, seed=0))
    with pytest.raises(ValueError, match='frost'): gallery({'a': _grad()}, ['frost'])
    with pytest.raises(ValueError, match='images'): gallery({})
