"""hf backend on tiny seeded random Qwen2-VL and LLaVA checkpoints built offline."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from vlm_fixtures import build_tiny_hf_model, random_image  # noqa: E402

from vlm import Query, VLMConfig, make_vlm  # noqa: E402
from vlm.backends.hf import HFConfig, HFScorer  # noqa: E402
from vlm.cache import ResponseCache  # noqa: E402
from vlm.errors import WeightsNotFoundError  # noqa: E402
from vlm.prompted import PromptedVLM  # noqa: E402
from vlm.scoring import PromptRequest  # noqa: E402

Q = "Is the stove in the kitchen on?"
CHOICES = ["Yes, it is on", "No, it is off", "There is no stove", "Can't tell"]
POINTS = [(6, 8), (40, 30), (25, 5)]


@pytest.fixture(scope="module", params=["qwen2_vl", "llava"])
def tiny(request, tmp_path_factory):
    path = build_tiny_hf_model(tmp_path_factory.mktemp(request.param), request.param, seed=0)
    return path, HFScorer(HFConfig(model_path=str(path), model_id=request.param))


def reference_logprobs(path, text: str, image: np.ndarray) -> torch.Tensor:
    """Independent path: plain transformers forward of one unpadded prompt; log-softmax of the last logits."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    proc = AutoProcessor.from_pretrained(str(path))
    model = AutoModelForImageTextToText.from_pretrained(str(path)).eval()
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    chat = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    inputs = proc(text=[chat], images=[Image.fromarray(image)], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1]
    return torch.log_softmax(logits.float(), dim=-1)


def test_prompt_to_probabilities_matches_plain_transformers(tiny):
    path, scorer = tiny
    vlm = PromptedVLM(scorer)
    img = random_image(1)
    p = vlm.answer(img, Q, CHOICES)
    assert p.shape == (4,) and p.sum() == pytest.approx(1.0) and (p > 0).all()
    ref = reference_logprobs(path, vlm.run(img, [Query("answer", Q, tuple(CHOICES))])[0][0].prompt, img)
    tok = scorer.tokenizer
    ids = [[tok.convert_tokens_to_ids(x), tok.convert_tokens_to_ids("\u0120" + x)] for x in "ABCD"]
    lp = np.array([torch.logsumexp(ref[i], 0).item() for i in ids])
    expected = np.exp(lp - lp.max()) / np.exp(lp - lp.max()).sum()
    np.testing.assert_allclose(p, expected, atol=1e-5)
    # seeded random weights are far from uniform, so the check above is meaningful
    assert p.max() - p.min() > 0.05


def test_batched_view_equals_single_calls(tiny):
    _, scorer = tiny
    vlm = PromptedVLM(scorer)
    img = random_image(2)
    view = vlm.query_view(img, Q, CHOICES, POINTS)
    np.testing.assert_allclose(view.answer, vlm.answer(img, Q, CHOICES), atol=1e-5)
    np.testing.assert_allclose(view.direction, vlm.direction_scores(img, Q, POINTS), atol=1e-5)
    assert view.relevance == pytest.approx(vlm.relevance(img, Q), abs=1e-5)
    assert view.worth_exploring == pytest.approx(vlm.worth_exploring(img, Q), abs=1e-5)
    for probs in (view.answer, view.direction, [view.relevance, 1 - view.relevance]):
        assert np.sum(probs) == pytest.approx(1.0)
    assert view.call.n_queries == 4 and view.call.tokens_out == 4
    assert view.call.tokens_in > 4 * 16  # image tokens are counted
    assert all(o.method == "logprobs" for o in view.outputs.values())


def test_variable_number_of_choices_and_image_dependence(tiny):
    _, scorer = tiny
    vlm = PromptedVLM(scorer)
    for n in range(2, 7):
        p = vlm.answer(random_image(3), Q, [f"choice {i}" for i in range(n)])
        assert p.shape == (n,) and p.sum() == pytest.approx(1.0)
    a = vlm.answer(random_image(4), Q, CHOICES)
    b = vlm.answer(random_image(5), Q, CHOICES)
    assert np.abs(a - b).max() > 1e-4


def test_batch_size_one_gives_same_numbers(tiny):
    path, scorer = tiny
    small = HFScorer(HFConfig(model_path=str(path), max_batch_size=1))
    reqs = [PromptRequest(text=f"Question {i}? Answer Yes or No.", image=random_image(i), candidates=("Yes", "No"),
                          casefold=True) for i in range(3)]
    reqs.append(PromptRequest(text="text only? Answer Yes or No.", candidates=("Yes", "No")))
    big = scorer.score(reqs, top_k=5)
    one = small.score(reqs, top_k=5)
    for x, y in zip(big, one):
        np.testing.assert_allclose(x.candidate_logprobs, y.candidate_logprobs, atol=1e-5)
        assert len(x.top) == 5 and x.greedy[0] == x.top[0][0]
        assert x.top[0][1] >= x.top[-1][1]


def test_cache_replay_skips_the_model(tiny, tmp_path):
    _, scorer = tiny
    img = random_image(6)
    first = PromptedVLM(scorer, ResponseCache(tmp_path)).query_view(img, Q, CHOICES, POINTS)
    replay = PromptedVLM(scorer, ResponseCache(tmp_path))
    second = replay.query_view(img, Q, CHOICES, POINTS)
    assert second.call.n_cached == 4 and second.call.tokens_in == 0
    np.testing.assert_array_equal(first.answer, second.answer)


def test_unknown_label_and_missing_checkpoint(tiny, tmp_path):
    _, scorer = tiny
    with pytest.raises(ValueError, match="single token"):
        scorer.label_token_ids("Maybe")
    with pytest.raises(WeightsNotFoundError, match="not a local checkpoint"):
        make_vlm(VLMConfig(backend="hf", sections={"hf": HFConfig(model_path=str(tmp_path / "nothing"))}))


def vision_module(model):
    inner = model.model
    return getattr(inner, "visual", None) or getattr(inner, "vision_tower")


def test_shared_image_is_encoded_once_with_identical_numbers(tiny):
    path, scorer = tiny
    assert scorer.shares_image_encoding
    plain = HFScorer(HFConfig(model_path=str(path), share_image_encoding=False))
    seen = []
    hooks = [vision_module(s.model).register_forward_hook(lambda m, a, kw_out: seen.append(a[0].shape[0]))
             for s in (scorer, plain)]
    try:
        img = random_image(12)
        shared = PromptedVLM(scorer).query_view(img, Q, CHOICES, POINTS)
        n_shared = sum(seen)
        seen.clear()
        separate = PromptedVLM(plain).query_view(img, Q, CHOICES, POINTS)
        n_separate = sum(seen)
    finally:
        for h in hooks:
            h.remove()
    # raw view (3 queries) + annotated view (direction): 2 encodings instead of 4
    assert n_shared * 2 == n_separate
    np.testing.assert_allclose(shared.answer, separate.answer, atol=1e-5)
    np.testing.assert_allclose(shared.direction, separate.direction, atol=1e-5)
    assert shared.relevance == pytest.approx(separate.relevance, abs=1e-5)
    assert shared.worth_exploring == pytest.approx(separate.worth_exploring, abs=1e-5)


def test_dtype_is_configurable(tiny):
    path, scorer = tiny
    bf16 = HFScorer(HFConfig(model_path=str(path), dtype="bfloat16"))
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    img = random_image(13)
    p32 = PromptedVLM(scorer).answer(img, Q, CHOICES)
    p16 = PromptedVLM(bf16).answer(img, Q, CHOICES)
    assert p16.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(p16, p32, atol=0.1)  # same model, lower precision
