"""The builtin VLM network: residual CNN image encoder, word-level question / choice encoders,
question-to-image cross-attention (two hops) and its heads: answer, relevance, direction, worth-exploring,
the grounded attention head (locate) and a per-pixel colour classifier that scores colour choices.

Everything heavy runs once per view (the image encoder, the attention keys and values); each
(view, question) row only adds attention over the view's feature cells, so one image encoding serves
every question and query about that view cheaply.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "eqa-cnn-xattn-v3"  # the checkpoint architecture name of this network
STRIDE = 8  # input pixels per feature cell side (training data labels cells of this size)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
HOPS = 2
COLOUR_WORDS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "white", "black", "grey", "brown",
                "beige")  # the colour names the colour head classifies pixels into (the simulator's palette)
COLOUR_HIDDEN = 16  # hidden units of the per-pixel colour classifier
COLOUR_POOL = 2  # the colour head classifies the mean colour of each 2x2 pixel block (a quarter of the cost)
COLOUR_EPS = 1e-3  # floor of a pooled colour probability before its log
NUMBER_WORDS = ("none", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
COUNT_HIDDEN = 48  # channels of the count head
COUNT_CLASSES = 3  # per feature cell: 0, 1 or 2 (or more) centres of counted things


def _normalise(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float in [0, 1] -> standardised per channel with MEAN and STD (the network's input)."""
    return (images - images.new_tensor(MEAN).view(1, 3, 1, 1)) / images.new_tensor(STD).view(1, 3, 1, 1)


def choice_colour(text: str) -> int:
    """Index in COLOUR_WORDS of the colour a choice names ("Grey"), -1 otherwise: feeds the colour head."""
    t = text.strip().lower()
    return COLOUR_WORDS.index(t) if t in COLOUR_WORDS else -1


def choice_number(text: str) -> int:
    """The number a choice names ("Three", "3"), -1 otherwise: feeds the count head."""
    t = text.strip().lower()
    if t in NUMBER_WORDS:
        return NUMBER_WORDS.index(t)
    return int(t) if t.isdigit() else -1


def feature_grid(width: int, height: int) -> tuple[int, int]:
    """(rows, columns) of STRIDE-pixel feature cells of a width x height input (partial edge cells count)."""
    return -(-height // STRIDE), -(-width // STRIDE)


def _conv(cin: int, cout: int, k: int, s: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


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


class BuiltinVLMNet(nn.Module):
    """config: vocab_size, width, height (input pixels), dim, emb, heads, key_dim, patch_dim, max_q_len,
    max_c_len. Image features are `dim` CNN channels followed by `patch_dim` channels of a linear embedding of
    each cell's raw 8x8 pixels (the cell's colours, which the deep features keep only weakly), then the colour
    head's len(COLOUR_WORDS) channels.

    The colour head is a per-pixel colour classifier (a 1x1-convolution MLP of the RGB of a 2x2 pixel block
    alone, so it cannot learn a house's context) into COLOUR_WORDS, averaged per feature cell; forward pools it
    with the grounded attention head (first hop, first head) and, for choices that name a colour, adds
    weight * log(pooled probability of that colour) to the answer logit, scaled by the (detached) relevance
    probability.

    count_head (v6): for rows whose choices name numbers, a per-cell classifier of how many centres of the counted
    things lie in each feature cell (0, 1, 2 or more), from the cell features and every attention map of the row
    (standardised per map, detached), FiLM-modulated by the question. Its expected count mu and variance (the
    cells' own plus a learned floor) score each number choice n by weight * -(n - mu)^2 / (2 variance), scaled
    by the relevance probability like the colour term."""

    def __init__(self, vocab_size: int, width: int = 224, height: int = 168, dim: int = 96, emb: int = 64,
                 heads: int = 4, key_dim: int = 16, patch_dim: int = 16, max_q_len: int = 16, max_c_len: int = 4,
                 count_head: bool = False):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, width=width, height=height, dim=dim, emb=emb, heads=heads,
                           key_dim=key_dim, patch_dim=patch_dim, max_q_len=max_q_len, max_c_len=max_c_len)
        if count_head:  # recorded only when on: the checkpoints before it stay as they were
            self.config["count_head"] = True
        self.heads, self.key_dim, self.dim = heads, key_dim, dim
        self.feat_dim = fd = dim + patch_dim  # feature channels per cell (without the colour head's)
        self.cnn = nn.Sequential(_conv(3, 24, 5, 2), _conv(24, 48, 3, 2), _conv(48, dim, 3, 2),
                                 Bottleneck(dim, 1), Bottleneck(dim, 2), Bottleneck(dim, 4), Bottleneck(dim, 1))
        fh, fw = feature_grid(width, height)
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
        self.dir = nn.Sequential(nn.Linear(dim + 2 * fd + HOPS * heads + 2, dim), nn.ReLU(inplace=True),
                                 nn.Linear(dim, 1))
        self.colour_pixel = nn.Sequential(nn.Conv2d(3, COLOUR_HIDDEN, 1), nn.ReLU(inplace=True),
                                          nn.Conv2d(COLOUR_HIDDEN, len(COLOUR_WORDS), 1))
        self.colour_log_weight = nn.Parameter(torch.tensor(0.0))
        self.has_count_head = count_head
        if count_head:
            self.count_in = nn.Conv2d(fd + HOPS * heads, COUNT_HIDDEN, 1)
            self.count_film = nn.Linear(dim, 2 * COUNT_HIDDEN)
            self.count_mid = nn.Conv2d(COUNT_HIDDEN, COUNT_HIDDEN, 3, padding=1)
            self.count_out = nn.Conv2d(COUNT_HIDDEN, COUNT_CLASSES, 1)
            with torch.no_grad():  # start near "no centre anywhere" (about 1.5 expected over the view)
                self.count_out.bias.copy_(torch.tensor([0.0, -6.0, -8.0]))
            self.count_log_weight = nn.Parameter(torch.tensor(0.0))
            self.count_log_var = nn.Parameter(torch.tensor(math.log(0.25)))
        nn.init.normal_(self.pos, std=0.02)

    # -- encoders -----------------------------------------------------------------------------------
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] -> (B, dim + patch_dim + len(COLOUR_WORDS), H/8, W/8) features; the last
        channels are the mean colour-name probabilities of each cell's 2x2 pixel blocks."""
        x = _normalise(images)
        pad = (0, -x.shape[-1] % STRIDE, 0, -x.shape[-2] % STRIDE)
        probs = torch.softmax(self._block_colour_logits(x), dim=1)
        colours = F.avg_pool2d(probs, STRIDE // COLOUR_POOL, STRIDE // COLOUR_POOL, ceil_mode=True)
        return torch.cat([self.cnn(x) + self.pos, self.patch(F.pad(x, pad)), colours], dim=1)

    def block_colour_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] -> (B, len(COLOUR_WORDS), H/2, W/2) colour-name logits of each 2x2 pixel
        block (the colour head before its softmax; encode_images averages its probabilities per cell)."""
        return self._block_colour_logits(_normalise(images))

    def _block_colour_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.colour_pixel(F.avg_pool2d(x, COLOUR_POOL, COLOUR_POOL, ceil_mode=True))

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
                c_colours: torch.Tensor | None = None, c_numbers: torch.Tensor | None = None) -> dict:
        """feats: encode_images output; one row per (view, question) pair: pair_view indexes feats.
        points: (P, K, 2) in normalised [-1, 1] (x right, y down); c_colours: (P, C) long, the COLOUR_WORDS
        index each choice names, -1 for other choices (choice_colour); c_numbers: (P, C) long, the number each
        choice names, -1 otherwise (choice_number). Returns logits per head ("relevance", "worth", "ground_logits"
        (P, cells), "answer" with choices, "direction" with points), "z" (the fused row), "cell_colours"
        (B, cells, colours) and "colour" (P, colours), the cell colours pooled by the grounded head's attention;
        with the count head and number choices also "count_rows" (R,) the rows it ran on, "count_logits"
        (R, COUNT_CLASSES, cells), "count_mean" and "count_var" (R,)."""
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
        out["cell_colours"] = cell_colours.flatten(2).transpose(1, 2)  # (B, N, colours)
        attn = torch.softmax(out["ground_logits"], dim=-1)
        out["colour"] = torch.einsum("pn,pnc->pc", attn, out["cell_colours"][pair_view])
        if c_tokens is not None:
            c = self.encode_choices(c_tokens)
            zc = z.unsqueeze(1).expand_as(c)
            logits = self.ans(torch.cat([zc * c, zc, c], dim=-1)).squeeze(-1)
            if c_colours is not None:
                seen = torch.sigmoid(out["relevance"]).detach().unsqueeze(1)  # weight of the colour term
                named = c_colours >= 0
                picked = out["colour"].gather(1, c_colours.clamp(min=0))
                logits = logits + self.colour_log_weight.exp() * seen * torch.log(picked + COLOUR_EPS) * named
            if self.has_count_head and c_numbers is not None and (c_numbers >= 0).any():
                logits = self._count(out, feats, pair_view, q, lmaps, c_numbers, logits)
            out["answer"] = logits.masked_fill(~c_mask, float("-inf")) if c_mask is not None else logits
        if points is not None:
            K = points.shape[1]
            local = sample_points(feats, pair_view, points)
            wide = sample_points(F.avg_pool2d(feats, 3, 1, 1), pair_view, points)
            rows_p = torch.arange(P, device=points.device)  # row p samples its own attention maps
            at_point = sample_points(lmaps, rows_p, points)
            zk = z.unsqueeze(1).expand(P, K, D)
            logits = self.dir(torch.cat([local, wide, at_point, zk, points], dim=-1)).squeeze(-1)
            out["direction"] = logits.masked_fill(~p_mask, float("-inf")) if p_mask is not None else logits
        return out

    def _count(self, out: dict, feats: torch.Tensor, pair_view: torch.Tensor, q: torch.Tensor, lmaps: torch.Tensor,
               c_numbers: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The count head on the rows with number choices: fills out's count entries, returns the answer logits
        with each number choice scored by the predicted count."""
        rows = torch.nonzero((c_numbers >= 0).any(1)).squeeze(1)
        maps = lmaps[rows].detach()
        maps = (maps - maps.mean((2, 3), keepdim=True)) / (maps.std((2, 3), keepdim=True) + 1e-3)
        x = self.count_in(torch.cat([feats[pair_view[rows]], maps], dim=1))
        gamma, beta = self.count_film(q[rows]).chunk(2, dim=-1)
        x = F.relu(x * (1 + gamma[..., None, None]) + beta[..., None, None])
        x = self.count_out(F.relu(self.count_mid(x))).flatten(2)  # (R, classes, cells)
        p = torch.softmax(x, dim=1)
        k = torch.arange(COUNT_CLASSES, dtype=p.dtype, device=p.device).view(1, -1, 1)
        cell_mean = (p * k).sum(1)
        mean = cell_mean.sum(1)
        var = ((p * k * k).sum(1) - cell_mean ** 2).sum(1) + self.count_log_var.exp()
        out.update(count_rows=rows, count_logits=x, count_mean=mean, count_var=var)
        n = c_numbers[rows].to(p.dtype)
        seen = torch.sigmoid(out["relevance"][rows]).detach().unsqueeze(1)
        score = -(n - mean.unsqueeze(1)) ** 2 / (2 * var.unsqueeze(1))
        named = (c_numbers[rows] >= 0).to(p.dtype)
        return logits.index_add(0, rows, self.count_log_weight.exp() * seen * score * named)


def state_hash(state: dict) -> str:
    """sha256 hex of a state dict (parameter names and float32 bytes, in name order): the last part of a builtin
    model id, so weights that differ from their id are detected on load."""
    import hashlib

    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().numpy().tobytes())
    return h.hexdigest()


def model_from_checkpoint(ckpt: dict):
    """(network in eval mode, vocabulary) of a validated checkpoint dict (vlm/backends/builtin.py); ValueError
    when its weights do not hash to its model id (changed or corrupted). Checkpoints of this architecture record
    colour_head=True in their model config (the head was optional once)."""
    from vlm.builtin_model.vocab import Vocab

    model_id = str(ckpt["model_id"])
    if model_id.rsplit("-", 1)[-1] != state_hash(ckpt["state_dict"])[:12]:
        raise ValueError(f"builtin checkpoint {model_id}: its weights do not match its model id (changed or "
                         "corrupted); use the shipped file or one written by `eqa train-vlm`")
    mc = dict(ckpt["config"]["model"])
    if not mc.pop("colour_head", False):
        raise ValueError(f"builtin checkpoint {model_id}: architecture {ARCHITECTURE} needs the colour "
                         "head (model config colour_head: true)")
    model = BuiltinVLMNet(**mc)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, Vocab(ckpt["config"]["vocab"][2:])
