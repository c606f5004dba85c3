"""The builtin VLM network: residual CNN image encoder, word-level question / choice encoders,
question-to-image cross-attention (two hops) and four heads (answer, relevance, direction,
worth-exploring).

Everything heavy runs once per view (the image encoder, the attention keys and values); each
(view, question) row only adds attention over the view's feature cells, so one image encoding serves
every question and query about that view cheaply.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vlm.builtin_model.data import CELL as STRIDE  # input pixels per feature cell, as the data labels them

ARCHITECTURE = "eqa-cnn-xattn-v2"  # the network without the options below
ARCHITECTURE_V3 = "eqa-cnn-xattn-v3"  # with any of the OPTIONS
OPTIONS = ("count_head", "dir_context", "goal_map", "colour_head", "dir_attention")  # network options, off by default
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
HOPS = 2
COUNT_CHANNELS = 48  # count_head: channels of its per-cell features
CENTRE_PRIOR = 0.01  # count_head: initial centre probability of a cell
PEAK_MIN = 0.25  # count_head: a local maximum of the centre heat map counts when above this probability
GOAL_CHANNELS = 32  # goal_map: channels of its per-cell features
GOAL_SCALE = 4.0  # goal_map: metres of goal distance per unit of the map
BEYOND_CELLS = (1, 2, 4)  # dir_context: feature cells above a point (further along the floor) that are sampled
COLOUR_WORDS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "white", "black", "grey", "brown",
                "beige")  # colour_head: the colour names it classifies pixels into (the simulator's palette)
COLOUR_HIDDEN = 16  # colour_head: hidden units of its per-pixel colour classifier
COLOUR_POOL = 2  # colour_head: it classifies the mean colour of each 2x2 pixel block (a quarter of the cost)
COLOUR_EPS = 1e-3  # colour_head: floor of a pooled colour probability before its log
POINT_HEADS = 4  # dir_attention: attention heads of each point's query over the view
POINT_VALUES = 16  # dir_attention: value channels per head
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def architecture_name(config: dict) -> str:
    """Checkpoint architecture name of a BuiltinVLMNet config."""
    return ARCHITECTURE_V3 if any(config.get(k) for k in OPTIONS) else ARCHITECTURE


def choice_number(text: str) -> float:
    """The number a choice names ("Three", "3") or nan: count questions' choices feed the count head."""
    t = text.strip().lower()
    if t.isdigit():
        return float(t)
    return float(NUMBER_WORDS.index(t)) if t in NUMBER_WORDS else float("nan")


def choice_colour(text: str) -> int:
    """Index in COLOUR_WORDS of the colour a choice names ("Grey"), -1 otherwise: feeds the colour head."""
    t = text.strip().lower()
    return COLOUR_WORDS.index(t) if t in COLOUR_WORDS else -1


def _conv(cin: int, cout: int, k: int, s: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def peak_count(heat: torch.Tensor, fh: int, fw: int) -> torch.Tensor:
    """(P, fh * fw) centre probabilities (row-major cells) -> (P,) count: the summed heat of the cells that are
    the maximum of their 3x3 neighbourhood and above PEAK_MIN (differentiable in the heat of those cells)."""
    grid = heat.view(-1, 1, fh, fw)
    peak = (grid == F.max_pool2d(grid, 3, 1, 1)) & (grid > PEAK_MIN)
    return (heat * peak.flatten(1)).sum(-1)


def film_rows(per_view: torch.Tensor, film: torch.Tensor, pair_view: torch.Tensor) -> torch.Tensor:
    """Per-view cell features (B, C, H, W) modulated per row: relu(f * (1 + scale) + shift) with film (P, 2C) the
    row's scale and shift. Returns (P, H * W, C), row p from view pair_view[p]."""
    rows = per_view.flatten(2).transpose(1, 2)[pair_view]  # (P, N, C)
    scale, shift = film.unsqueeze(1).chunk(2, dim=-1)  # (P, 1, C) each
    return F.relu(rows * (1 + scale) + shift)


class Bottleneck(nn.Module):
    """Residual 1x1 -> 3x3 (dilated) -> 1x1 block; widens the receptive field cheaply."""

    def __init__(self, dim: int, dilation: int):
        super().__init__()
        mid = dim // 2
        self.body = nn.Sequential(
            _conv(dim, mid, 1, 1),
            nn.Conv2d(mid, mid, 3, 1, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, dim, 1, bias=False), nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


def sample_points(fmap: torch.Tensor, rows: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of fmap (B, C, H, W) at points (P, K, 2) in normalised [-1, 1] (x right, y down;
    align_corners=False, zero outside), point row p taken from map rows[p]. Returns (P, K, C).
    Same values as F.grid_sample on fmap[rows] without materialising that gather."""
    B, C, H, W = fmap.shape
    P, K, _ = points.shape
    x = (points[..., 0] + 1) * W / 2 - 0.5
    y = (points[..., 1] + 1) * H / 2 - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    flat = fmap.flatten(2).transpose(1, 2).reshape(B * H * W, C)
    out = fmap.new_zeros(P, K, C)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = x0 + dx, y0 + dy
        w = (1 - (x - xi).abs()) * (1 - (y - yi).abs())
        ok = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
        idx = rows.view(P, 1) * (H * W) + yi.clamp(0, H - 1).long() * W + xi.clamp(0, W - 1).long()
        out = out + flat[idx] * (w * ok).unsqueeze(-1)
    return out


def view_slots(pair_view: torch.Tensor, n_views: int) -> tuple[torch.Tensor, int]:
    """Position of each row among the rows of its view (in row order), and the most rows of any view:
    rows become a padded (view, slot) grid so attention runs as batched matrix products per view."""
    order = torch.argsort(pair_view, stable=True)
    counts = torch.bincount(pair_view, minlength=n_views)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(pair_view)
    slot[order] = torch.arange(len(pair_view), device=pair_view.device) - starts[pair_view[order]]
    return slot, int(counts.max()) if len(pair_view) else 0


def into_slots(rows_x: torch.Tensor, pair_view: torch.Tensor, slot: torch.Tensor, n_views: int,
               n_slots: int) -> torch.Tensor:
    """(P, ...) per-row tensor -> (n_views, n_slots, ...) zero-padded grid with row p at [pair_view[p], slot[p]]
    (slots from view_slots), so per-view work runs as one batched matrix product."""
    return rows_x.new_zeros(n_views, n_slots, *rows_x.shape[1:]).index_put((pair_view, slot), rows_x)


def mean_over_points(x: torch.Tensor, p_mask: torch.Tensor | None) -> torch.Tensor:
    """(P, K, C) per-point features -> (P, 1, C) their mean over each row's valid points (p_mask (P, K); None:
    all points)."""
    valid = (p_mask if p_mask is not None else x.new_ones(x.shape[:2], dtype=torch.bool)).unsqueeze(-1)
    return (x * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp(min=1)


class BuiltinVLMNet(nn.Module):
    """config: vocab_size, width, height (input pixels), dim, emb, heads, key_dim, patch_dim, max_q_len,
    max_c_len, count_head, dir_context. Image features are `dim` CNN channels followed by `patch_dim` channels
    of a linear embedding of each cell's raw 8x8 pixels (the cell's colours, which the deep features keep only
    weakly).

    count_head: a question-conditioned centre heat map (per feature cell, the probability that one of the
    question's targets has its centre there; two 3x3 convolutions of the features, modulated per channel by the
    question). Its count is the sum of the heat at local maxima (3x3) above PEAK_MIN; for choices
    that name a number n it adds -precision * (n - count)^2 to the answer logit, scaled by the (detached)
    relevance probability so that it fades where the answer is not in view.
    goal_map: a question-conditioned per-cell map of the goal distance (path distance from the floor in the
    cell to the nearest answering viewpoint minus the robot's own, in GOAL_SCALE metres; FiLM-modulated 3x3
    convolution of the features plus the question's attention maps); the direction head also sees it at
    each point.
    dir_context: the direction head also sees the features a few cells above each point (what lies further
    along the floor), the attention maps max-pooled around it, and each point's embedding relative to the mean
    of the view's points.
    colour_head: a per-pixel colour classifier (a 1x1-convolution MLP of the RGB of a 2x2 pixel block alone, so
    it cannot learn a house's context) into COLOUR_WORDS, averaged per feature cell and appended to the features
    that encode_images returns; forward pools it with the grounded attention head (first hop, first head) and, for
    choices that name a colour, adds weight * log(pooled probability of that colour) to the answer logit,
    scaled by the (detached) relevance probability.
    dir_attention: each point attends over the whole view: its query (from the point's features and the
    question) meets keys made of the cell features and the question's attention maps, plus a learned bias per
    offset (in cells) between the cell and the point, so a point can be scored by what lies in a given direction
    from it (a doorway behind it, the target to its left); the pooled values, the point's own features and its
    difference to the mean of the view's points are scored together."""

    def __init__(self, vocab_size: int, width: int = 224, height: int = 168, dim: int = 96, emb: int = 64,
                 heads: int = 4, key_dim: int = 16, patch_dim: int = 16, max_q_len: int = 16, max_c_len: int = 4,
                 count_head: bool = False, dir_context: bool = False, goal_map: bool = False,
                 colour_head: bool = False, dir_attention: bool = False):
        super().__init__()
        if sum((goal_map, dir_context, dir_attention)) > 1:
            raise ValueError("goal_map, dir_context and dir_attention are separate direction heads: turn on one")
        self.config = dict(vocab_size=vocab_size, width=width, height=height, dim=dim, emb=emb, heads=heads,
                           key_dim=key_dim, patch_dim=patch_dim, max_q_len=max_q_len, max_c_len=max_c_len)
        if count_head or dir_context:  # older checkpoints' configs stay as they were
            self.config.update(count_head=bool(count_head), dir_context=bool(dir_context))
        if goal_map:
            self.config.update(goal_map=True)
        if colour_head:
            self.config.update(colour_head=True)
        if dir_attention:
            self.config.update(dir_attention=True)
        self.count_head, self.dir_context, self.goal_map = bool(count_head), bool(dir_context), bool(goal_map)
        self.dir_attention = bool(dir_attention)
        self.colour_head = bool(colour_head)
        self.heads, self.key_dim, self.dim = heads, key_dim, dim
        self.feat_dim = fd = dim + patch_dim  # feature channels per cell (without the colour head's)
        self.cnn = nn.Sequential(_conv(3, 24, 5, 2), _conv(24, 48, 3, 2), _conv(48, dim, 3, 2),
                                 Bottleneck(dim, 1), Bottleneck(dim, 2), Bottleneck(dim, 4), Bottleneck(dim, 1))
        fh, fw = -(-height // STRIDE), -(-width // STRIDE)
        self.pos = nn.Parameter(torch.zeros(1, dim, fh, fw))
        self.patch = nn.Conv2d(3, patch_dim, STRIDE, STRIDE)
        self.keys = nn.Conv2d(fd, HOPS * heads * key_dim, 1)
        self.values = nn.Conv2d(fd, fd, 1)
        self.word = nn.Embedding(vocab_size, emb, padding_idx=0)
        self.q_rnn = nn.GRU(emb, dim, batch_first=True)
        self.c_mlp = nn.Sequential(nn.Linear(emb, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.query = nn.ModuleList([nn.Linear(dim, heads * key_dim), nn.Linear(2 * dim, heads * key_dim)])
        self.hop_proj = nn.ModuleList([nn.Linear(heads * fd, dim) for _ in range(HOPS)])
        self.fuse = nn.Sequential(nn.Linear((HOPS + 1) * dim + fd + HOPS * heads, 2 * dim), nn.ReLU(inplace=True),
                                  nn.Linear(2 * dim, dim), nn.ReLU(inplace=True))
        self.relevance = nn.Linear(dim, 1)
        self.worth = nn.Linear(dim, 1)
        self.ans = nn.Sequential(nn.Linear(3 * dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 1))
        if dir_attention:
            maps = HOPS * heads
            self.pt_embed = nn.Sequential(nn.Linear(dim + 2 * fd + maps + 2, dim), nn.ReLU(inplace=True))
            self.pt_query = nn.Linear(dim, POINT_HEADS * key_dim)
            self.pt_key_feats = nn.Conv2d(fd, POINT_HEADS * key_dim, 1)
            self.pt_value_feats = nn.Conv2d(fd, POINT_HEADS * POINT_VALUES, 1)
            self.pt_key_maps = nn.Parameter(torch.randn(POINT_HEADS, key_dim, maps) * maps ** -0.5)
            self.pt_value_maps = nn.Parameter(torch.randn(POINT_HEADS, POINT_VALUES, maps) * maps ** -0.5)
            self.pt_offset = nn.Parameter(torch.zeros(POINT_HEADS, (2 * fh - 1) * (2 * fw - 1)))
            cy, cx = torch.meshgrid(torch.arange(fh), torch.arange(fw), indexing="ij")
            cy, cx = cy.flatten(), cx.flatten()  # (N,) row and column of each cell
            dy = cy.view(1, -1) - cy.view(-1, 1) + fh - 1  # (point cell, cell) row offset, shifted to >= 0
            dx = cx.view(1, -1) - cx.view(-1, 1) + fw - 1
            offsets = dy * (2 * fw - 1) + dx
            self.register_buffer("pt_offset_index", offsets, persistent=False)  # (point cell, cell) -> offset
            self.pt_score = nn.Sequential(nn.Linear(2 * dim + POINT_HEADS * POINT_VALUES, dim), nn.ReLU(inplace=True),
                                          nn.Linear(dim, 1))
        elif dir_context:
            self.dir_embed = nn.Sequential(nn.Linear(dim + 3 * fd + 2 * HOPS * heads + 2, dim), nn.ReLU(inplace=True))
            self.dir_score = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 1))
        else:
            self.dir = nn.Sequential(nn.Linear(dim + 2 * fd + HOPS * heads + 2 + int(goal_map), dim),
                                     nn.ReLU(inplace=True), nn.Linear(dim, 1))
        if goal_map:
            self.goal_conv = nn.Sequential(nn.Conv2d(fd, GOAL_CHANNELS, 3, 1, 1), nn.ReLU(inplace=True))
            self.goal_film = nn.Linear(dim, 2 * GOAL_CHANNELS)  # question -> per-channel scale and shift
            self.goal_out = nn.Conv2d(GOAL_CHANNELS + HOPS * heads, 1, 3, 1, 1)
        if count_head:
            self.count_conv = nn.Sequential(nn.Conv2d(fd, COUNT_CHANNELS, 3, 1, 1), nn.ReLU(inplace=True),
                                            nn.Conv2d(COUNT_CHANNELS, COUNT_CHANNELS, 3, 1, 1), nn.ReLU(inplace=True))
            self.count_film = nn.Linear(dim, 2 * COUNT_CHANNELS)  # question -> per-channel scale and shift
            self.count_out = nn.Linear(COUNT_CHANNELS, 1)
            nn.init.constant_(self.count_out.bias, math.log(CENTRE_PRIOR / (1 - CENTRE_PRIOR)))
            self.count_log_precision = nn.Parameter(torch.tensor(math.log(0.1)))  # weak until the map counts
        if colour_head:
            self.colour_pixel = nn.Sequential(nn.Conv2d(3, COLOUR_HIDDEN, 1), nn.ReLU(inplace=True),
                                              nn.Conv2d(COLOUR_HIDDEN, len(COLOUR_WORDS), 1))
            self.colour_log_weight = nn.Parameter(torch.tensor(0.0))
        nn.init.normal_(self.pos, std=0.02)

    # -- encoders -----------------------------------------------------------------------------------
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] -> (B, dim + patch_dim, H/8, W/8) features; with colour_head followed by
        len(COLOUR_WORDS) channels: the mean colour-name probabilities of each cell's 2x2 pixel blocks."""
        mean = images.new_tensor(MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(STD).view(1, 3, 1, 1)
        x = (images - mean) / std
        pad = (0, -x.shape[-1] % STRIDE, 0, -x.shape[-2] % STRIDE)
        parts = [self.cnn(x) + self.pos, self.patch(F.pad(x, pad))]
        if self.colour_head:
            blocks = F.avg_pool2d(x, COLOUR_POOL, COLOUR_POOL, ceil_mode=True)
            probs = torch.softmax(self.colour_pixel(blocks), dim=1)
            parts.append(F.avg_pool2d(probs, STRIDE // COLOUR_POOL, STRIDE // COLOUR_POOL, ceil_mode=True))
        return torch.cat(parts, dim=1)

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
                points: torch.Tensor | None = None, p_mask: torch.Tensor | None = None,
                c_numbers: torch.Tensor | None = None, c_colours: torch.Tensor | None = None) -> dict:
        """feats: encode_images output; one row per (view, question) pair: pair_view indexes feats.
        points: (P, K, 2) in normalised [-1, 1] (x right, y down); c_numbers: (P, C) the number each choice
        names, nan for other choices (choice_number; used by count_head); c_colours: (P, C) long, the
        COLOUR_WORDS index each choice names, -1 for other choices (choice_colour; used by colour_head).
        Returns logits per head; with count_head also "count" (P,) predicted objects and "centre_logits"
        (P, cells); with goal_map also "goal" (P, cells); with colour_head also "cell_colours" (B, cells,
        colours) and "colour" (P, colours), the cell colours pooled by the grounded head's attention."""
        if self.colour_head:
            feats, cell_colours = feats.split([self.feat_dim, len(COLOUR_WORDS)], dim=1)
        B, FD, fh, fw = feats.shape
        D = self.dim
        N, h, k = fh * fw, self.heads, self.key_dim
        q = self.encode_questions(q_tokens)
        P = len(q)
        slot, rows = view_slots(pair_view, B)
        keys = self.keys(feats).view(B, HOPS, h, k, N)
        values = self.values(feats).flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, N, FD)
        pooled, logit_maps, mass = [], [], []
        query_in = q
        for hop in range(HOPS):
            qk = into_slots(self.query[hop](query_in).view(P, h, k), pair_view, slot, B, rows)
            logits_b = qk.transpose(1, 2) @ keys[:, hop] / k ** 0.5  # (B, h, rows, N)
            pooled_b = torch.softmax(logits_b, dim=-1) @ values  # (B, h, rows, FD)
            logits = logits_b.transpose(1, 2)[pair_view, slot]  # (P, h, N)
            ph = self.hop_proj[hop](pooled_b.transpose(1, 2)[pair_view, slot].reshape(P, h * FD))
            pooled.append(ph)
            logit_maps.append(logits)
            mass.append(torch.log1p(torch.sigmoid(logits).sum(-1)))  # how much of the view matches, per head
            query_in = torch.cat([q, ph], dim=-1)
        g = feats.mean((2, 3))[pair_view]
        z = self.fuse(torch.cat(pooled + [q, g] + mass, dim=-1))
        out = {"relevance": self.relevance(z).squeeze(-1), "worth": self.worth(z).squeeze(-1), "z": z,
               "ground_logits": logit_maps[0][:, 0]}  # first hop, first head: trained to find the targets
        lmaps = torch.cat(logit_maps, dim=1).view(P, HOPS * h, fh, fw)  # every head's attention logits, per row
        if self.colour_head:
            out["cell_colours"] = cell_colours.flatten(2).transpose(1, 2)  # (B, N, colours)
            attn = torch.softmax(out["ground_logits"], dim=-1)
            out["colour"] = torch.einsum("pn,pnc->pc", attn, out["cell_colours"][pair_view])
        if self.count_head:
            cp = film_rows(self.count_conv(feats), self.count_film(q), pair_view)  # (P, N, C)
            centre_logits = self.count_out(cp).squeeze(-1)  # (P, N)
            out["centre_logits"] = centre_logits
            out["count"] = peak_count(torch.sigmoid(centre_logits), fh, fw)
        if self.goal_map:
            gp = film_rows(self.goal_conv(feats), self.goal_film(q), pair_view).transpose(1, 2).view(P, -1, fh, fw)
            out["goal"] = self.goal_out(torch.cat([gp, lmaps], dim=1)).flatten(1)  # (P, cells)
        if c_tokens is not None:
            c = self.encode_choices(c_tokens)
            zc = z.unsqueeze(1).expand_as(c)
            logits = self.ans(torch.cat([zc * c, zc, c], dim=-1)).squeeze(-1)
            seen = torch.sigmoid(out["relevance"]).detach().unsqueeze(1)  # weight of the count and colour terms
            if self.count_head and c_numbers is not None:
                named = ~torch.isnan(c_numbers)  # no nan may enter the graph (its gradient would be nan too)
                gap = (torch.nan_to_num(c_numbers) - out["count"].unsqueeze(1)) ** 2
                logits = logits - self.count_log_precision.exp() * seen * gap * named
            if self.colour_head and c_colours is not None:
                named = c_colours >= 0
                picked = out["colour"].gather(1, c_colours.clamp(min=0))
                logits = logits + self.colour_log_weight.exp() * seen * torch.log(picked + COLOUR_EPS) * named
            out["answer"] = logits.masked_fill(~c_mask, float("-inf")) if c_mask is not None else logits
        if points is not None:
            K = points.shape[1]
            local = sample_points(feats, pair_view, points)
            wide = sample_points(F.avg_pool2d(feats, 3, 1, 1), pair_view, points)
            rows_p = torch.arange(P, device=points.device)  # row p samples its own attention maps
            at_point = sample_points(lmaps, rows_p, points)
            zk = z.unsqueeze(1).expand(P, K, D)
            if self.dir_attention:
                logits = self._attend_from_points(feats, pair_view, lmaps, points, p_mask,
                                                  torch.cat([local, wide, at_point, zk, points], dim=-1))
            elif self.dir_context:
                cell_y = 2.0 * STRIDE / self.config["height"]  # one feature cell in normalised y
                beyond = sum(sample_points(feats, pair_view, points - points.new_tensor([0.0, n * cell_y]))
                             for n in BEYOND_CELLS) / len(BEYOND_CELLS)
                near = sample_points(F.max_pool2d(lmaps, 5, 1, 2), rows_p, points)
                h_pt = self.dir_embed(torch.cat([local, wide, beyond, at_point, near, zk, points], dim=-1))
                logits = self.dir_score(torch.cat([h_pt, h_pt - mean_over_points(h_pt, p_mask)], dim=-1)).squeeze(-1)
            else:
                parts = [local, wide, at_point, zk, points]
                if self.goal_map:
                    parts.append(sample_points(out["goal"].view(P, 1, fh, fw), rows_p, points))
                logits = self.dir(torch.cat(parts, dim=-1)).squeeze(-1)
            out["direction"] = logits.masked_fill(~p_mask, float("-inf")) if p_mask is not None else logits
        return out

    def _attend_from_points(self, feats: torch.Tensor, pair_view: torch.Tensor, lmaps: torch.Tensor,
                            points: torch.Tensor, p_mask: torch.Tensor | None, point_in: torch.Tensor) -> torch.Tensor:
        """dir_attention: (P, K) direction logits. feats (B, FD, fh, fw); lmaps (P, maps, fh, fw) the rows'
        attention logits; points (P, K, 2) normalised; point_in (P, K, *) each point's own inputs.
        The cell-feature terms run per view (rows padded into slots, as in forward); the attention-map terms
        are folded through the query (its projection into map space) so no per-row key map is built."""
        B, _, fh, fw = feats.shape
        P, K = points.shape[:2]
        N, h, k, dv = fh * fw, POINT_HEADS, self.key_dim, POINT_VALUES
        slot, rows = view_slots(pair_view, B)
        hp = self.pt_embed(point_in)  # (P, K, dim)
        query = self.pt_query(hp).view(P, K, h, k)
        padded = into_slots(query, pair_view, slot, B, rows)
        keys = self.pt_key_feats(feats).view(B, h, k, N)
        logits = padded.permute(0, 3, 1, 2, 4).reshape(B, h, rows * K, k) @ keys  # (B, h, rows * K, N)
        logits = logits.view(B, h, rows, K, N).transpose(1, 2)[pair_view, slot]  # (P, h, K, N)
        # the rows' attention maps (P, M, N), read but not trained here and standardised per map: their raw
        # logits reach tens and made this head diverge
        maps = lmaps.flatten(2).detach()
        maps = (maps - maps.mean(-1, keepdim=True)) / (maps.std(-1, keepdim=True) + 1e-3)
        in_maps = torch.einsum("pkhd,hdm->phkm", query, self.pt_key_maps).reshape(P, h * K, -1)
        logits = logits + (in_maps @ maps).view(P, h, K, N)
        px = ((points[..., 0] + 1) * fw / 2 - 0.5).round().long().clamp(0, fw - 1)  # (P, K) cell of each point
        py = ((points[..., 1] + 1) * fh / 2 - 0.5).round().long().clamp(0, fh - 1)
        offsets = self.pt_offset_index[(py * fw + px).flatten()]  # (P * K, N): offset of each cell to the point
        bias = self.pt_offset[:, offsets].view(h, P, K, N).transpose(0, 1)
        attn = torch.softmax(logits / k ** 0.5 + bias, dim=-1)  # (P, h, K, N)
        values = self.pt_value_feats(feats).view(B, h, dv, N).transpose(-1, -2)  # (B, h, N, dv)
        a_pad = into_slots(attn, pair_view, slot, B, rows)
        pooled = a_pad.transpose(1, 2).reshape(B, h, rows * K, N) @ values  # (B, h, rows * K, dv)
        pooled = pooled.view(B, h, rows, K, dv).permute(0, 2, 3, 1, 4)[pair_view, slot]  # (P, K, h, dv)
        from_maps = (attn.reshape(P, h * K, N) @ maps.transpose(1, 2)).view(P, h, K, -1)  # (P, h, K, M)
        pooled = pooled + torch.einsum("phkm,hvm->pkhv", from_maps, self.pt_value_maps)
        return self.pt_score(torch.cat([hp, hp - mean_over_points(hp, p_mask), pooled.reshape(P, K, h * dv)],
                                       dim=-1)).squeeze(-1)
