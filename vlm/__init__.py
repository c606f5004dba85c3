"""VLM: one interface for the four EQA queries (answer, relevance, direction_scores, worth_exploring),
each returning probabilities; visual prompting; response cache; backends builtin, hf, openai, clip.

Importing `vlm` needs neither torch nor transformers; backends import them when built.
"""
from vlm.config import BuiltinConfig, ClipConfig, HFConfig, OpenAIConfig, VLMConfig
from vlm.errors import VLMConnectionError, VLMError, VLMResponseError, WeightsNotFoundError
from vlm.cache import ResponseCache
from vlm.interface import VLM, VLMInfo
from vlm.prompted import PromptedVLM
from vlm.prompts import PROMPT_VERSION
from vlm.queries import CallRecord, Query, QueryOutput, ViewResult
from vlm.visual_prompt import VisualPromptConfig, draw_labels, project_frame_points, project_points


def make_vlm(config: VLMConfig) -> VLM:
    """Build the configured backend (see vlm.backends.make_vlm)."""
    from vlm.backends import make_vlm as _make

    return _make(config)


__all__ = [
    "VLM", "VLMInfo", "PromptedVLM", "ResponseCache", "VLMConfig", "HFConfig", "OpenAIConfig", "ClipConfig", "BuiltinConfig", "VisualPromptConfig",
    "Query", "QueryOutput", "ViewResult", "CallRecord", "PROMPT_VERSION", "make_vlm", "project_points",
    "project_frame_points", "draw_labels", "VLMError", "VLMConnectionError", "VLMResponseError",
    "WeightsNotFoundError",
]
