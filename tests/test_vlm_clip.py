"""clip backend with seeded random ViT-B-32 weights from a local file."""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from vlm_fixtures import build_random_clip_weights, random_image  # noqa: E402

from vlm import VLMConfig, make_vlm  # noqa: E402
from vlm.backends.clip import ClipConfig, crop_boxes  # noqa: E402
from vlm.cache import ResponseCache  # noqa: E402
from vlm.errors import WeightsNotFoundError  # noqa: E402

Q = "Is there a red chair in the bedroom?"
CHOICES = ["yes", "no", "there is no bedroom"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return build_random_clip_weights(tmp_path_factory.mktemp("clip") / "vit_b32_random.pt")


@pytest.fixture(scope="module")
def clip_vlm(weights):
    return make_vlm(VLMConfig(backend="clip", sections={"clip": ClipConfig(weights=str(weights))}))


def two_region_image() -> np.ndarray:
    img = np.zeros((96, 128, 3), np.uint8)
    img[:, :64] = random_image(11, 96, 64)
    img[:, 64:] = (200, 30, 30)
    return img


def test_probabilities_and_batching_equal_single_calls(clip_vlm):
    img = random_image(1, 96, 128)
    pts = [(20, 20), (100, 70), (64, 48)]
    view = clip_vlm.query_view(img, Q, CHOICES, pts)
    assert view.answer.shape == (3,) and view.answer.sum() == pytest.approx(1.0)
    assert view.direction.shape == (3,) and view.direction.sum() == pytest.approx(1.0)
    assert 0 < view.relevance < 1 and 0 < view.worth_exploring < 1
    np.testing.assert_allclose(view.answer, clip_vlm.answer(img, Q, CHOICES), atol=1e-5)
    np.testing.assert_allclose(view.direction, clip_vlm.direction_scores(img, Q, pts), atol=1e-5)
    assert view.relevance == pytest.approx(clip_vlm.relevance(img, Q), abs=1e-5)
    assert view.worth_exploring == pytest.approx(clip_vlm.worth_exploring(img, Q), abs=1e-5)
    assert clip_vlm.info.probability_method == "clip-similarity"
    assert all(o.method == "clip-similarity" for o in view.outputs.values())


def test_answer_matches_manual_similarity(clip_vlm):
    from PIL import Image

    from vlm.prompts import clip_statements

    img = random_image(2, 96, 128)
    m = clip_vlm.model
    with torch.no_grad():
        iv = torch.nn.functional.normalize(m.encode_image(clip_vlm.preprocess(Image.fromarray(img))[None]), dim=-1)
        tokens = clip_vlm.tokenizer(list(clip_statements("answer", Q, CHOICES)))
        tv = torch.nn.functional.normalize(m.encode_text(tokens), dim=-1)
        expected = torch.softmax(m.logit_scale.exp() * (tv @ iv[0]), 0).numpy()
    np.testing.assert_allclose(clip_vlm.answer(img, Q, CHOICES), expected, atol=1e-5)


def test_direction_scores_follow_the_crop_content(clip_vlm):
    img = two_region_image()
    left, right = (30, 48), (100, 48)
    p = clip_vlm.direction_scores(img, Q, [left, right])
    q = clip_vlm.direction_scores(img, Q, [right, left])
    np.testing.assert_allclose(p, q[::-1], atol=1e-6)
    assert abs(p[0] - p[1]) > 1e-4  # different crops, different scores
    same = clip_vlm.direction_scores(img, Q, [(100, 30), (100, 60)])  # both crops inside the uniform red half
    np.testing.assert_allclose(same, [0.5, 0.5], atol=1e-4)


def test_crop_boxes_stay_inside_the_image():
    boxes = crop_boxes(96, 128, [(0, 0), (127, 95), (64, 48)], 0.5)
    assert boxes == [(0, 0, 48, 48), (80, 48, 128, 96), (40, 24, 88, 72)]


def test_cache_and_missing_weights(clip_vlm, tmp_path):
    vlm = copy.copy(clip_vlm)  # the loaded model with a response cache (make_vlm's cache_dir), without a reload
    vlm.cache = ResponseCache(tmp_path)
    img = random_image(3, 64, 64)
    a = vlm.query_view(img, Q, CHOICES, [(10, 10), (50, 50)])
    b = vlm.query_view(img, Q, CHOICES, [(10, 10), (50, 50)])
    assert b.call.n_cached == 4 and a.call.n_cached == 0
    np.testing.assert_array_equal(a.answer, b.answer)
    with pytest.raises(WeightsNotFoundError, match="nope.pt"):
        make_vlm(VLMConfig(backend="clip", sections={"clip": ClipConfig(weights=str(tmp_path / "nope.pt"))}))
