"""open_clip backend: probabilities from image-text similarity (no token log-probabilities).

answer: softmax over choice statements; relevance / worth_exploring: softmax over a (yes, no) statement
pair; direction: square crops around each point scored against one question statement. Scores are
cosine similarities times the model's logit scale. One vision forward per view (the image and every
crop together) and one text forward for all statements. Weights come from a local file only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from mapping.bounds import Range, check_bounds
from vlm import prompts
from vlm.cache import ResponseCache, files_digest
from vlm.errors import WeightsNotFoundError
from vlm.interface import VLM, Prepared, Scored, VLMInfo
from vlm.queries import Query, QueryKind
from vlm.registry import Backend

METHOD = "clip-similarity"


@dataclass
class ClipConfig:
    """open_clip backend (`vlm.clip`): architecture name and a local weights file. crop_fraction: side of the
    square crop scored around each direction point, as a fraction of min(H, W)."""

    model_name: str = "ViT-B-32"
    weights: str = ""
    device: str = "cpu"
    precision: str = "fp32"
    crop_fraction: Annotated[float, Range(ge=0.05, le=1)] = 0.35
    model_id: Optional[str] = None

    def __post_init__(self) -> None:
        check_bounds(self)
        if not self.weights:
            raise ValueError("the clip backend needs clip.weights (a local open_clip weights file)")
        if not self.model_name or self.model_name.startswith(("hf-hub:", "local-dir:")):
            raise ValueError(f"clip.model_name must be a built-in open_clip architecture, got {self.model_name!r}")
        if self.precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"clip.precision must be fp32, fp16 or bf16, got {self.precision!r}")


def crop_boxes(height: int, width: int, points_px: Sequence[Sequence[float]],
               fraction: float) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) square crops of side fraction*min(H, W) around each (u, v), kept inside the image."""
    side = max(2, int(round(fraction * min(height, width))))
    boxes = []
    for u, v in points_px:
        left = int(np.clip(round(u - side / 2), 0, max(width - side, 0)))
        top = int(np.clip(round(v - side / 2), 0, max(height - side, 0)))
        boxes.append((left, top, min(left + side, width), min(top + side, height)))
    return boxes


class ClipVLM(VLM):
    """VLM over an open_clip model; probability_method 'clip-similarity'."""

    def __init__(self, config: ClipConfig, cache: Optional[ResponseCache] = None) -> None:
        import open_clip

        path = Path(config.weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"clip.weights file not found: {str(path)!r} (weights are never downloaded)")
        model, _, preprocess = open_clip.create_model_and_transforms(
            config.model_name, pretrained=str(path), device=config.device, precision=config.precision)
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(config.model_name)
        self.config = config
        self.device = torch.device(config.device)
        model_id = f"{config.model_id or config.model_name}@{files_digest([path])}"  # content, not name and size
        super().__init__(VLMInfo("clip", model_id, METHOD), cache)

    def _prepare(self, image: np.ndarray, image_sha: str, query: Query) -> Prepared:
        statements = prompts.clip_statements(query.kind, query.question, query.choices)
        if query.kind == QueryKind.ANSWER:
            labels = prompts.letters(len(query.choices))
        elif query.kind == QueryKind.DIRECTION:
            labels = prompts.letters(len(query.points_px))
        else:
            labels = prompts.YES_NO
        prompt = "\n".join(statements)
        payload = None
        if query.kind == QueryKind.DIRECTION:
            boxes = crop_boxes(image.shape[0], image.shape[1], query.points_px, self.config.crop_fraction)
            prompt += "\ncrops:" + ";".join(",".join(map(str, b)) for b in boxes)
            payload = boxes
        return Prepared(query, labels, prompt, image, image_sha, payload=(statements, payload))

    @torch.inference_mode()
    def _score(self, prepared: Sequence[Prepared]) -> list[Scored]:
        # every query of one call shares the image: encode it once, together with all crops
        pil = Image.fromarray(prepared[0].image)
        views = [pil]
        crop_slices = []
        for p in prepared:
            boxes = p.payload[1] or []
            crop_slices.append((len(views), len(views) + len(boxes)))
            views.extend(pil.crop(b) for b in boxes)
        pixels = torch.stack([self.preprocess(v) for v in views]).to(self.device)
        texts = [s for p in prepared for s in p.payload[0]]
        tokens = self.tokenizer(texts).to(self.device)
        img = torch.nn.functional.normalize(self.model.encode_image(pixels).float(), dim=-1)
        txt = torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)
        scale = float(self.model.logit_scale.exp())
        out, t = [], 0
        for p, (c0, c1) in zip(prepared, crop_slices):
            n = len(p.payload[0])
            sims = txt[t:t + n]
            t += n
            if p.query.kind == QueryKind.DIRECTION:
                scores = (img[c0:c1] @ sims[0]) * scale
            else:
                scores = (sims @ img[0]) * scale
            n_tokens = int((tokens[t - n:t] != 0).sum())
            out.append(Scored(scores.cpu().double().numpy(), METHOD, (), n_tokens, 0))
        return out


BACKEND = Backend("clip", ClipConfig, build=lambda settings, cache, visual_prompt: ClipVLM(settings, cache))
