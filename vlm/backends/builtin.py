"""The builtin backend: the compact model trained on the built-in simulator (`eqa train-vlm`), shipped
in vlm/weights/. Loading contract:

Contract: the weights file `vlm/weights/builtin_vlm.pt` (or `builtin.weights`) is a torch checkpoint
dict loadable with `torch.load(weights_only=True)` holding
  format="confident-eqa-builtin-vlm", format_version=1, architecture=<name in ARCHITECTURES>,
  model_id=<str>, prompt_version=<vlm.prompts.PROMPT_VERSION it was trained with>, config=<dict>,
  state_dict=<tensors>,
and `MODEL_CARD.md` lies next to it (training data, metrics, license). A missing file raises
WeightsNotFoundError naming it.

The model is not token-based: `BuiltinVLM` (a VLM subclass like ClipVLM) receives the queries with
their pixel points and scores all of a view's queries in one forward pass (one image encoding). It
records the exact `vlm.prompts` prompts like the token backends (direction prompts also list the
points), and its probabilities are softmaxes of the trained heads' logits (method 'builtin-heads';
relevance / worth-exploring: sigmoid of a logit = softmax over (logit, 0) for (Yes, No)).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Optional, Sequence

import numpy as np

from mapping.bounds import Range, check_bounds
from vlm import prompts
from vlm.cache import ResponseCache
from vlm.errors import WeightsNotFoundError
from vlm.interface import VLM, Prepared, Scored, VLMInfo
from vlm.prompts import PROMPT_VERSION
from vlm.queries import Query, QueryKind
from vlm.registry import Backend

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "builtin_vlm.pt"
MODEL_CARD_NAME = "MODEL_CARD.md"
CHECKPOINT_FORMAT = "confident-eqa-builtin-vlm"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "architecture", "model_id", "prompt_version", "config", "state_dict")

METHOD = "builtin-heads"


@dataclass
class BuiltinConfig:
    """The default compact model (`vlm.builtin`): weights file (default: the one shipped in vlm/weights/).
    named_colour_power: the relevance of a question that names exactly one colour ("Where is the white sink?")
    is multiplied by the colour head's probability of that colour where the grounded head looks, raised to this
    power (0: the relevance head alone; vlm.builtin_model.runtime.BuiltinModel). The default was chosen on
    tuning-split questions (bench/RESULTS.md); the shipped calibrations are made with it."""

    weights: Optional[str] = None
    device: str = "cpu"
    named_colour_power: Annotated[float, Range(ge=0, le=10)] = 0.5

    def __post_init__(self) -> None:
        check_bounds(self)


# architecture name -> "module:factory" building the loaded model from (checkpoint, device, named_colour_power)
ARCHITECTURES: MappingProxyType = MappingProxyType({
    "eqa-cnn-xattn-v3": "vlm.builtin_model.runtime:BuiltinModel",  # with the colour head (v4-v6), count head (v6)
})


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
    """Load the builtin model (vlm.builtin_model.runtime.BuiltinModel), or raise a clear error (missing
    weights / model card, bad checkpoint)."""
    path = weights_path(config)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"builtin VLM weights file not found: {path}. Reproduce the shipped file with "
            "`eqa train-vlm --config train_vlm`, or choose vlm.backend hf, openai or clip (see vlm/weights/README.md)")
    card = path.parent / MODEL_CARD_NAME
    if not card.is_file():
        raise WeightsNotFoundError(f"builtin VLM model card not found: {card} (it must ship next to {path.name})")
    import importlib

    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file fails in many ways inside torch
        detail = str(err).split(". ")[0].splitlines()[0][:120] if str(err) else "no details"
        raise ValueError(f"{path}: not a readable builtin checkpoint, truncated or not written by `eqa train-vlm` "
                         f"({type(err).__name__}: {detail})") from None
    ckpt = check_checkpoint(loaded, path)
    factory = ARCHITECTURES.get(ckpt["architecture"])
    if factory is None:
        raise ValueError(f"{path}: builtin architecture {ckpt['architecture']!r} is not implemented in this "
                         f"version (known: {sorted(ARCHITECTURES)})")
    module, name = factory.split(":")
    return getattr(importlib.import_module(module), name)(ckpt, config.device, config.named_colour_power)


def direction_prompt(question: str, points_px: Sequence[Sequence[float]]) -> str:
    """The token backends' direction prompt plus the points themselves (they are not drawn for this model)."""
    pts = ";".join(f"{u:.1f},{v:.1f}" for u, v in points_px)
    return prompts.direction_prompt(question, len(points_px)) + f"\npoints_px:{pts}"


class BuiltinVLM(VLM):
    """VLM over the builtin model; all queries of one view share one image encoding. It also answers
    `locate` (where the question's target is: the grounded attention head over the model's image cells)."""

    supported_kinds = tuple(QueryKind)

    def __init__(self, model, cache: Optional[ResponseCache] = None) -> None:
        self.model = model
        super().__init__(VLMInfo("builtin", model.scoring_id, METHOD), cache)

    @classmethod
    def from_config(cls, config: BuiltinConfig, cache: Optional[ResponseCache] = None) -> "BuiltinVLM":
        return cls(load_builtin(config), cache)

    def _prepare(self, image: np.ndarray, image_sha: str, query: Query) -> Prepared:
        if query.kind == QueryKind.DIRECTION:
            labels = prompts.letters(len(query.points_px))
            prompt = direction_prompt(query.question, query.points_px)
        elif query.kind == QueryKind.LOCATE:
            h, w = image.shape[:2]
            labels = self.model.cell_labels(w, h)
            prompt = prompts.locate_prompt(query.question)
        else:
            prompt, labels = prompts.token_prompt(query.kind, query.question, query.choices)
        return Prepared(query, labels, prompt, image, image_sha)

    def _score(self, prepared: Sequence[Prepared]) -> list[Scored]:
        image = prepared[0].image
        queries = [(p.query.kind, p.query.question, p.query.choices, p.query.points_px) for p in prepared]
        return [Scored(s, METHOD) for s in self.model.scores(image, queries)]


class BuiltinTokenScorer:
    """TokenScorer view of the builtin model for `eqa serve-vlm`: reads the question (and choices) back
    from the `vlm.prompts` answer / relevance / worth-exploring prompts and returns the heads' log-
    probabilities for the requested labels. Direction prompts are refused (the model needs the pixel
    points, which the token protocol only carries drawn into the image): use BuiltinVLM for those."""

    backend = "builtin"
    probability_method = "logprobs"

    def __init__(self, model) -> None:
        self.model = model
        self.model_id = model.scoring_id

    @staticmethod
    def parse(text: str) -> tuple[str, str, tuple[str, ...]]:
        """(kind, question, choices) of a vlm.prompts token prompt; ValueError for anything else."""
        lines = text.split("\n")
        q = next((ln[len("Question: "):] for ln in lines if ln.startswith("Question: ")), None)
        if q is None:
            raise ValueError("builtin scorer: prompt has no 'Question: ' line "
                             "(only vlm.prompts prompts are understood)")
        if "Choices:" in lines:
            i = lines.index("Choices:") + 1
            choices = []
            while i < len(lines) and len(lines[i]) > 3 and lines[i][0] in prompts.LETTERS and lines[i][1:3] == ". ":
                choices.append(lines[i][3:])
                i += 1
            return QueryKind.ANSWER, q, tuple(choices)
        if "lettered circles" in text:
            raise ValueError("builtin scorer: direction prompts need the pixel points; use the builtin VLM "
                             "backend (vlm.backend: builtin) instead of the token protocol")
        if "answered confidently" in text:
            return QueryKind.RELEVANCE, q, ()
        if "worth exploring further" in text:
            return QueryKind.WORTH_EXPLORING, q, ()
        raise ValueError("builtin scorer: unrecognised prompt (only vlm.prompts prompts are understood)")

    def score(self, requests, top_k: int = 0):
        from vlm.scoring import NextToken

        out = []
        for r in requests:
            if r.image is None:
                raise ValueError("builtin scorer needs an image")
            kind, q, choices = self.parse(r.text)
            s = self.model.scores(r.image, [(kind, q, choices, None)])[0]
            labels = prompts.letters(len(choices)) if choices else prompts.YES_NO
            logp = s - np.logaddexp.reduce(s)
            table = {(lab.casefold() if r.casefold else lab): float(v) for lab, v in zip(labels, logp)}
            cands = np.array([table.get(c.casefold() if r.casefold else c, -np.inf) for c in r.candidates])
            order = np.argsort(-logp)
            top = [(labels[i], float(logp[i])) for i in order[:top_k]] if top_k else []
            out.append(NextToken(cands, top, (labels[order[0]], float(logp[order[0]])), 0, 1))
        return out


BACKEND = Backend("builtin", BuiltinConfig, build=lambda settings, cache, visual_prompt: BuiltinVLM.from_config(
    settings, cache), serve=lambda settings: BuiltinTokenScorer(load_builtin(settings)))
