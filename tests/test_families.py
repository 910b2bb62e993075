"""Model families end to end on tiny random configs built offline (issue 16): for each family of
`gmc_nb.testing.TINY_FAMILIES`, the real loading path (save_pretrained, then `load_model` through
AutoProcessor / AutoModelForImageTextToText), its own chat template, two images in one prompt,
batched vs one-by-one first-token logits, the assistant prefix, and single-token answer words."""
import numpy as np
import pytest

from gmc_nb.qdebias.lmm import answer_token_ids, first_token_logits, load_model, render_prompt, score_requests
from gmc_nb.qdebias.prompts import get_prompt
from gmc_nb.testing import FAMILY_BUILDERS, TINY_FAMILIES, tiny_vlm

CLASSES = {'llava': 'LlavaForConditionalGeneration', 'idefics3': 'Idefics3ForConditionalGeneration',
           'qwen2_vl': 'Qwen2VLForConditionalGeneration', 'qwen2_5_vl': 'Qwen2_5_VLForConditionalGeneration',
           'llava_next': 'LlavaNextForConditionalGeneration', 'llava_onevision': 'LlavaOnevisionForConditionalGeneration',
           'gemma3': 'Gemma3ForConditionalGeneration', 'mllama': 'MllamaForConditionalGeneration'}
GEN = {'llava': '<|im_start|>assistant\n', 'idefics3': 'Assistant:', 'qwen2_vl': '<|im_start|>assistant\n',
       'qwen2_5_vl': '<|im_start|>assistant\n', 'llava_next': 'ASSISTANT:', 'llava_onevision': '<|im_start|>assistant\n',
       'gemma3': '<start_of_turn>model\n', 'mllama': '<|start_header_id|>assistant<|end_header_id|>\n\n'}
PLACEHOLDER = {'llava': '<image>', 'idefics3': '<image>', 'qwen2_vl': '<|vision_start|><|image_pad|><|vision_end|>',
               'qwen2_5_vl': '<|vision_start|><|image_pad|><|vision_end|>', 'llava_next': '<image>\n',
               'llava_onevision': '<image>\n', 'gemma3': '<start_of_image>', 'mllama': '<|image|>'}


def test_families_listed():
    assert set(TINY_FAMILIES) == set(CLASSES) and set(FAMILY_BUILDERS) <= set(TINY_FAMILIES)
    with pytest.raises(ValueError, match="arch: expected one of"): tiny_vlm('blip2')


@pytest.fixture(scope='module', params=TINY_FAMILIES)
def family(request, tmp_path_factory):
    arch = request.param
    return arch, load_model(tiny_vlm(arch, tmp_path_factory.mktemp(arch) / arch, seed=3))


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8) for h, w in rng.integers(20, 90, (n, 2))]


def _image_token_id(lmm):
    c = lmm.model.config
    for k in ('image_token_id', 'image_token_index'):
        if isinstance(getattr(c, k, None), int): return getattr(c, k)
    return lmm.processor.image_token_id


def image_tokens(lmm, size):
    "Image tokens one image of `size` (w, h) becomes in the text (mLLaMA: its one cross-attention token)."
    from PIL import Image
    text = render_prompt(lmm.processor, 'qbench')
    enc = lmm.processor(text=[text], images=[[Image.new('RGB', size, (90, 120, 150))]], return_tensors='pt')
    return int((enc['input_ids'][0] == _image_token_id(lmm)).sum())


def test_loading_path_and_template(family):
    arch, lmm = family
    assert type(lmm.model).__name__ == CLASSES[arch]
    assert lmm.tokenizer.padding_side == 'left'
    for name in ('qdebias_quality', 'qdebias_similarity'):   # two images in one prompt, images first, no prefix
        s = render_prompt(lmm.processor, name)
        assert s.count(PLACEHOLDER[arch]) == 2 and get_prompt(name).text in s
        assert s.endswith(GEN[arch]) and s.index(PLACEHOLDER[arch]) < s.index(get_prompt(name).text)
    q = render_prompt(lmm.processor, 'qbench')                 # the assistant prefix after the open generation prompt
    assert q.endswith(GEN[arch] + ('' if GEN[arch][-1].isspace() else ' ') + 'The quality of the image is')


def test_image_tokens(family):
    arch, lmm = family
    small, big = image_tokens(lmm, (32, 32)), image_tokens(lmm, (64, 48))
    assert small >= 1 and big >= small
    if arch == 'mllama': assert small == big == 1               # images enter through cross-attention
    if arch == 'gemma3': assert small == big == 4               # pooled to a fixed number of soft tokens


def test_two_images_batched_equals_one_by_one(family):
    arch, lmm = family
    ims = _images(10, seed=5)
    reqs = ([('qbench', im) for im in ims[:3]] + [('qalign', ims[3])] + [('qdebias_quality', ims[4:6]), ('qdebias_similarity', ims[4:6]),
            ('qdebias_quality', [ims[6], ims[7]]), ('qdebias_similarity', [ims[8], ims[9]])])
    one = score_requests(lmm, reqs, batch_size=1)
    got = score_requests(lmm, reqs, batch_size=8)   # left padding, mixed prompt lengths and image sizes
    z1, z8 = one.filter(like='logit_').to_numpy(), got.filter(like='logit_').to_numpy()
    np.testing.assert_allclose(z8, z1, atol=1e-4, rtol=0, equal_nan=True)
    np.testing.assert_allclose(got.score, one.score, atol=1e-4, rtol=0)
    assert np.isfinite(one.score).all() and one.score.between(0, 1).all()
    # the images reach the answer logits: the same prompt on other images reads other logits
    assert np.abs(np.diff(one.loc[:2, ['logit_good', 'logit_poor']].to_numpy(), axis=0)).max() > 1e-6
    a, b = one.iloc[4], one.iloc[6]
    assert abs(a.logit_Good - b.logit_Good) > 1e-6


def test_prefix_logits_match_hand_built_prompt(family):
    arch, lmm = family
    ims = _images(2, seed=9)
    text = render_prompt(lmm.processor, 'qbench')
    ids = answer_token_ids(lmm.tokenizer, [' good', ' poor'])
    ref = first_token_logits(lmm, [text] * 2, [[im] for im in ims], ids)
    got = score_requests(lmm, [('qbench', im) for im in ims], batch_size=2)
    np.testing.assert_allclose(got[['logit_good', 'logit_poor']].to_numpy(), ref, atol=1e-5, rtol=0)


def test_answer_words_single_tokens(family):
    arch, lmm = family
    for name in ('qbench', 'qalign', 'qdebias_quality', 'qdebias_similarity'):
        p = get_prompt(name)
        ids = answer_token_ids(lmm.tokenizer, p)
        assert len(set(ids)) == len(p.answers)
        assert [lmm.tokenizer.decode([i]) for i in ids] == list(p.answer_spellings())
    with pytest.raises(ValueError, match=r"answers: each answer word must be exactly one token:\n  'superb' -> "):
        answer_token_ids(lmm.tokenizer, ['good', 'superb'])


def test_video_processor_dropped_only_without_torchvision(family):
    "Qwen2-VL / Qwen2.5-VL / LLaVA-OneVision processors hold a video processor (torchvision); load_model loads them image-only."
    import transformers
    arch, lmm = family
    parts = type(lmm.processor).get_attributes()
    assert 'image_processor' in parts and 'tokenizer' in parts
    if arch in ('qwen2_vl', 'qwen2_5_vl', 'llava_onevision') and not transformers.utils.is_torchvision_available():
        assert 'video_processor' not in parts and type(lmm.processor).__name__.endswith('Processor')


# ---------------------------------------------------------------- mPLUG-Owl3-style remote code (AutoModel + init_processor)
FAKE_OWL3 = '''
import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.feature_extraction_utils import BatchFeature
from transformers.modeling_outputs import CausalLMOutput


class FakeOwl3Config(PretrainedConfig):
    model_type = 'fake_owl3'
    def __init__(self, vocab_size=500, hidden_size=16, image_token_id=0, **kw):
        self.vocab_size, self.hidden_size, self.image_token_id = vocab_size, hidden_size, image_token_id
        super().__init__(**kw)


class FakeOwl3ImageProcessor:
    def __call__(self, images):
        return torch.stack([torch.as_tensor(__import__('numpy').array(im.resize((8, 8))), dtype=torch.float32).permute(2, 0, 1) / 255
                            for im in images])


class FakeOwl3Processor:
    "Shaped like mPLUG-Owl3's: takes a conversation, ChatML with an empty system turn, drops assistant content (inference mode)."
    def __init__(self, tokenizer):
        self.tokenizer, self.image_processor = tokenizer, FakeOwl3ImageProcessor()
    def __call__(self, messages, images=None, videos=None):
        assert videos is None and messages[-1] == {'role': 'assistant', 'content': ''}
        text = '<|im_start|>system\\n<|im_end|>'
        for m in messages[:-1]: text += '\\n<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>'
        text += '\\n<|im_start|>assistant\\n'
        ids = torch.tensor([self.tokenizer.encode(text, add_special_tokens=False)])
        pos = (ids[0] == self.tokenizer.convert_tokens_to_ids('<|image|>')).nonzero()[:, 0]
        assert len(pos) == len(images or [])
        out = BatchFeature({'input_ids': ids})
        out['pixel_values'] = self.image_processor(images) if images else None
        out['media_offset'] = [pos]
        return out


class FakeOwl3Model(PreTrainedModel):
    config_class = FakeOwl3Config
    def __init__(self, config):
        super().__init__(config)
        self.embed = torch.nn.Embedding(config.vocab_size, config.hidden_size)
        self.vision = torch.nn.Linear(3 * 8 * 8, config.hidden_size)
        self.head = torch.nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()
    def init_processor(self, tokenizer): return FakeOwl3Processor(tokenizer)
    def forward(self, input_ids=None, pixel_values=None, media_offset=None, **kw):
        h = self.embed(input_ids)
        if pixel_values is not None:
            f = self.vision(pixel_values.flatten(1))
            for b, pos in enumerate(media_offset): h[b, pos] = h[b, pos] + f[:len(pos)]
        h = h.cumsum(1) / torch.arange(1, h.shape[1] + 1, device=h.device)[None, :, None]   # causal mixing
        return CausalLMOutput(logits=self.head(torch.tanh(h)))
'''


@pytest.fixture(scope='module')
def fake_owl3(tmp_path_factory):
    import importlib.util, sys, torch
    from gmc_nb.testing import tiny_tokenizer
    d = tmp_path_factory.mktemp('owl3') / 'fake_owl3_ckpt'; d.mkdir()
    (d / 'fake_owl3.py').write_text(FAKE_OWL3)
    spec = importlib.util.spec_from_file_location('fake_owl3', d / 'fake_owl3.py')
    mod = importlib.util.module_from_spec(spec); sys.modules['fake_owl3'] = mod; spec.loader.exec_module(mod)
    tok = tiny_tokenizer(special=('<|image|>',))
    cfg = mod.FakeOwl3Config(vocab_size=len(tok), image_token_id=tok.convert_tokens_to_ids('<|image|>'),
                             auto_map={'AutoConfig': 'fake_owl3.FakeOwl3Config', 'AutoModel': 'fake_owl3.FakeOwl3Model'})
    torch.manual_seed(0)
    mod.FakeOwl3Model(cfg).save_pretrained(d); tok.save_pretrained(d)
    del sys.modules['fake_owl3']
    return d


def test_remote_code_adapter(fake_owl3):
    from gmc_nb.qdebias.families import InitProcessorAdapter
    with pytest.raises(ValueError, match='trust_remote_code=True'): load_model(fake_owl3)   # opt-in only
    lmm = load_model(fake_owl3, trust_remote_code=True)
    assert isinstance(lmm.processor, InitProcessorAdapter) and type(lmm.model).__name__ == 'FakeOwl3Model'
    q = render_prompt(lmm.processor, 'qdebias_quality')   # the text the remote processor builds, no prefix
    assert q == ('<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|image|><|image|>' + get_prompt('qdebias_quality').text
                 + '<|im_end|>\n<|im_start|>assistant\n')
    assert render_prompt(lmm.processor, 'qbench').endswith('<|im_start|>assistant\nThe quality of the image is')
    ims = _images(6, seed=11)
    reqs = [('qdebias_quality', ims[0:2]), ('qdebias_similarity', ims[0:2]), ('qdebias_quality', ims[2:4]), ('qbench', ims[4]), ('qbench', ims[5])]
    one, got = score_requests(lmm, reqs, batch_size=1), score_requests(lmm, reqs, batch_size=8)   # adapter: one request per pass
    np.testing.assert_allclose(got.filter(like='logit_').to_numpy(), one.filter(like='logit_').to_numpy(), atol=1e-6, equal_nan=True)
    assert one.score.between(0, 1).all() and abs(one.logit_Good[0] - one.logit_Good[2]) > 1e-6   # the images matter
    # the prefix's tokens follow the open assistant turn: the logits differ from the bare first response token
    ids = answer_token_ids(lmm.tokenizer, [' good', ' poor'])
    qb = render_prompt(lmm.processor, 'qbench')
    bare = first_token_logits(lmm, [qb[:-len('The quality of the image is')]], [[ims[4]]], ids)
    assert np.allclose(first_token_logits(lmm, [qb], [[ims[4]]], ids)[0], one.loc[3, ['logit_good', 'logit_poor']].to_numpy(float), atol=1e-6)
    assert np.abs(bare[0] - one.loc[3, ['logit_good', 'logit_poor']].to_numpy(float)).max() > 1e-6
    with pytest.raises(ValueError, match='one request per call'): lmm.processor(text=[q, q], images=[ims[:2], ims[:2]])
