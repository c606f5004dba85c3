"""Training and checkpointing of the builtin VLM (`eqa train-vlm`).

Losses per (view, question) pair: answer cross-entropy where the view answers the question and
KL(uniform || p) where it does not (so the model stays unsure about what it cannot see); relevance and
worth-exploring binary cross-entropy; direction cross-entropy over the 3 points (label: smallest path
distance to an answerable viewpoint); grounding: -log of the attention mass that the first hop's first head
puts on the cells showing the question's targets (pairs where any target pixel is in view); colour: -log of
the answer's colour in the colour head's classification of the target cells. Options (v6): block colours:
cross-entropy of the colour head on every 2x2 pixel block showing an object against the colour of its surface
before lighting; count: per-cell cross-entropy of the count head against the counted things' centres plus the
Gaussian negative log-likelihood of the visible count under its mean and variance; exposure: each training view's
pixels scaled by a random gain in [1 - exposure, 1 + exposure] (clipped to [0, 1]); phantom colours: location
questions renamed with colours their relevant views do not show, as not-relevant pairs; phantom kinds: views
asked about a thing of their main colour of a kind their house lacks, as not-relevant pairs (training.phantoms);
kind-count rows: per view extra count rows for the kinds of its house (training.kind_counts), which train only
the count head and the grounding. Fine-tuning: start from a checkpoint (init_weights) and train only the parameters
named by a prefix (trainable), the rest frozen in eval mode.
Seeded: the same config and data give bit-identical weights on the same machine and thread count (CPU kernels
are deterministic there; across CPUs results may differ in the last bits).
"""
from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from mapping.bounds import NonNegative, NonNegativeInt, PositiveInt, Range, check_bounds
from vlm.builtin_model.model import (ARCHITECTURE, COLOUR_EPS, COUNT_CLASSES, BuiltinVLMNet, feature_grid,
                                     state_hash)
from vlm.builtin_model.tensors import norm_points, question_tensors
from vlm.builtin_model.training.data import N_POINTS, NO_COLOUR, DataConfig
from vlm.builtin_model.training.kind_counts import draw_rows
from vlm.builtin_model.training.phantoms import add_phantom_colours, add_phantom_kinds
from vlm.builtin_model.vocab import Vocab


@dataclass
class TrainConfig:
    """Everything `eqa train-vlm` needs (defaults: the shipped model). Data: train-split houses
    [0, train_houses) of dataset seed data_seed; eval: test-split houses [0, eval_houses). Optimisation:
    epochs over views, views_per_step images per step (each with all its house's questions)."""

    data: DataConfig = field(default_factory=DataConfig)
    eval_data: Optional[DataConfig] = None  # views of the evaluation houses; None: the same as data
    data_seed: Annotated[int, Range(ge=0, le=99)] = 0
    train_houses: Annotated[int, Range(ge=1, le=10_000)] = 240
    eval_houses: Annotated[int, Range(ge=0, le=10_000)] = 30
    workers: Annotated[int, Range(ge=1, le=256)] = 2
    seed: NonNegativeInt = 0
    epochs: Annotated[int, Range(ge=1, le=1000)] = 4
    views_per_step: Annotated[int, Range(ge=1, le=4096)] = 32
    lr: Annotated[float, Range(gt=0, le=1)] = 2e-3
    weight_decay: NonNegative = 1e-4
    dim: Annotated[int, Range(ge=2, le=4096)] = 96
    emb: Annotated[int, Range(ge=1, le=4096)] = 64
    heads: Annotated[int, Range(ge=1, le=64)] = 4
    key_dim: Annotated[int, Range(ge=1, le=1024)] = 16
    patch_dim: Annotated[int, Range(ge=1, le=1024)] = 16
    uniform_weight: NonNegative = 0.5
    worth_weight: NonNegative = 0.5
    direction_weight: NonNegative = 1.0
    ground_weight: NonNegative = 1.0  # grounding loss on the first attention head (target cells)
    colour_weight: NonNegative = 1.0  # colour loss: the colour head's colour over the target cells vs the answer
    block_colour_weight: NonNegative = 0.0  # colour head vs every object block's colour before lighting
    count_head: bool = False  # the per-cell count head (model.BuiltinVLMNet)
    count_weight: NonNegative = 1.0  # its losses (with count_head)
    exposure: Annotated[float, Range(ge=0, lt=1)] = 0.0  # random gain per training view: 1 +- exposure
    phantom_colours: Annotated[int, Range(ge=0, le=11)] = 0  # phantom-colour negatives per relevant location pair
    phantom_kinds: Annotated[int, Range(ge=0, le=10)] = 0  # phantom-kind negatives per view
    kind_count_rows: Annotated[int, Range(ge=0, le=64)] = 0  # count rows per view from data.kind_counts labels
    # Fine-tuning: start from this checkpoint (its vocabulary and its dim, emb, heads, key_dim and patch_dim, not
    # those here; count_head must match it). None trains from scratch.
    init_weights: Optional[str] = None
    # With init_weights, only the parameters whose names start with this prefix train ("count_": the count head);
    # the rest stay as they were, the network in eval mode (batch-norm statistics kept). Empty: all train.
    trainable: str = ""
    threads: Annotated[int, Range(ge=1, le=256)] = 2
    max_steps: Optional[PositiveInt] = None  # stop early (smoke tests)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.trainable and self.init_weights is None:
            raise ValueError("trainable names the parameters to fine-tune: it needs init_weights")


def view_ranges(pair_view: np.ndarray, n_views: int) -> tuple[np.ndarray, np.ndarray]:
    """Per view, the [start, end) range of its rows in pair_view (rows stored view-major, sorted by view)."""
    views = np.arange(n_views)
    return np.searchsorted(pair_view, views, side="left"), np.searchsorted(pair_view, views, side="right")


class Batches:
    """Tensors of a dataset and per-view pair ranges (pairs are stored view-major)."""

    def __init__(self, ds: dict, vocab: Vocab, cfg_model: dict):
        self.ds = ds
        self.images = torch.from_numpy(ds["images"])  # (V, H, W, 3) uint8
        H, W = ds["images"].shape[1:3]
        self.points = torch.from_numpy(norm_points(ds["points"], W, H))
        self.has_points = torch.from_numpy(ds["has_points"])
        self.qt, self.ct, self.cm, self.ans, self.cc, self.cn = question_tensors(
            ds["questions"], vocab, cfg_model["max_q_len"], cfg_model["max_c_len"])
        self.pair_view = torch.from_numpy(ds["pair_view"]).long()
        self.pair_q = torch.from_numpy(ds["pair_question"]).long()
        self.rel = torch.from_numpy(ds["relevant"]).float()
        self.worth = torch.from_numpy(ds["worth"]).float()
        self.dir = torch.from_numpy(ds["dir_label"]).long()
        self.cells = ds["target_cells"]  # (pairs, bytes) bit-packed target cells
        self.grid = feature_grid(W, H)
        self.block_colours = torch.from_numpy(ds["block_colours"]) if "block_colours" in ds else None
        self.centre_map = ds.get("centre_map")  # (count pairs, cells) centres per cell
        self.centre_row = np.full(len(ds["pair_view"]), -1, np.int64)  # pair -> its row of centre_map
        if "centre_pair" in ds:
            self.centre_row[ds["centre_pair"]] = np.arange(len(ds["centre_pair"]))
        self.starts, self.ends = view_ranges(ds["pair_view"], len(self.images))
        self.kind = None
        if "kind_questions" in ds:  # count rows for every kind (training.kind_counts)
            starts, ends = view_ranges(ds["kind_pair_view"], len(self.images))
            self.kind = {"q": question_tensors(ds["kind_questions"], vocab, cfg_model["max_q_len"],
                                               cfg_model["max_c_len"]),
                         "starts": starts, "ends": ends}

    def batch(self, views: np.ndarray, flip: Optional[torch.Tensor] = None, gain: Optional[torch.Tensor] = None,
              kind_rows: int = 0, rng: Optional[np.random.Generator] = None) -> dict:
        """The tensors of `views` and all their pairs; flip: per view, mirror it left-right; gain: per view, scale
        its pixels (clipped to [0, 1]); kind_rows: per view, up to that many kind-count rows (drawn with rng)
        after the pairs, marked in "aux"."""
        pairs = torch.from_numpy(np.concatenate([np.arange(self.starts[v], self.ends[v]) for v in views]))
        local = {int(v): i for i, v in enumerate(views)}
        vt = torch.from_numpy(np.asarray(views))
        imgs = self.images[vt].permute(0, 3, 1, 2).float() / 255.0
        if gain is not None:
            imgs = (imgs * gain.view(-1, 1, 1, 1)).clamp(0.0, 1.0)
        blocks = self.block_colours[vt].long() if self.block_colours is not None else None
        pts = self.points[self.pair_view[pairs]].clone()
        pvl = torch.tensor([local[int(v)] for v in self.pair_view[pairs]], dtype=torch.long)
        pf = None  # per pair: its view is flipped
        if flip is not None:
            imgs = torch.where(flip.view(-1, 1, 1, 1), imgs.flip(-1), imgs)
            if blocks is not None:  # exact when the width is a multiple of the block size
                blocks = torch.where(flip.view(-1, 1, 1), blocks.flip(-1), blocks)
            pf = flip[pvl]
            pts[..., 0] = torch.where(pf.view(-1, 1), -pts[..., 0], pts[..., 0])
        q = self.pair_q[pairs]
        has = self.has_points[self.pair_view[pairs]]
        fh, fw = self.grid
        cells = np.unpackbits(self.cells[pairs.numpy()], axis=-1)[:, :fh * fw].astype(bool)
        out = {"target_cells": self._cell_map(cells, pf), "images": imgs, "pair_view": pvl, "q_tokens": self.qt[q],
               "c_tokens": self.ct[q], "c_mask": self.cm[q], "c_colours": self.cc[q], "c_numbers": self.cn[q],
               "answer": self.ans[q], "points": pts, "p_mask": has.view(-1, 1).expand(-1, N_POINTS).clone(),
               "relevant": self.rel[pairs], "worth": self.worth[pairs], "dir": self.dir[pairs], "pairs": pairs,
               "block_colours": blocks}
        if self.centre_map is not None:  # per pair its centre map (-1 for pairs of questions that count nothing)
            row = self.centre_row[pairs.numpy()]
            centres = np.where(row[:, None] >= 0, self.centre_map[np.maximum(row, 0)].astype(np.int64), -1)
            out["centres"] = self._cell_map(centres, pf)
        if kind_rows > 0 and self.kind is not None:
            out = self._with_kind_rows(out, views, flip, kind_rows, rng)
        return out

    def _with_kind_rows(self, out: dict, views: np.ndarray, flip: Optional[torch.Tensor], k: int,
                        rng: np.random.Generator) -> dict:
        """`out` with up to k kind-count rows per view appended (kind_counts.draw_rows): their question, cells and
        centres (zeros for a query the view does not show); no points, not relevant, no direction; "aux" marks
        them."""
        ds, kd = self.ds, self.kind
        drawn = [draw_rows(int(v), kd["starts"], kd["ends"], ds["kind_pair_question"], ds["kind_first"],
                           ds["kind_n"], k, rng) for v in views]
        stored = np.concatenate([p for p, _q in drawn])
        q = torch.from_numpy(np.concatenate([qs for _p, qs in drawn]))
        local = torch.from_numpy(np.concatenate([np.full(len(p), i, np.int64) for i, (p, _q) in enumerate(drawn)]))
        n = len(stored)
        fh, fw = self.grid
        cells = np.zeros((n, fh * fw), bool)
        centres = np.zeros((n, fh * fw), np.int64)
        hit = stored >= 0
        cells[hit] = np.unpackbits(ds["kind_cells"][stored[hit]], axis=-1)[:, :fh * fw].astype(bool)
        centres[hit] = ds["kind_centres"][stored[hit]]
        pf = flip[local] if flip is not None else None
        qt, ct, cm, ans, cc, cn = kd["q"]
        extra = {"target_cells": self._cell_map(cells, pf), "pair_view": local, "q_tokens": qt[q], "c_tokens": ct[q],
                 "c_mask": cm[q], "c_colours": cc[q], "c_numbers": cn[q], "answer": ans[q],
                 "points": out["points"].new_zeros(n, N_POINTS, 2),
                 "p_mask": torch.zeros(n, N_POINTS, dtype=torch.bool),
                 "relevant": torch.zeros(n), "worth": torch.zeros(n), "dir": torch.full((n,), -1, dtype=torch.long),
                 "pairs": torch.full((n,), -1, dtype=torch.long), "centres": self._cell_map(centres, pf)}
        merged = dict(out)
        for key, rows in extra.items():
            merged[key] = torch.cat([out[key], rows])
        merged["aux"] = torch.cat([torch.zeros(len(out["pairs"]), dtype=torch.bool), torch.ones(n, dtype=torch.bool)])
        return merged

    def _cell_map(self, per_cell: np.ndarray, flip: Optional[torch.Tensor]) -> torch.Tensor:
        """(pairs, cells) row-major over the feature grid -> tensor, mirrored left-right in the rows where
        flip is set (cell-exact when the width is a multiple of the stride)."""
        fh, fw = self.grid
        grid = torch.from_numpy(per_cell).view(-1, fh, fw)
        if flip is not None:
            grid = torch.where(flip.view(-1, 1, 1), grid.flip(-1), grid)
        return grid.flatten(1)


def run_model(model: BuiltinVLMNet, b: dict) -> dict:
    feats = model.encode_images(b["images"])
    p_mask = b["p_mask"] | ~b["p_mask"].any(1, keepdim=True)  # rows without points: dummy (no loss)
    return model(feats, b["pair_view"], b["q_tokens"], b["c_tokens"], b["c_mask"], b["points"], p_mask,
                 b["c_colours"], b["c_numbers"])


def losses(out: dict, b: dict, cfg: TrainConfig) -> dict:
    """Every loss of a batch; rows marked in b["aux"] (kind-count rows) train only the grounding and the count
    head."""
    logp = torch.log_softmax(out["answer"], dim=-1)
    vis = b["relevant"] > 0.5
    picked = logp.gather(1, b["answer"].view(-1, 1)).squeeze(1)
    n = b["c_mask"].sum(1).float()
    kl_u = -(logp.masked_fill(~b["c_mask"], 0.0).sum(1) / n) - torch.log(n)
    pair = ~b["aux"] if "aux" in b else torch.ones_like(vis)
    ans = -(picked[vis & pair]).mean() if (vis & pair).any() else logp.new_zeros(())
    uni = kl_u[~vis & pair].mean() if (~vis & pair).any() else logp.new_zeros(())
    rel = F.binary_cross_entropy_with_logits(out["relevance"][pair], b["relevant"][pair])
    worth = F.binary_cross_entropy_with_logits(out["worth"][pair], b["worth"][pair])
    ok = b["dir"] >= 0
    d = F.cross_entropy(out["direction"][ok], b["dir"][ok]) if ok.any() else logp.new_zeros(())
    total = ans + cfg.uniform_weight * uni + rel + cfg.worth_weight * worth + cfg.direction_weight * d
    parts = {"answer": ans, "uniform": uni, "relevance": rel, "worth": worth, "direction": d}
    if cfg.ground_weight > 0:
        parts["ground"] = grounding_loss(out["ground_logits"], b["target_cells"])
        total = total + cfg.ground_weight * parts["ground"]
    parts["colour"] = colour_loss(out["cell_colours"], b)
    total = total + cfg.colour_weight * parts["colour"]
    if cfg.block_colour_weight > 0:
        parts["blocks"] = F.cross_entropy(out["block_colour_logits"], b["block_colours"], ignore_index=NO_COLOUR)
        total = total + cfg.block_colour_weight * parts["blocks"]
    if cfg.count_head:
        parts["count"] = count_loss(out, b)
        total = total + cfg.count_weight * parts["count"]
    return {"total": total, **parts}


def count_loss(out: dict, b: dict) -> torch.Tensor:
    """On the rows the count head ran on: per-cell cross-entropy against the centres in each cell (classes 0, 1
    and 2 or more), summed over the cells, plus the Gaussian negative log-likelihood of the visible count (all
    centres) under the head's mean and variance; averaged over rows (0 without count rows)."""
    if "count_rows" not in out:
        return out["relevance"].new_zeros(())
    centres = b["centres"][out["count_rows"]]
    ok = centres[:, 0] >= 0
    if not ok.any():
        return out["relevance"].new_zeros(())
    logits, centres = out["count_logits"][ok], centres[ok]
    cells = F.cross_entropy(logits, centres.clamp(max=COUNT_CLASSES - 1), reduction="none").sum(1)
    total = centres.sum(1).to(logits.dtype)
    mean, var = out["count_mean"][ok], out["count_var"][ok]
    nll = 0.5 * torch.log(2 * math.pi * var) + (total - mean) ** 2 / (2 * var)
    return (cells + nll).mean()


def colour_loss(cell_colours: torch.Tensor, b: dict) -> torch.Tensor:
    """Mean -log of the answer's colour in the colour head's classification averaged over the target cells, on
    the relevant pairs whose answer names a colour and whose view shows a target cell (the pixel classifier
    learns from where the targets are, independently of where the attention looks).
    cell_colours: (B, N, colours) per view; b: a batch (pair_view, relevant, answer, c_colours, target_cells)."""
    truth = b["c_colours"].gather(1, b["answer"].view(-1, 1)).squeeze(1)
    cells = b["target_cells"].float()
    rows = (b["relevant"] > 0.5) & (truth >= 0) & (cells.sum(1) > 0)
    if not rows.any():
        return cell_colours.new_zeros(())
    m = cells[rows] / cells[rows].sum(1, keepdim=True)
    hist = torch.einsum("pn,pnc->pc", m, cell_colours[b["pair_view"][rows]])
    return -torch.log(hist.gather(1, truth[rows].view(-1, 1)) + COLOUR_EPS).mean()


def grounding_loss(logits: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Mean over rows with any target cell of -log(softmax attention mass on the target cells).
    logits: (P, N) attention logits over the view's cells; cells: (P, N) bool."""
    has = cells.any(1)
    if not has.any():
        return logits.new_zeros(())
    lg, m = logits[has], cells[has]
    return (torch.logsumexp(lg, 1) - torch.logsumexp(lg.masked_fill(~m, float("-inf")), 1)).mean()


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))


def train(ds: dict, cfg: TrainConfig, log: Callable[[str], None] = print,
          on_epoch: Optional[Callable[[BuiltinVLMNet, Vocab, int], None]] = None
          ) -> tuple[BuiltinVLMNet, Vocab, list[dict]]:
    """Train from a dataset dict (data.build_dataset); returns model, vocab and per-log-step losses.
    on_epoch(model, vocab, epoch) is called after each full epoch (model in eval mode during the call)."""
    torch.set_num_threads(cfg.threads)
    seed_all(cfg.seed)
    texts = [q["question"] for q in ds["questions"]] + [c for q in ds["questions"] for c in q["choices"]]
    if cfg.kind_count_rows > 0:
        if not cfg.count_head or "kind_questions" not in ds:
            raise ValueError("kind_count_rows needs count_head: true and data made with data.kind_counts: true")
        texts += [q["question"] for q in ds["kind_questions"]]  # their kinds' words (choices: number words)
    else:
        ds = {k: v for k, v in ds.items() if not k.startswith("kind_")}
    start = initial_checkpoint(cfg.init_weights) if cfg.init_weights else None
    vocab = Vocab.build(texts) if start is None else Vocab(start["config"]["vocab"][2:])
    n_pairs = len(ds["pair_view"])
    ds = add_phantom_colours(ds, cfg.phantom_colours, cfg.seed)  # after the vocabulary: they add no words
    ds = add_phantom_kinds(ds, cfg.phantom_kinds, cfg.seed)
    if len(ds["pair_view"]) > n_pairs:
        log(f"phantoms: {len(ds['pair_view']) - n_pairs} not-relevant location pairs added to {n_pairs}")
    H, W = ds["images"].shape[1:3]
    if start is None:
        model = BuiltinVLMNet(len(vocab), W, H, cfg.dim, cfg.emb, cfg.heads, cfg.key_dim, cfg.patch_dim,
                              count_head=cfg.count_head)
    else:
        model = fine_tuned_network(start, cfg, W, H, log)
    params = [p for p in model.parameters() if p.requires_grad]
    data = Batches(ds, vocab, model.config)
    rng = np.random.default_rng(cfg.seed)
    kind_rng = np.random.default_rng(cfg.seed + 1)  # own stream: runs without kind rows draw as before
    gen = torch.Generator().manual_seed(cfg.seed)
    V = len(data.images)
    steps_per_epoch = max(1, math.ceil(V / cfg.views_per_step))
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if total_steps >= 4:  # warm-up of 10 % of the steps, at least 2 (OneCycleLR divides by warm-up steps - 1)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps,
                                                    pct_start=min(0.5, max(0.1, 2.0 / total_steps)))
    else:  # a handful of steps (smoke runs): constant learning rate
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _step: 1.0)
    history: list[dict] = []
    step, t0 = 0, time.perf_counter()
    train_mode = not cfg.trainable  # fine-tuning part of the network: batch-norm statistics stay as they were
    model.train(train_mode)
    acc: dict = {}
    while step < total_steps:
        order = rng.permutation(V)
        for s in range(steps_per_epoch):
            if step >= total_steps:
                break
            views = order[s * cfg.views_per_step:(s + 1) * cfg.views_per_step]
            flip = torch.rand(len(views), generator=gen) < 0.5
            gain = None
            if cfg.exposure > 0:  # drawn only when on: the random stream of runs without it is unchanged
                gain = 1.0 + cfg.exposure * (2.0 * torch.rand(len(views), generator=gen) - 1.0)
            b = data.batch(views, flip, gain, cfg.kind_count_rows, kind_rng)
            out = run_model(model, b)
            if cfg.block_colour_weight > 0:
                out["block_colour_logits"] = model.block_colour_logits(b["images"])
            ls = losses(out, b, cfg)
            opt.zero_grad(set_to_none=True)
            if ls["total"].requires_grad:  # fine-tuning the count head: a batch without count rows has no gradient
                ls["total"].backward()
                torch.nn.utils.clip_grad_norm_(params, 5.0)
                opt.step()
            sched.step()
            step += 1
            for k, v in ls.items():
                acc[k] = acc.get(k, 0.0) + float(v.detach())
            acc["n"] = acc.get("n", 0) + 1
            if step % 50 == 0 or step == total_steps:
                rec = {k: v / acc["n"] for k, v in acc.items() if k != "n"}
                rec.update(step=step, epoch=step / steps_per_epoch, elapsed_s=time.perf_counter() - t0)
                history.append(rec)
                acc = {}
                optional = "".join(f" {k} {rec[k]:.3f}" for k in ("ground", "colour", "blocks", "count") if k in rec)
                log(f"step {step}/{total_steps} epoch {rec['epoch']:.2f} loss {rec['total']:.3f} "
                    f"(ans {rec['answer']:.3f} uni {rec['uniform']:.3f} rel {rec['relevance']:.3f} "
                    f"worth {rec['worth']:.3f} dir {rec['direction']:.3f}{optional}) {rec['elapsed_s']:.0f}s")
            if on_epoch is not None and step % steps_per_epoch == 0:
                model.eval()
                on_epoch(model, vocab, step // steps_per_epoch)
                model.train(train_mode)
    model.eval()
    return model, vocab, history


def initial_checkpoint(path: str) -> dict:
    """The validated checkpoint dict that fine-tuning starts from (TrainConfig.init_weights)."""
    from vlm.backends.builtin import check_checkpoint

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"init_weights: no checkpoint at {p}")
    return check_checkpoint(torch.load(p, map_location="cpu", weights_only=True), p)


def fine_tuned_network(start: dict, cfg: TrainConfig, width: int, height: int,
                       log: Callable[[str], None]) -> BuiltinVLMNet:
    """The network of checkpoint `start`, with only the parameters named by cfg.trainable left trainable (all
    when empty). ValueError when the data's view size or the count head does not match the checkpoint."""
    from vlm.builtin_model.model import model_from_checkpoint

    model, _ = model_from_checkpoint(start)
    if (model.config["width"], model.config["height"]) != (width, height):
        raise ValueError(f"init_weights {start['model_id']} takes {model.config['width']}x{model.config['height']} "
                         f"views, the data has {width}x{height}")
    if cfg.count_head != model.has_count_head:
        raise ValueError(f"count_head: {cfg.count_head}, but init_weights {start['model_id']} "
                         f"{'has' if model.has_count_head else 'has no'} count head")
    names = [n for n, _ in model.named_parameters()]
    chosen = [n for n in names if n.startswith(cfg.trainable)]
    if not chosen:
        raise ValueError(f"trainable {cfg.trainable!r} names no parameter of {start['model_id']}")
    for n, p in model.named_parameters():
        p.requires_grad_(n in chosen)
    log(f"fine-tuning {start['model_id']}: {sum(p.numel() for p in model.parameters() if p.requires_grad)} of "
        f"{sum(p.numel() for p in model.parameters())} parameters train ({len(chosen)} tensors"
        f"{', prefix ' + repr(cfg.trainable) if cfg.trainable else ''})")
    return model


# -- checkpoint ------------------------------------------------------------------------------------------
def make_checkpoint(model: BuiltinVLMNet, vocab: Vocab, cfg: TrainConfig, extra: Optional[dict] = None) -> dict:
    """The checkpoint dict of vlm/weights/README.md; model_id = builtin-<architecture>-<weights hash>."""
    from vlm.backends.builtin import CHECKPOINT_FORMAT, FORMAT_VERSION
    from vlm.prompts import PROMPT_VERSION

    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # colour_head: the network always has it now; checkpoints say so (see model.model_from_checkpoint)
    config = {"model": {**model.config, "colour_head": True}, "vocab": list(vocab.words), "train": asdict(cfg)}
    if extra:
        config.update(extra)
    return {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION, "architecture": ARCHITECTURE,
            "model_id": f"builtin-{ARCHITECTURE}-{state_hash(state)[:12]}", "prompt_version": PROMPT_VERSION,
            "config": config, "state_dict": state}


def save_checkpoint(ckpt: dict, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buf.getvalue())
