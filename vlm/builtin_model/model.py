"""The builtin VLM network: small CNN image encoder, word-level question / choice encoders, question-
conditioned fusion (FiLM + multi-head attention pooling) and four heads (answer, relevance, direction,
worth-exploring). One image encoding serves every question and query about that view."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "eqa-cnn-film-v1"
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _conv(cin: int, cout: int, k: int, s: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BuiltinVLMNet(nn.Module):
    """config: vocab_size, width, height, dim, emb, heads, max_q_len, max_c_len."""

    def __init__(self, vocab_size: int, width: int = 160, height: int = 120, dim: int = 96, emb: int = 64,
                 heads: int = 4, max_q_len: int = 16, max_c_len: int = 4):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, width=width, height=height, dim=dim, emb=emb, heads=heads,
                           max_q_len=max_q_len, max_c_len=max_c_len)
        self.cnn = nn.Sequential(_conv(3, 24, 5, 2), _conv(24, 48, 3, 2), _conv(48, 64, 3, 2), _conv(64, dim, 3, 1))
        fh, fw = -(-height // 8), -(-width // 8)
        self.pos = nn.Parameter(torch.zeros(1, dim, fh, fw))
        self.word = nn.Embedding(vocab_size, emb, padding_idx=0)
        self.q_rnn = nn.GRU(emb, dim, batch_first=True)
        self.c_mlp = nn.Sequential(nn.Linear(emb, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.film = nn.Linear(dim, 2 * dim)
        self.mix = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.ReLU(inplace=True))
        self.att = nn.Conv2d(dim, heads, 1)
        self.pool_proj = nn.Linear(heads * dim, dim)
        self.fuse = nn.Sequential(nn.Linear(3 * dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim),
                                  nn.ReLU(inplace=True))
        self.relevance = nn.Linear(dim, 1)
        self.worth = nn.Linear(dim, 1)
        self.ans = nn.Sequential(nn.Linear(3 * dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 1))
        self.dir = nn.Sequential(nn.Linear(3 * dim + 2, dim), nn.ReLU(inplace=True), nn.Linear(dim, 1))
        nn.init.normal_(self.pos, std=0.02)

    # -- encoders -----------------------------------------------------------------------------------
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] -> (B, dim, H/8, W/8)."""
        mean = images.new_tensor(MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(STD).view(1, 3, 1, 1)
        return self.cnn((images - mean) / std) + self.pos

    def encode_questions(self, tokens: torch.Tensor) -> torch.Tensor:
        """(P, L) word ids (0 = pad) -> (P, dim): GRU state after the last word."""
        out, _ = self.q_rnn(self.word(tokens))
        last = (tokens != 0).sum(1).clamp(min=1) - 1
        return out[torch.arange(len(tokens)), last]

    def encode_choices(self, tokens: torch.Tensor) -> torch.Tensor:
        """(P, C, L) -> (P, C, dim): mean word embedding through an MLP."""
        e = self.word(tokens)
        m = (tokens != 0).unsqueeze(-1).float()
        return self.c_mlp((e * m).sum(2) / m.sum(2).clamp(min=1.0))

    # -- fusion and heads -----------------------------------------------------------------------------
    def forward(self, feats: torch.Tensor, pair_view: torch.Tensor, q_tokens: torch.Tensor,
                c_tokens: torch.Tensor | None = None, c_mask: torch.Tensor | None = None,
                points: torch.Tensor | None = None, p_mask: torch.Tensor | None = None) -> dict:
        """feats: encode_images output; one row per (view, question) pair: pair_view indexes feats.
        points: (P, K, 2) in normalised [-1, 1] (x right, y down). Returns logits per head."""
        q = self.encode_questions(q_tokens)
        f = feats[pair_view]
        gamma, beta = self.film(q).chunk(2, dim=-1)
        h = self.mix(F.relu(f * (1 + gamma[..., None, None]) + beta[..., None, None]))
        P, D = h.shape[:2]
        flat = h.flatten(2)  # (P, D, N)
        att = torch.softmax(self.att(h).flatten(2), dim=-1)  # (P, heads, N)
        pooled = self.pool_proj(torch.einsum("phn,pdn->phd", att, flat).reshape(P, -1))
        z = self.fuse(torch.cat([pooled, q, flat.mean(-1)], dim=-1))
        out = {"relevance": self.relevance(z).squeeze(-1), "worth": self.worth(z).squeeze(-1), "z": z}
        if c_tokens is not None:
            c = self.encode_choices(c_tokens)
            zc = z.unsqueeze(1).expand_as(c)
            logits = self.ans(torch.cat([zc * c, zc, c], dim=-1)).squeeze(-1)
            out["answer"] = logits.masked_fill(~c_mask, float("-inf")) if c_mask is not None else logits
        if points is not None:
            K = points.shape[1]
            local = F.grid_sample(h, points.unsqueeze(2), align_corners=False).squeeze(-1).transpose(1, 2)
            wide = F.grid_sample(F.avg_pool2d(h, 3, 1, 1), points.unsqueeze(2),
                                 align_corners=False).squeeze(-1).transpose(1, 2)
            zk = z.unsqueeze(1).expand(P, K, D)
            logits = self.dir(torch.cat([local, wide, zk, points], dim=-1)).squeeze(-1)
            out["direction"] = logits.masked_fill(~p_mask, float("-inf")) if p_mask is not None else logits
        return out
