"""vlm/ without torch: prompts, restricted softmax, cache, accounting, interface batching, configs, builtin."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vlm import prompts
from vlm.backends.builtin import WEIGHTS_FILE, check_checkpoint, load_builtin
from vlm.cache import ResponseCache, cache_key
from vlm.backends.builtin import BuiltinConfig
from vlm.backends.openai import OpenAIConfig
from vlm.config import VLMConfig
from vlm.errors import WeightsNotFoundError
from vlm.prompted import PromptedVLM
from vlm.probs import candidate_logprobs, fill_missing, normalize_token, restricted_softmax, sampled_logprobs
from vlm.queries import Query
from vlm.scoring import NextToken

ROOT = Path(__file__).resolve().parent.parent


class TableScorer:
    """A deterministic scorer for interface tests: logprob of label i is -(i + 1) * (1 + image mean / 255)."""

    backend = "table"
    model_id = "table-v1"
    probability_method = "logprobs"

    def __init__(self):
        self.calls: list[int] = []

    def score(self, requests, top_k=0):
        self.calls.append(len(requests))
        out = []
        for r in requests:
            scale = 1.0 + float(r.image.mean()) / 255.0
            lp = -np.arange(1, len(r.candidates) + 1, dtype=float) * scale
            out.append(NextToken(candidate_logprobs=lp, tokens_in=len(r.text.split()), tokens_out=1))
        return out


def image(seed=0, h=32, w=40):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_import_vlm_does_not_import_torch():
    code = ("import sys, vlm, vlm.server, vlm.prompted, vlm.backends, vlm.backends.builtin, vlm.backends.openai; "
            "vlm.VLMConfig(); vlm.VLMConfig(backend='openai', sections={'openai': vlm.backend('openai').config_class("
            "model='m')}); "
            "bad = [m for m in ('torch', 'transformers', 'open_clip') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_prompts_versioned_and_deterministic():
    text, labels = prompts.token_prompt("answer", "Is the  stove on?", ["yes", "no", "it's unclear"])
    assert labels == ("A", "B", "C")
    assert "A. yes\nB. no\nC. it's unclear" in text and "Is the stove on?" in text
    assert prompts.token_prompt("relevance", "q")[1] == ("Yes", "No")
    assert prompts.token_prompt("direction", "q", n_points=4)[1] == ("A", "B", "C", "D")
    assert "A, B, C, D" in prompts.token_prompt("direction", "q", n_points=4)[0]
    manifest = prompts.manifest()
    assert manifest["version"] == prompts.PROMPT_VERSION and json.dumps(manifest)
    with pytest.raises(ValueError):
        prompts.letters(7)


def test_restricted_softmax_and_token_matching():
    top = [(" A", -0.5), ("A", -2.0), ("B", -1.0), ("the", -0.1), ("yes", -3.0), ("\u0120C", -4.0)]
    lp = candidate_logprobs(top, ["A", "B", "C", "D"])
    assert lp[0] == pytest.approx(np.logaddexp(-0.5, -2.0))
    assert lp[1] == -1.0 and lp[2] == -4.0 and np.isnan(lp[3])
    filled, notes = fill_missing(lp, floor=-4.0)
    assert notes == ("missing:3",) and filled[3] == -4.0
    p = restricted_softmax(filled)
    assert p.sum() == pytest.approx(1.0)
    e = np.exp(filled)
    np.testing.assert_allclose(p, e / e.sum())
    yn = candidate_logprobs([("YES", -1.0), ("No", -2.0)], ["Yes", "No"], casefold=True)
    np.testing.assert_allclose(yn, [-1.0, -2.0])
    assert np.isnan(candidate_logprobs([("YES", -1.0)], ["Yes"])[0])  # case-sensitive by default
    np.testing.assert_allclose(restricted_softmax(np.array([-np.inf, -np.inf])), [0.5, 0.5])
    np.testing.assert_allclose(restricted_softmax(np.array([-np.inf, 0.0])), [0.0, 1.0])
    with pytest.raises(ValueError):
        restricted_softmax(np.array([np.nan, 0.0]))
    assert normalize_token("\u2581Yes ") == "Yes"
    s = sampled_logprobs(["A", "B.", "A", "banana"], ["A", "B", "C"])
    np.testing.assert_allclose(np.exp(s), [0.5, 0.25, 0.0])


def test_query_validation():
    img = image()
    with pytest.raises(ValueError, match="2 to 6 choices"):
        Query("answer", "q", ("only",)).validate(img.shape)
    with pytest.raises(ValueError, match="2 to 6 choices"):
        Query("answer", "q", tuple("abcdefg")).validate(img.shape)
    with pytest.raises(ValueError, match="outside"):
        Query("direction", "q", points_px=((40.0, 3.0),)).validate(img.shape)
    with pytest.raises(ValueError, match="non-empty"):
        Query("relevance", " ").validate(img.shape)
    vlm = PromptedVLM(TableScorer())
    with pytest.raises(ValueError, match="uint8"):
        vlm.relevance(img.astype(np.float32), "q")
    # locate is answered only by backends that score image cells (builtin): a clear refusal, no model call
    with pytest.raises(ValueError, match="does not answer 'locate'"):
        vlm.query_view(img, "q", kinds=("relevance", "locate"))
    assert vlm.accounting.totals()["calls"] == 0


def test_interface_batches_one_call_per_view_and_matches_single_calls():
    scorer = TableScorer()
    vlm = PromptedVLM(scorer)
    img = image(3)
    q, choices = "Where is the cat?", ["sofa", "bed", "table", "floor", "roof", "car"]
    pts = [(3, 4), (20, 10), (35, 30)]
    view = vlm.query_view(img, q, choices, pts)
    assert scorer.calls == [4]
    assert view.answer.shape == (6,) and view.direction.shape == (3,)
    assert view.answer.sum() == pytest.approx(1.0) and view.direction.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(view.answer, vlm.answer(img, q, choices))
    np.testing.assert_allclose(view.direction, vlm.direction_scores(img, q, pts))
    assert view.relevance == pytest.approx(vlm.relevance(img, q))
    assert view.worth_exploring == pytest.approx(vlm.worth_exploring(img, q))
    assert scorer.calls == [4, 1, 1, 1, 1]
    rec = view.to_record()
    assert rec["queries"]["answer"]["prompt"].startswith("You are a robot")
    assert rec["call"]["n_queries"] == 4 and json.dumps(rec)
    totals = vlm.accounting.totals()
    assert totals["calls"] == 5 and totals["queries"] == 8 and totals["tokens_out"] == 8
    assert totals["tokens_in"] > 0 and totals["latency_s"] > 0
    vlm.accounting.reset()
    assert vlm.accounting.totals()["calls"] == 0
    # the direction query sees the annotated image, not the raw one
    assert view.outputs["direction"].prompt != view.outputs["answer"].prompt


def test_single_point_needs_no_model_call():
    scorer = TableScorer()
    vlm = PromptedVLM(scorer)
    np.testing.assert_allclose(vlm.direction_scores(image(), "q", [(5, 5)]), [1.0])
    assert scorer.calls == []


def test_cache_hits_cost_nothing_and_are_identical(tmp_path):
    img = image(5)
    first = PromptedVLM(TableScorer(), ResponseCache(tmp_path))
    a = first.query_view(img, "q?", ["x", "y"], [(1, 1), (30, 20)])
    scorer = TableScorer()
    again = PromptedVLM(scorer, ResponseCache(tmp_path))  # a re-run in a fresh process
    b = again.query_view(img, "q?", ["x", "y"], [(1, 1), (30, 20)])
    assert scorer.calls == []
    assert b.call.n_cached == 4 and b.call.tokens_in == 0
    assert all(o.cached for o in b.outputs.values())
    np.testing.assert_array_equal(a.answer, b.answer)
    np.testing.assert_array_equal(a.direction, b.direction)
    # a different image or prompt misses
    again.relevance(image(6), "q?")
    again.relevance(img, "another question?")
    assert scorer.calls == [1, 1]


def test_cache_key_and_corrupt_entries(tmp_path):
    k1 = cache_key("hf", "m", "abc", "p", ["A", "B"])
    assert k1 != cache_key("hf", "m2", "abc", "p", ["A", "B"]) != cache_key("hf", "m", "abd", "p", ["A", "B"])
    cache = ResponseCache(tmp_path)
    cache.put(k1, {"x": 1})
    assert cache.get(k1) == {"x": 1} and len(cache) == 1
    (tmp_path / k1[:2] / f"{k1}.json").write_text("{not json")
    assert cache.get(k1) is None


def test_configs_validate():
    from vlm.backends.hf import HFConfig

    with pytest.raises(ValueError, match="unknown VLM backend 'gpt'; known: builtin, clip, hf, openai"):
        VLMConfig(backend="gpt")
    with pytest.raises(ValueError, match="model_path"):
        VLMConfig(backend="hf")
    with pytest.raises(ValueError, match="dtype"):
        HFConfig(model_path="x", dtype="int3")
    with pytest.raises(ValueError, match="openai.model"):
        VLMConfig(backend="openai")
    with pytest.raises(ValueError, match="must be a OpenAIConfig"):
        VLMConfig(backend="openai", sections={"openai": HFConfig(model_path="x")})
    with pytest.raises(ValueError, match="base_url"):
        OpenAIConfig(base_url="ftp://x", model="m")
    with pytest.raises(ValueError, match="logprobs_mode"):
        OpenAIConfig(model="m", logprobs_mode="guess")
    from eqa.config import from_dict

    from eqa.config import to_dict

    data = {"backend": "openai", "openai": {"model": "m", "timeout_s": 5}, "visual_prompt": {"margin_px": 3}}
    cfg = from_dict(VLMConfig, data)
    assert cfg.settings.timeout_s == 5.0 and isinstance(cfg.settings.timeout_s, float)
    assert cfg.visual_prompt.margin_px == 3 and set(cfg.sections) == {"openai"}
    assert from_dict(VLMConfig, to_dict(cfg)) == cfg and to_dict(cfg)["openai"]["model"] == "m"
    with pytest.raises(ValueError, match="unknown config key 'gpt'"):
        from_dict(VLMConfig, {"gpt": {}})


def test_a_new_backend_is_one_module(tmp_path, monkeypatch):
    """A module declaring BACKEND is a backend: its YAML section is typed by its config class and make_vlm
    builds it, with no edit anywhere else."""
    import vlm.registry
    from eqa.config import from_dict
    from vlm import make_vlm

    package = tmp_path / "extra_backends"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "echo.py").write_text(
        "from dataclasses import dataclass\n"
        "from vlm.prompted import PromptedVLM\n"
        "from vlm.registry import Backend\n"
        "from vlm.scoring import NextToken\n"
        "import numpy as np\n\n"
        "@dataclass\nclass EchoConfig:\n    scale: float = 1.0\n\n"
        "class EchoScorer:\n    backend, model_id, probability_method = 'echo', 'echo-1', 'logprobs'\n"
        "    def __init__(self, config):\n        self.config = config\n"
        "    def score(self, requests, top_k=0):\n"
        "        return [NextToken(-np.arange(len(r.candidates), dtype=float) * self.config.scale) for r in requests]\n\n"
        "BACKEND = Backend('echo', EchoConfig, build=lambda s, cache, vp: PromptedVLM(EchoScorer(s), cache, vp),"
        " serve=EchoScorer)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(vlm.registry, "PACKAGE", "extra_backends")
    cfg = from_dict(VLMConfig, {"backend": "echo", "echo": {"scale": 2}})
    assert cfg.settings.scale == 2.0
    v = make_vlm(cfg)
    assert v.info.backend == "echo" and v.answer(image(), "Q?", ["a", "b"]) == pytest.approx(
        np.exp([0.0, -2.0]) / np.exp([0.0, -2.0]).sum())


def test_builtin_missing_weights_is_a_clear_error(tmp_path):
    from vlm import make_vlm

    with pytest.raises(WeightsNotFoundError, match="builtin_vlm.pt"):
        make_vlm(VLMConfig(sections={"builtin": BuiltinConfig(weights=str(tmp_path / "missing" / WEIGHTS_FILE.name))}))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "w.pt")):
        load_builtin(BuiltinConfig(weights=str(tmp_path / "w.pt")))
    with pytest.raises(ValueError, match="lacks keys"):
        check_checkpoint({"format": "x"}, tmp_path)
    with pytest.raises(ValueError, match="format"):
        check_checkpoint({k: "x" for k in ("format", "format_version", "architecture", "model_id",
                                           "prompt_version", "config", "state_dict")}, tmp_path)


def test_make_vlm_gives_the_backend_the_configured_cache(tmp_path):
    from vlm import VLMConfig, make_vlm
    from vlm.backends.openai import OpenAIConfig

    sections = {"openai": OpenAIConfig(model="m", api_key_env=None)}
    vlm = make_vlm(VLMConfig(backend="openai", sections=sections, cache_dir=str(tmp_path / "cache")))
    assert isinstance(vlm.cache, ResponseCache) and vlm.cache.root == tmp_path / "cache"
    assert make_vlm(VLMConfig(backend="openai", sections=sections)).cache is None
