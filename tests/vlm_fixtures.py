"""Offline test fixtures for vlm/: tiny random VLM checkpoints built locally (no hub access).

`build_tiny_hf_model(path, family)` writes a seeded random Qwen2-VL or LLaVA checkpoint
(config, weights, a hand-built byte-level BPE tokenizer, image processor, chat template)
that `AutoProcessor` / `AutoModelForImageTextToText` load from `path`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Single tokens the VLM prompts need as answers (letters, Yes/No), with and without a leading space.
_ANSWER_WORDS = ["A", "B", "C", "D", "E", "F", "Yes", "No"]
_EXTRA_WORDS = ["Answer", "Question", "the", "image", "letter"]

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]
LLAVA_SPECIALS = ["<s>", "</s>", "<unk>", "<pad>", "<image>"]

QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}\n{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _byte_level_bpe(specials: list[str]):
    """A byte-level BPE tokenizer whose vocab has all 256 bytes plus merges for the answer words."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = ByteLevel.alphabet()
    vocab: dict[str, int] = {}
    for tok in specials:
        vocab[tok] = len(vocab)
    for ch in sorted(alphabet):
        vocab[ch] = len(vocab)
    merges: list[tuple[str, str]] = []

    def add_word(word: str) -> None:
        current = word[0]
        for ch in word[1:]:
            merged = current + ch
            if merged not in vocab:
                merges.append((current, ch))
                vocab[merged] = len(vocab)
            current = merged

    for word in _ANSWER_WORDS + _EXTRA_WORDS:
        add_word(word)
    for word in _ANSWER_WORDS + _EXTRA_WORDS:  # the byte-level form of " word"
        merges.append(("\u0120", word))
        vocab.setdefault("\u0120" + word, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def _fast_tokenizer(specials: list[str], **kwargs):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=_byte_level_bpe(specials), **kwargs)


def build_tiny_hf_model(path: str | Path, family: str = "qwen2_vl", seed: int = 0) -> Path:
    """Write a tiny seeded random VLM checkpoint of `family` ('qwen2_vl' or 'llava') to `path`."""
    import torch
    from transformers import AutoModelForImageTextToText

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if family == "qwen2_vl":
        from transformers import Qwen2VLConfig, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

        tokenizer = _fast_tokenizer(QWEN_SPECIALS, eos_token="<|im_end|>", pad_token="<|endoftext|>")
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
        config = Qwen2VLConfig(
            text_config=dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=2048, initializer_range=0.3,
                             rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                              "mrope_section": [2, 3, 3]},
                             bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                             pad_token_id=ids["<|endoftext|>"]),
            vision_config=dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2,
                               patch_size=4, spatial_merge_size=2, temporal_patch_size=2),
            image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        )
        image_processor = Qwen2VLImageProcessor(patch_size=4, merge_size=2, temporal_patch_size=2,
                                                min_pixels=16 * 16, max_pixels=48 * 48)
        video_processor = Qwen2VLVideoProcessor(patch_size=4, merge_size=2, temporal_patch_size=2)
        processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                     video_processor=video_processor, chat_template=QWEN_CHAT_TEMPLATE)
    elif family == "llava":
        from transformers import CLIPImageProcessor, LlavaConfig, LlavaProcessor

        tokenizer = _fast_tokenizer(LLAVA_SPECIALS, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                    pad_token="<pad>")
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in LLAVA_SPECIALS}
        config = LlavaConfig(
            text_config=dict(model_type="llama", vocab_size=len(tokenizer), hidden_size=64,
                             intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, max_position_embeddings=2048, initializer_range=0.3,
                             bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"]),
            vision_config=dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64,
                               num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8,
                               projection_dim=32),
            image_token_index=ids["<image>"], image_seq_length=16, vision_feature_select_strategy="default",
            vision_feature_layer=-2,
        )
        image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
        processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                                   vision_feature_select_strategy="default", chat_template=LLAVA_CHAT_TEMPLATE,
                                   num_additional_image_tokens=1)
    else:
        raise ValueError(f"unknown tiny model family {family!r}")
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    model.eval()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def random_image(seed: int, height: int = 40, width: int = 48) -> np.ndarray:
    """A seeded random RGB uint8 image."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def build_random_clip_weights(path: str | Path, model_name: str = "ViT-B-32", seed: int = 0) -> Path:
    """Save seeded random open_clip weights for `model_name` to `path` (a local weights file)."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    model = open_clip.create_model(model_name, pretrained=None)
    path = Path(path)
    torch.save(model.state_dict(), path)
    return path
