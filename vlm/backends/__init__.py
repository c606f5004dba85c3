"""VLM backends. Each heavy dependency (torch, transformers, open_clip) is imported only inside
the backend module that needs it; `make_vlm` imports the selected one lazily."""
from __future__ import annotations

from vlm.cache import ResponseCache
from vlm.config import VLMConfig
from vlm.interface import VLM
from vlm.scoring import TokenScorer


def make_scorer(config: VLMConfig) -> TokenScorer:
    """The TokenScorer of a token-scoring backend (hf, openai, builtin); ValueError for clip."""
    if config.backend == "hf":
        from vlm.backends.hf import HFScorer

        return HFScorer(config.hf)
    if config.backend == "openai":
        from vlm.backends.openai_compat import OpenAIScorer

        return OpenAIScorer(config.openai)
    if config.backend == "builtin":
        from vlm.backends.builtin import BuiltinTokenScorer, load_builtin

        return BuiltinTokenScorer(load_builtin(config.builtin))
    raise ValueError(f"backend {config.backend!r} does not score tokens (serve-vlm needs hf, openai or builtin)")


def make_vlm(config: VLMConfig) -> VLM:
    """Build the configured VLM (loads weights / checks the server config; no network at build time)."""
    cache = ResponseCache(config.cache_dir) if config.cache_dir else None
    if config.backend == "clip":
        from vlm.backends.clip import ClipVLM

        return ClipVLM(config.clip, cache)
    if config.backend == "builtin":
        from vlm.backends.builtin import BuiltinVLM

        return BuiltinVLM.from_config(config.builtin, cache)
    from vlm.prompted import PromptedVLM

    return PromptedVLM(make_scorer(config), cache, config.visual_prompt)
