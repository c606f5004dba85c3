"""The loaded builtin model: resizes a view to the network's input once, encodes it once, and runs any
mix of the queries (one fused row per query; `locate` included) in a single forward pass. Relevance can be
checked against a colour the question names (BuiltinModel, named_colour_power)."""
from __future__ import annotations

import functools
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vlm.builtin_model.model import COLOUR_EPS, COLOUR_WORDS, STRIDE, feature_grid, model_from_checkpoint
from vlm.builtin_model.tensors import norm_points, question_tensors
from vlm.builtin_model.vocab import tokenize
from vlm.queries import MAX_CHOICES, QueryKind, cell_label


@functools.lru_cache(maxsize=8)
def _cell_labels(net_width: int, net_height: int, width: int, height: int) -> tuple[str, ...]:
    """BuiltinModel.cell_labels, computed once per (network, image) size: every view of a camera shares them."""
    fh, fw = feature_grid(net_width, net_height)
    rows, cols = np.mgrid[0:fh, 0:fw]
    u = (cols.ravel() + 0.5) * STRIDE * width / net_width - 0.5
    v = (rows.ravel() + 0.5) * STRIDE * height / net_height - 0.5
    return tuple(cell_label(min(max(a, 0.0), width - 1.0), min(max(b, 0.0), height - 1.0)) for a, b in zip(u, v))


def named_colour(question: str) -> int:
    """Index in COLOUR_WORDS of the one colour a question names ("Where is the white sink?"); -1 when it names
    none or several."""
    named = {COLOUR_WORDS.index(w) for w in tokenize(question) if w in COLOUR_WORDS}
    return named.pop() if len(named) == 1 else -1


def colour_factor(colour_prob, power: float):
    """The factor min(1, c + COLOUR_EPS) ** power that the colour check puts on relevance (c: the pooled
    probability of the named colour; floats or numpy arrays)."""
    return np.minimum(np.asarray(colour_prob, dtype=float) + COLOUR_EPS, 1.0) ** power


class BuiltinModel:
    """Built from a validated checkpoint dict (see vlm/backends/builtin.py) on `device`.
    named_colour_power: for a relevance query whose question names exactly one colour, the relevance
    probability r becomes r * min(1, c + COLOUR_EPS) ** named_colour_power, with c the colour head's probability
    of that colour pooled by the grounded head's attention: the thing the question is about must have its colour,
    not only its kind or a colour seen elsewhere in the view. 0 leaves the relevance head's output as it is."""

    def __init__(self, ckpt: dict, device: str = "cpu", named_colour_power: float = 0.0):
        if named_colour_power < 0:
            raise ValueError(f"named_colour_power must be >= 0, got {named_colour_power}")
        self.named_colour_power = float(named_colour_power)
        self.model, self.vocab = model_from_checkpoint(ckpt)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.model_id = str(ckpt["model_id"])
        # what scores a view: the weights, and the colour check when it is on (calibrations and caches hold for it)
        self.scoring_id = self.model_id + (f"+named-colour-{self.named_colour_power:g}" if named_colour_power else "")
        mc = self.model.config
        self.width, self.height = int(mc["width"]), int(mc["height"])
        self.max_q, self.max_c = int(mc["max_q_len"]), int(mc["max_c_len"])

    def cell_labels(self, width: int, height: int) -> tuple[str, ...]:
        """Locate labels of the feature cells (row-major, STRIDE x STRIDE network pixels each) as pixel
        centres in an image of width x height pixels."""
        return _cell_labels(self.width, self.height, width, height)

    def image_tensor(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 HxWx3 -> (1, 3, h, w) float at the network's resolution. Bilinear without antialiasing
        samples near the low-resolution pixel centres, like the renderer the model was trained on."""
        x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1).unsqueeze(0).float() / 255.0
        if x.shape[-2:] != (self.height, self.width):
            x = F.interpolate(x, size=(self.height, self.width), mode="bilinear", align_corners=False, antialias=False)
        return x

    @torch.inference_mode()
    def scores(self, image: np.ndarray, queries: Sequence[tuple[str, str, Sequence[str], Optional[Sequence]]]
               ) -> list[np.ndarray]:
        """Per (kind, question, choices, points_px) query: unnormalised log-scores over its labels
        (answer: choices; direction: points; relevance / worth: (yes, no) as (logit, 0))."""
        h, w = image.shape[:2]
        P = len(queries)
        for kind, _q, choices, _points in queries:
            if kind == QueryKind.ANSWER and len(choices) > MAX_CHOICES:
                raise ValueError(f"the builtin model scores at most {MAX_CHOICES} choices, got {len(choices)}")
        rows = [{"question": q, "choices": list(choices) if kind == QueryKind.ANSWER else [], "answer_index": 0}
                for kind, q, choices, _points in queries]
        qt, ct, cm, _, cc, cn = question_tensors(rows, self.vocab, self.max_q, self.max_c)
        k_max = max([len(q[3]) for q in queries if q[0] == QueryKind.DIRECTION and q[3] is not None] or [1])
        pts = torch.zeros(P, k_max, 2)
        pm = torch.zeros(P, k_max, dtype=torch.bool)
        pm[:, 0] = True  # a dummy point for rows without points (their direction output is unused)
        for i, (kind, _q, _choices, points) in enumerate(queries):
            if kind == QueryKind.DIRECTION:
                p = norm_points(points, w, h).reshape(-1, 2)
                pts[i, :len(p)] = torch.from_numpy(p)
                pm[i] = False
                pm[i, :len(p)] = True
        feats = self.model.encode_images(self.image_tensor(image))
        any_answer = bool(cm.any())
        any_dir = any(q[0] == QueryKind.DIRECTION for q in queries)
        out = self.model(feats, torch.zeros(P, dtype=torch.long, device=self.device), qt.to(self.device),
                         ct.to(self.device) if any_answer else None, cm.to(self.device) if any_answer else None,
                         pts.to(self.device) if any_dir else None, pm.to(self.device) if any_dir else None,
                         cc.to(self.device) if any_answer else None, cn.to(self.device) if any_answer else None)
        result = []
        for i, (kind, question, choices, points) in enumerate(queries):
            if kind == QueryKind.ANSWER:
                result.append(out["answer"][i, :len(choices)].double().cpu().numpy())
            elif kind == QueryKind.DIRECTION:
                result.append(out["direction"][i, :len(points)].double().cpu().numpy())
            elif kind == QueryKind.LOCATE:
                result.append(out["ground_logits"][i].double().cpu().numpy())
            elif kind == QueryKind.RELEVANCE:
                result.append(np.array([self._relevance_logit(out, i, question), 0.0]))
            elif kind == QueryKind.WORTH_EXPLORING:
                result.append(np.array([float(out["worth"][i]), 0.0]))
            else:
                raise ValueError(f"unknown query kind {kind!r}")
        return result

    def _relevance_logit(self, out: dict, row: int, question: str) -> float:
        """The relevance head's logit of `row`, checked against the colour its question names (class docstring):
        log r + power * log c as a logit, computed in log space."""
        logit = float(out["relevance"][row])
        colour = named_colour(question) if self.named_colour_power > 0 else -1
        if colour < 0:
            return logit
        log_r = -float(np.logaddexp(0.0, -logit))  # log sigmoid(logit)
        log_p = log_r + float(np.log(colour_factor(float(out["colour"][row, colour]), self.named_colour_power)))
        log_p = min(log_p, -1e-12)  # a probability below 1: its logit is finite
        return float(log_p - np.log(-np.expm1(log_p)))  # logit = log p - log(1 - p)
