"""The builtin network's inputs from text and pixels: question and choice word ids, the colour and the number
each choice names, and pixel points in the network's normalised image coordinates. Shared by inference and training."""
from __future__ import annotations

import numpy as np
import torch

from vlm.builtin_model.model import choice_colour, choice_number
from vlm.builtin_model.vocab import Vocab
from vlm.queries import MAX_CHOICES


def question_tensors(questions: list[dict], vocab: Vocab, max_q: int, max_c: int):
    """Per question dict (question, choices, answer_index): (Q, max_q) question ids, (Q, MAX_CHOICES, max_c)
    choice ids, (Q, MAX_CHOICES) choice mask, (Q,) answer index, (Q, MAX_CHOICES) the COLOUR_WORDS index each
    choice names (-1 otherwise), (Q, MAX_CHOICES) the number each choice names (-1 otherwise)."""
    qt = torch.tensor([vocab.encode(q["question"], max_q) for q in questions], dtype=torch.long)
    ct = torch.zeros(len(questions), MAX_CHOICES, max_c, dtype=torch.long)
    cm = torch.zeros(len(questions), MAX_CHOICES, dtype=torch.bool)
    cc = torch.full((len(questions), MAX_CHOICES), -1, dtype=torch.long)
    cn = torch.full((len(questions), MAX_CHOICES), -1, dtype=torch.long)
    for i, q in enumerate(questions):
        for j, c in enumerate(q["choices"]):
            ct[i, j] = torch.tensor(vocab.encode(c, max_c))
            cm[i, j] = True
            cc[i, j] = choice_colour(c)
            cn[i, j] = choice_number(c)
    ans = torch.tensor([q["answer_index"] for q in questions], dtype=torch.long)
    return qt, ct, cm, ans, cc, cn


def norm_points(points_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel (u, v) (integer = pixel centre) -> grid_sample coordinates in [-1, 1] (align_corners=False)."""
    p = np.asarray(points_px, dtype=np.float32)
    return np.stack([(p[..., 0] + 0.5) / width * 2 - 1, (p[..., 1] + 0.5) / height * 2 - 1], axis=-1)
