"""Typed VLM configs (one dataclass per backend) with validation; YAML-loadable via eqa.config."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from vlm.visual_prompt import VisualPromptConfig

BACKENDS = ("builtin", "hf", "openai", "clip")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class HFConfig:
    """transformers backend: a local checkpoint directory (never downloaded). max_batch_size: queries
    per forward pass. model_id: name used in cache keys and records (default: the directory name).
    share_image_encoding: encode an image shared by several queries once (where the model allows)."""

    model_path: str = ""
    device: str = "cpu"
    dtype: str = "float32"
    max_batch_size: int = 8
    attn_implementation: Optional[str] = None
    model_id: Optional[str] = None
    share_image_encoding: bool = True

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"hf.dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.max_batch_size < 1:
            raise ValueError(f"hf.max_batch_size must be >= 1, got {self.max_batch_size}")
        if not self.device:
            raise ValueError("hf.device must be set (e.g. 'cpu', 'cuda', 'cuda:1')")


@dataclass
class OpenAIConfig:
    """OpenAI-compatible chat-completions client.

    base_url: up to and including /v1. api_key_env: NAME of the environment variable holding the key
    (None: no key sent). timeout_s: per request. Retries (connection errors, 429, 5xx): max_retries with
    exponential backoff from backoff_s up to backoff_max_s seconds. logprobs_mode: 'required' (error if
    the server gives none) or 'sample' (declared fallback: sample_k replies at sample_temperature,
    label frequencies). max_concurrency: parallel requests for one view's queries.
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = ""
    api_key_env: Optional[str] = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    top_logprobs: int = 20
    max_concurrency: int = 4
    logprobs_mode: str = "required"
    sample_k: int = 8
    sample_temperature: float = 1.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"openai.base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.model:
            raise ValueError("openai.model must name the served model")
        if not self.timeout_s > 0:
            raise ValueError(f"openai.timeout_s must be > 0, got {self.timeout_s}")
        if self.max_retries < 0 or self.backoff_s < 0 or self.backoff_max_s < self.backoff_s:
            raise ValueError("openai retries need max_retries >= 0 and 0 <= backoff_s <= backoff_max_s")
        if not 1 <= self.top_logprobs:
            raise ValueError(f"openai.top_logprobs must be >= 1, got {self.top_logprobs}")
        if self.max_concurrency < 1:
            raise ValueError(f"openai.max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.logprobs_mode not in ("required", "sample"):
            raise ValueError(f"openai.logprobs_mode must be 'required' or 'sample', got {self.logprobs_mode!r}")
        if self.sample_k < 1 or not self.sample_temperature > 0:
            raise ValueError("openai.sample_k must be >= 1 and sample_temperature > 0")


@dataclass
class ClipConfig:
    """open_clip backend: architecture name and a local weights file. crop_fraction: side of the square
    crop scored around each direction point, as a fraction of min(H, W)."""

    model_name: str = "ViT-B-32"
    weights: str = ""
    device: str = "cpu"
    precision: str = "fp32"
    crop_fraction: float = 0.35
    model_id: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.model_name or self.model_name.startswith(("hf-hub:", "local-dir:")):
            raise ValueError(f"clip.model_name must be a built-in open_clip architecture, got {self.model_name!r}")
        if not 0.05 <= self.crop_fraction <= 1.0:
            raise ValueError(f"clip.crop_fraction must be in [0.05, 1], got {self.crop_fraction}")
        if self.precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"clip.precision must be fp32, fp16 or bf16, got {self.precision!r}")


@dataclass
class BuiltinConfig:
    """The default compact model: weights file (default: the one shipped in vlm/weights/)."""

    weights: Optional[str] = None
    device: str = "cpu"


@dataclass
class VLMConfig:
    """Which backend, its settings, visual prompting, and the response cache directory (None: off)."""

    backend: str = "builtin"
    hf: HFConfig = field(default_factory=HFConfig)
    openai: Optional[OpenAIConfig] = None
    clip: ClipConfig = field(default_factory=ClipConfig)
    builtin: BuiltinConfig = field(default_factory=BuiltinConfig)
    visual_prompt: VisualPromptConfig = field(default_factory=VisualPromptConfig)
    cache_dir: Optional[str] = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"vlm.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend == "openai" and self.openai is None:
            raise ValueError("vlm.backend 'openai' needs an openai section (base_url, model)")
        if self.backend == "hf" and not self.hf.model_path:
            raise ValueError("vlm.backend 'hf' needs hf.model_path (a local checkpoint directory)")
        if self.backend == "clip" and not self.clip.weights:
            raise ValueError("vlm.backend 'clip' needs clip.weights (a local open_clip weights file)")
