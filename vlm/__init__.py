"""VLM: one interface for the EQA queries (answer, relevance, direction_scores, worth_exploring; locate where
a backend adds it), each returning probabilities; visual prompting; response cache; backends builtin, hf,
openai, clip (vlm/backends/, one module each).

Importing `vlm` needs neither torch nor transformers; a backend imports them when it is selected.
"""
from vlm.cache import ResponseCache
from vlm.config import VLMConfig
from vlm.errors import VLMConnectionError, VLMError, VLMResponseError, WeightsNotFoundError
from vlm.interface import VLM, VLMInfo
from vlm.prompted import PromptedVLM
from vlm.prompts import PROMPT_VERSION
from vlm.queries import CallRecord, Query, QueryKind, QueryOutput, ViewResult
from vlm.registry import Backend, backend, backend_names
from vlm.visual_prompt import VisualPromptConfig, draw_labels, project_frame_points, project_points


def make_vlm(config: VLMConfig) -> VLM:
    """Build the configured backend (loads weights / checks the server config; no network at build time)."""
    cache = ResponseCache(config.cache_dir) if config.cache_dir else None
    return backend(config.backend).build(config.settings, cache, config.visual_prompt)


__all__ = [
    "VLM", "VLMInfo", "PromptedVLM", "ResponseCache", "VLMConfig", "VisualPromptConfig", "Backend", "backend",
    "backend_names", "Query", "QueryKind", "QueryOutput", "ViewResult", "CallRecord", "PROMPT_VERSION", "make_vlm",
    "project_points", "project_frame_points", "draw_labels", "VLMError", "VLMConnectionError", "VLMResponseError",
    "WeightsNotFoundError",
]
