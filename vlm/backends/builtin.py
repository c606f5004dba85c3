"""The builtin backend's loading contract (the compact model itself ships in a later release).

Contract: the weights file `vlm/weights/builtin_vlm.pt` (or `builtin.weights`) is a torch checkpoint
dict loadable with `torch.load(weights_only=True)` holding
  format="confident-eqa-builtin-vlm", format_version=1, architecture=<name in ARCHITECTURES>,
  model_id=<str>, prompt_version=<vlm.prompts.PROMPT_VERSION it was trained with>, config=<dict>,
  state_dict=<tensors>,
and `MODEL_CARD.md` lies next to it (training data, metrics, license). The loaded model is a
TokenScorer (next-token log-probabilities over the candidate labels), served by PromptedVLM and
`eqa serve-vlm` like the hf backend. Until the weights ship, loading raises WeightsNotFoundError
naming the missing file.
"""
from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from vlm.config import BuiltinConfig
from vlm.errors import WeightsNotFoundError
from vlm.prompts import PROMPT_VERSION

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "builtin_vlm.pt"
MODEL_CARD_NAME = "MODEL_CARD.md"
CHECKPOINT_FORMAT = "confident-eqa-builtin-vlm"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "architecture", "model_id", "prompt_version", "config", "state_dict")

# architecture name -> "module:factory" building a TokenScorer from (checkpoint, device); filled by the later issue
ARCHITECTURES: MappingProxyType = MappingProxyType({})


def weights_path(config: BuiltinConfig) -> Path:
    return Path(config.weights).expanduser() if config.weights else WEIGHTS_FILE


def check_checkpoint(ckpt: object, path: Path) -> dict:
    """Validate a loaded checkpoint dict against the contract; ValueError naming the problem."""
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: builtin checkpoint must be a dict, got {type(ckpt).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: builtin checkpoint lacks keys {missing}")
    if ckpt["format"] != CHECKPOINT_FORMAT or ckpt["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{path}: format {ckpt['format']!r} v{ckpt['format_version']} is not "
                         f"{CHECKPOINT_FORMAT!r} v{FORMAT_VERSION}")
    if ckpt["prompt_version"] != PROMPT_VERSION:
        raise ValueError(f"{path}: trained with prompts {ckpt['prompt_version']!r}, this code has {PROMPT_VERSION!r}")
    return ckpt


def load_builtin(config: BuiltinConfig):
    """Load the builtin model as a TokenScorer, or raise a clear error (missing weights / model card)."""
    path = weights_path(config)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"builtin VLM weights file not found: {path}. The builtin model ships in a later release; "
            "until then choose vlm.backend hf, openai or clip (see vlm/weights/README.md)")
    card = path.parent / MODEL_CARD_NAME
    if not card.is_file():
        raise WeightsNotFoundError(f"builtin VLM model card not found: {card} (it must ship next to {path.name})")
    import importlib

    import torch

    ckpt = check_checkpoint(torch.load(path, map_location="cpu", weights_only=True), path)
    factory = ARCHITECTURES.get(ckpt["architecture"])
    if factory is None:
        raise ValueError(f"{path}: builtin architecture {ckpt['architecture']!r} is not implemented in this "
                         f"version (known: {sorted(ARCHITECTURES)})")
    module, name = factory.split(":")
    return getattr(importlib.import_module(module), name)(ckpt, config.device)
