"""Training, checkpointing and evaluation of the builtin VLM (`eqa train-vlm`).

Losses per (view, question) pair: answer cross-entropy where the view answers the question and
KL(uniform || p) where it does not (so the model stays unsure about what it cannot see); relevance and
worth-exploring binary cross-entropy; direction cross-entropy over the 3 points (label: smallest path
distance to an answerable viewpoint); grounding: -log of the attention mass that the first hop's first head
puts on the cells showing the question's targets (pairs where any target pixel is in view). Seeded: the same
config and data give bit-identical weights on the same machine and thread count (CPU kernels are
deterministic there; across CPUs results may differ in the last bits).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from vlm.builtin_model.data import N_POINTS, DataConfig, cell_grid
from vlm.builtin_model.model import (COLOUR_EPS, GOAL_SCALE, BuiltinVLMNet, architecture_name, choice_colour,
                                     choice_number)
from vlm.builtin_model.vocab import Vocab

MAX_CHOICES = 6
CENTRE_SIGMA = 0.8  # count_head: Gaussian fall-off (feature cells) of the centre heat targets
CENTRE_RADIUS = 2  # count_head: cells around a centre that the fall-off reaches
GOAL_CLIP = 3.0  # goal_map: goal distances are clipped to this many GOAL_SCALE units


@dataclass
class TrainConfig:
    """Everything `eqa train-vlm` needs. Data: train-split houses [0, train_houses) of dataset seed
    data_seed; eval: test-split houses [0, eval_houses). Optimisation: epochs over views, views_per_step
    images per step (each with all its house's questions)."""

    data: DataConfig = field(default_factory=DataConfig)
    eval_data: Optional[DataConfig] = None  # views of the evaluation houses; None: the same as data
    data_seed: int = 0
    train_houses: int = 160
    eval_houses: int = 30
    workers: int = 2
    seed: int = 0
    epochs: int = 4
    views_per_step: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    dim: int = 96
    emb: int = 64
    heads: int = 4
    key_dim: int = 16
    patch_dim: int = 16
    uniform_weight: float = 0.5
    worth_weight: float = 0.5
    direction_weight: float = 1.0
    ground_weight: float = 0.0  # grounding loss on the first attention head (needs target cells in the data)
    count_head: bool = False  # per-cell centre heat map whose peaks count the targets and score number choices
    count_weight: float = 1.0  # count loss (with count_head): count error + centre heat map focal loss
    dir_context: bool = False  # direction head sees what lies beyond each point and the other points
    dir_attention: bool = False  # direction head: each point attends over the view, with a bias per offset
    goal_map: bool = False  # per-cell goal-distance map (needs data.goal_distances), also read by the direction head
    goal_weight: float = 1.0  # goal-distance loss (with goal_map)
    colour_head: bool = False  # per-pixel colour classifier pooled by the grounded head; scores colour choices
    colour_weight: float = 1.0  # colour loss (with colour_head): its colour over the target cells vs the answer
    threads: int = 2
    max_steps: Optional[int] = None  # stop early (smoke tests)

    def __post_init__(self) -> None:
        if self.train_houses < 1 or self.epochs < 1 or self.views_per_step < 1:
            raise ValueError("train_houses, epochs and views_per_step must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


# -- text tensors ------------------------------------------------------------------------------------
def choice_table(questions: list[dict], attribute: Callable[[str], float], fill: float) -> np.ndarray:
    """(Q, MAX_CHOICES) float array: attribute(choice) per question and choice (choice_number, choice_colour),
    fill where a question has fewer choices."""
    table = np.full((len(questions), MAX_CHOICES), fill, dtype=np.float64)
    for i, q in enumerate(questions):
        table[i, :len(q["choices"])] = [attribute(c) for c in q["choices"]]
    return table


def question_tensors(questions: list[dict], vocab: Vocab, max_q: int, max_c: int):
    """(Q, max_q) question ids, (Q, 6, max_c) choice ids, (Q, 6) choice mask, (Q,) answer index,
    (Q, 6) the number each choice names (nan otherwise), (Q, 6) the colour each choice names (-1 otherwise)."""
    qt = torch.tensor([vocab.encode(q["question"], max_q) for q in questions], dtype=torch.long)
    ct = torch.zeros(len(questions), MAX_CHOICES, max_c, dtype=torch.long)
    cm = torch.zeros(len(questions), MAX_CHOICES, dtype=torch.bool)
    for i, q in enumerate(questions):
        for j, c in enumerate(q["choices"]):
            ct[i, j] = torch.tensor(vocab.encode(c, max_c))
            cm[i, j] = True
    cn = torch.from_numpy(choice_table(questions, choice_number, float("nan"))).float()
    cc = torch.from_numpy(choice_table(questions, choice_colour, -1)).long()
    ans = torch.tensor([q["answer_index"] for q in questions], dtype=torch.long)
    return qt, ct, cm, ans, cn, cc


def norm_points(points_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel (u, v) (integer = pixel centre) -> grid_sample coordinates in [-1, 1] (align_corners=False)."""
    p = np.asarray(points_px, dtype=np.float32)
    return np.stack([(p[..., 0] + 0.5) / width * 2 - 1, (p[..., 1] + 0.5) / height * 2 - 1], axis=-1)


class Batches:
    """Tensors of a dataset and per-view pair ranges (pairs are stored view-major)."""

    def __init__(self, ds: dict, vocab: Vocab, cfg_model: dict):
        self.ds = ds
        self.images = torch.from_numpy(ds["images"])  # (V, H, W, 3) uint8
        H, W = ds["images"].shape[1:3]
        self.points = torch.from_numpy(norm_points(ds["points"], W, H))
        self.has_points = torch.from_numpy(ds["has_points"])
        self.qt, self.ct, self.cm, self.ans, self.cn, self.cc = question_tensors(
            ds["questions"], vocab, cfg_model["max_q_len"], cfg_model["max_c_len"])
        self.pair_view = torch.from_numpy(ds["pair_view"]).long()
        self.pair_q = torch.from_numpy(ds["pair_question"]).long()
        self.rel = torch.from_numpy(ds["relevant"]).float()
        self.worth = torch.from_numpy(ds["worth"]).float()
        self.dir = torch.from_numpy(ds["dir_label"]).long()
        self.cells = ds.get("target_cells")  # (pairs, bytes) bit-packed target cells; None in older caches
        self.centres = ds.get("target_centres")  # (pairs, cells) target instances centred per cell; data v3
        self.goal = ds.get("goal_dist")  # (pairs, cells) goal distance (m) of the floor per cell; data.goal_distances
        self.grid = cell_grid(W, H)
        pv = ds["pair_view"]
        self.starts = np.searchsorted(pv, np.arange(len(self.images)), side="left")
        self.ends = np.searchsorted(pv, np.arange(len(self.images)), side="right")

    def batch(self, views: np.ndarray, flip: Optional[torch.Tensor] = None) -> dict:
        pairs = torch.from_numpy(np.concatenate([np.arange(self.starts[v], self.ends[v]) for v in views]))
        local = {int(v): i for i, v in enumerate(views)}
        imgs = self.images[torch.from_numpy(np.asarray(views))].permute(0, 3, 1, 2).float() / 255.0
        pts = self.points[self.pair_view[pairs]].clone()
        pvl = torch.tensor([local[int(v)] for v in self.pair_view[pairs]], dtype=torch.long)
        pf = None  # per pair: its view is flipped
        if flip is not None:
            imgs = torch.where(flip.view(-1, 1, 1, 1), imgs.flip(-1), imgs)
            pf = flip[pvl]
            pts[..., 0] = torch.where(pf.view(-1, 1), -pts[..., 0], pts[..., 0])
        q = self.pair_q[pairs]
        has = self.has_points[self.pair_view[pairs]]
        extra = {}
        rows = pairs.numpy()
        if self.cells is not None:
            fh, fw = self.grid
            cells = np.unpackbits(self.cells[rows], axis=-1)[:, :fh * fw].astype(bool)
            extra["target_cells"] = self._cell_map(cells, pf)
        if self.centres is not None:
            extra["target_centres"] = self._cell_map(self.centres[rows].astype(np.float32), pf)
        if self.goal is not None:
            extra["goal_dist"] = self._cell_map(self.goal[rows].astype(np.float32), pf)
        return {**extra, "cell_grid": self.grid, "images": imgs, "pair_view": pvl, "q_tokens": self.qt[q],
                "c_tokens": self.ct[q], "c_mask": self.cm[q], "c_numbers": self.cn[q],
                "c_colours": self.cc[q], "answer": self.ans[q],
                "points": pts, "p_mask": has.view(-1, 1).expand(-1, N_POINTS).clone(),
                "relevant": self.rel[pairs], "worth": self.worth[pairs], "dir": self.dir[pairs], "pairs": pairs}

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
                 b["c_numbers"], b["c_colours"])


def losses(out: dict, b: dict, cfg: TrainConfig) -> dict:
    logp = torch.log_softmax(out["answer"], dim=-1)
    vis = b["relevant"] > 0.5
    picked = logp.gather(1, b["answer"].view(-1, 1)).squeeze(1)
    n = b["c_mask"].sum(1).float()
    kl_u = -(logp.masked_fill(~b["c_mask"], 0.0).sum(1) / n) - torch.log(n)
    ans = -(picked[vis]).mean() if vis.any() else logp.new_zeros(())
    uni = kl_u[~vis].mean() if (~vis).any() else logp.new_zeros(())
    rel = F.binary_cross_entropy_with_logits(out["relevance"], b["relevant"])
    worth = F.binary_cross_entropy_with_logits(out["worth"], b["worth"])
    ok = b["dir"] >= 0
    d = F.cross_entropy(out["direction"][ok], b["dir"][ok]) if ok.any() else logp.new_zeros(())
    total = ans + cfg.uniform_weight * uni + rel + cfg.worth_weight * worth + cfg.direction_weight * d
    parts = {"answer": ans, "uniform": uni, "relevance": rel, "worth": worth, "direction": d}
    optional = (  # (part, on, batch key it needs, error without it, loss, weight), added to the total in this order
        ("ground", cfg.ground_weight > 0, "target_cells",
         "ground_weight > 0 needs training data with target cells (regenerate the data cache)",
         lambda: grounding_loss(out["ground_logits"], b["target_cells"]), cfg.ground_weight),
        ("count", "count" in out, "target_centres",
         "count_head needs training data with target centres (data format 3: regenerate the cache)",
         lambda: count_loss(out, b), cfg.count_weight),
        ("goal", "goal" in out, "goal_dist",
         "goal_map needs training data with goal distances (set data.goal_distances=true)",
         lambda: goal_loss(out["goal"], b["goal_dist"]), cfg.goal_weight),
        ("colour", "colour" in out, "target_cells",
         "colour_head needs training data with target cells (regenerate the data cache)",
         lambda: colour_loss(out["cell_colours"], b), cfg.colour_weight))
    for name, on, needs, problem, loss, weight in optional:
        if not on:
            continue
        if needs not in b:
            raise ValueError(problem)
        parts[name] = loss()
        total = total + weight * parts[name]
    return {"total": total, **parts}


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


def goal_loss(pred: torch.Tensor, goal_dist: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 error of the goal map (P, cells; GOAL_SCALE metres per unit) against the cells' goal distances
    (m; nan = no navigable floor, not scored), both clipped to +-GOAL_CLIP units; mean over scored cells."""
    ok = torch.isfinite(goal_dist)
    if not ok.any():
        return pred.new_zeros(())
    target = (goal_dist[ok] / GOAL_SCALE).clamp(-GOAL_CLIP, GOAL_CLIP)
    return F.smooth_l1_loss(pred[ok].clamp(-GOAL_CLIP, GOAL_CLIP), target)


def count_loss(out: dict, b: dict) -> torch.Tensor:
    """Pairs of count questions (their answer names a number): smooth-L1 error of the predicted count over the
    pairs whose view answers the question, plus the centre heat map's focal loss (centre_focal_loss) over all
    count pairs against the targets' centre cells (each target instance in view marks its centroid's cell)."""
    truth = b["c_numbers"].gather(1, b["answer"].view(-1, 1)).squeeze(1)
    counted = ~torch.isnan(truth)
    if not counted.any():
        return out["count"].new_zeros(())
    seen = counted & (b["relevant"] > 0.5)
    err = F.smooth_l1_loss(out["count"][seen], truth[seen]) if seen.any() else out["count"].new_zeros(())
    fh, fw = b["cell_grid"]
    heat = centre_targets(b["target_centres"][counted], fh, fw)
    return err + centre_focal_loss(out["centre_logits"][counted], heat)


def centre_targets(centres: torch.Tensor, fh: int, fw: int, sigma: float = CENTRE_SIGMA) -> torch.Tensor:
    """(P, fh * fw) instance centres per cell -> (P, fh * fw) heat targets: 1 at centre cells, falling off as a
    Gaussian of sigma cells around them (maximum over nearby centres), 0 far from any."""
    r = CENTRE_RADIUS
    d = torch.arange(-r, r + 1, dtype=torch.float32)
    kernel = torch.exp(-(d.view(-1, 1) ** 2 + d.view(1, -1) ** 2) / (2 * sigma ** 2)).flatten()
    binary = (centres > 0).float().view(-1, 1, fh, fw)
    patches = F.unfold(binary, 2 * r + 1, padding=r)  # (P, (2r+1)^2, cells)
    return (patches * kernel.view(1, -1, 1)).amax(1)


def centre_focal_loss(logits: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """Penalty-reduced focal loss of centre heat maps (P, cells): -(1-p)^2 log p at centre cells (heat 1),
    -(1-heat)^4 p^2 log(1-p) elsewhere; summed and divided by the number of centres (at least 1)."""
    p = torch.sigmoid(logits)
    centre = heat >= 1.0
    pos = (1 - p) ** 2 * F.logsigmoid(logits)
    neg = (1 - heat) ** 4 * p ** 2 * F.logsigmoid(-logits)
    return -torch.where(centre, pos, neg).sum() / centre.sum().clamp(min=1)


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
    vocab = Vocab.build([q["question"] for q in ds["questions"]] + [c for q in ds["questions"] for c in q["choices"]])
    H, W = ds["images"].shape[1:3]
    model = BuiltinVLMNet(len(vocab), W, H, cfg.dim, cfg.emb, cfg.heads, cfg.key_dim, cfg.patch_dim,
                          count_head=cfg.count_head, dir_context=cfg.dir_context, goal_map=cfg.goal_map,
                          colour_head=cfg.colour_head, dir_attention=cfg.dir_attention)
    data = Batches(ds, vocab, model.config)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    V = len(data.images)
    steps_per_epoch = max(1, math.ceil(V / cfg.views_per_step))
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if total_steps >= 4:  # warm-up of 10 % of the steps, at least 2 (OneCycleLR divides by warm-up steps - 1)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps,
                                                    pct_start=min(0.5, max(0.1, 2.0 / total_steps)))
    else:  # a handful of steps (smoke runs): constant learning rate
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _step: 1.0)
    history: list[dict] = []
    step, t0 = 0, time.perf_counter()
    model.train()
    acc: dict = {}
    while step < total_steps:
        order = rng.permutation(V)
        for s in range(steps_per_epoch):
            if step >= total_steps:
                break
            views = order[s * cfg.views_per_step:(s + 1) * cfg.views_per_step]
            flip = torch.rand(len(views), generator=gen) < 0.5
            b = data.batch(views, flip)
            ls = losses(run_model(model, b), b, cfg)
            opt.zero_grad(set_to_none=True)
            ls["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
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
                optional = "".join(f" {k} {rec[k]:.3f}" for k in ("ground", "count", "goal", "colour") if k in rec)
                log(f"step {step}/{total_steps} epoch {rec['epoch']:.2f} loss {rec['total']:.3f} "
                    f"(ans {rec['answer']:.3f} uni {rec['uniform']:.3f} rel {rec['relevance']:.3f} "
                    f"worth {rec['worth']:.3f} dir {rec['direction']:.3f}{optional}) {rec['elapsed_s']:.0f}s")
            if on_epoch is not None and step % steps_per_epoch == 0:
                model.eval()
                on_epoch(model, vocab, step // steps_per_epoch)
                model.train()
    model.eval()
    return model, vocab, history


# -- checkpoint ------------------------------------------------------------------------------------------
def make_checkpoint(model: BuiltinVLMNet, vocab: Vocab, cfg: TrainConfig, extra: Optional[dict] = None) -> dict:
    from vlm.backends.builtin import CHECKPOINT_FORMAT, FORMAT_VERSION
    from vlm.prompts import PROMPT_VERSION

    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].numpy().tobytes())
    config = {"model": dict(model.config), "vocab": list(vocab.words), "train": _plain(asdict(cfg))}
    if extra:
        config.update(extra)
    arch = architecture_name(model.config)
    return {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION, "architecture": arch,
            "model_id": f"builtin-{arch}-{h.hexdigest()[:12]}", "prompt_version": PROMPT_VERSION,
            "config": config, "state_dict": state}


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def model_from_checkpoint(ckpt: dict) -> tuple[BuiltinVLMNet, Vocab]:
    mc = ckpt["config"]["model"]
    model = BuiltinVLMNet(**mc)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, Vocab(ckpt["config"]["vocab"][2:])


# -- evaluation ------------------------------------------------------------------------------------------
def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); nan with one class."""
    from scipy.stats import rankdata

    labels = labels.astype(bool)
    n1, n0 = labels.sum(), (~labels).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@torch.inference_mode()
def predict(model: BuiltinVLMNet, vocab: Vocab, ds: dict, views_per_step: int = 64) -> dict:
    """Per pair: answer probs (Q, 6), relevance / worth probability, direction probs; with count_head also its
    count, with colour_head also its pooled colour probabilities (P, len(COLOUR_WORDS))."""
    data = Batches(ds, vocab, model.config)
    V = len(data.images)
    P = len(data.pair_view)
    ans = np.zeros((P, MAX_CHOICES))
    rel, worth = np.zeros(P), np.zeros(P)
    dirp = np.zeros((P, N_POINTS))
    optional: dict = {}  # the optional heads' per-pair outputs, as the model gives them
    for s in range(0, V, views_per_step):
        b = data.batch(np.arange(s, min(V, s + views_per_step)))
        out = run_model(model, b)
        idx = b["pairs"].numpy()
        ans[idx] = torch.softmax(out["answer"], -1).numpy()
        rel[idx] = torch.sigmoid(out["relevance"]).numpy()
        worth[idx] = torch.sigmoid(out["worth"]).numpy()
        dirp[idx] = torch.softmax(out["direction"], -1).numpy()
        for k in ("count", "colour"):
            if k in out:
                optional.setdefault(k, np.zeros((P,) + tuple(out[k].shape[1:])))[idx] = out[k].numpy()
    return {"answer": ans, "relevance": rel, "worth": worth, "direction": dirp, **optional}


def evaluate(pred: dict, ds: dict, n_bins: int = 10) -> dict:
    qs = ds["questions"]
    pq = ds["pair_question"]
    truth = np.array([qs[i]["answer_index"] for i in pq])
    n_ch = np.array([len(qs[i]["choices"]) for i in pq])
    cats = np.array([qs[i]["category"] for i in pq])
    vis = ds["relevant"].astype(bool)
    pa = pred["answer"]
    correct = pa.argmax(1) == truth
    conf = pa.max(1)
    m: dict = {"pairs": int(len(pq)), "views": int(len(ds["images"])), "questions": len(qs),
               "houses": len({q["house_seed"] for q in qs}), "visible_pairs": int(vis.sum())}
    m["answer_acc_visible"] = float(correct[vis].mean())
    m["answer_acc_not_visible"] = float(correct[~vis].mean())
    m["chance_not_visible"] = float((1.0 / n_ch[~vis]).mean())
    m["chance_visible"] = float((1.0 / n_ch[vis]).mean())
    m["mean_conf_visible"] = float(conf[vis].mean())
    m["mean_conf_not_visible"] = float(conf[~vis].mean())
    m["mean_uniform_conf_not_visible"] = m["chance_not_visible"]
    m["answer_acc_visible_by_category"] = {str(c): float(correct[vis & (cats == c)].mean())
                                          for c in sorted(set(cats)) if (vis & (cats == c)).any()}
    if "count" in pred:  # count_head: its own count, rounded, on the visible count pairs
        number = np.array([choice_number(qs[i]["choices"][qs[i]["answer_index"]]) for i in pq])
        counted = vis & ~np.isnan(number)
        m["count_head_acc_visible"] = float((np.round(pred["count"][counted]) == number[counted]).mean())
        m["count_head_mae_visible"] = float(np.abs(pred["count"][counted] - number[counted]).mean())
    if "colour" in pred:  # colour_head: its own pick among the named colours, on the visible colour pairs
        named = choice_table(qs, choice_colour, -1).astype(int)[pq]
        rows = vis & (named[np.arange(len(pq)), truth] >= 0)
        score = np.where(named >= 0, np.take_along_axis(pred["colour"], np.maximum(named, 0), 1), -1.0)
        m["colour_head_acc_visible"] = float((score[rows].argmax(1) == truth[rows]).mean())
    templates = np.array([qs[i].get("template", qs[i]["category"]) for i in pq])
    m["answer_acc_visible_by_template"] = {str(t): float(correct[vis & (templates == t)].mean())
                                          for t in sorted(set(templates)) if (vis & (templates == t)).any()}
    m["relevance_auroc"] = auroc(pred["relevance"], vis)
    m["worth_auroc"] = auroc(pred["worth"], ds["worth"].astype(bool))
    ok = ds["dir_label"] >= 0
    m["direction_pairs"] = int(ok.sum())
    choice = pred["direction"][ok].argmax(1)
    agree = choice == ds["dir_label"][ok]
    m["direction_agreement"] = float(agree.mean())
    pdist = ds["point_dist"][ok]
    srt = np.sort(pdist, axis=1)
    m["direction_agreement_gap_ge_1m"] = float(agree[(srt[:, 1] - srt[:, 0]) >= 1.0].mean())
    picked = np.take_along_axis(pdist, choice[:, None], 1)[:, 0]
    m["direction_agreement_ties"] = float((picked == srt[:, 0]).mean())  # any of several equally best points
    # calibration of the answer confidence on visible views
    bins = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(conf[vis], bins) - 1, 0, n_bins - 1)
    rows, ece = [], 0.0
    for k in range(n_bins):
        sel = which == k
        if sel.any():
            a, c = float(correct[vis][sel].mean()), float(conf[vis][sel].mean())
            ece += sel.mean() * abs(a - c)
            rows.append({"bin": [float(bins[k]), float(bins[k + 1])], "n": int(sel.sum()), "acc": a, "conf": c})
    m["ece_visible"] = float(ece)
    m["reliability_visible"] = rows
    return m


def reliability_png(metrics: dict, path: Path, title: str = "builtin VLM answer confidence (visible views)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = metrics["reliability_visible"]
    fig, ax = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [3, 2]})
    centres = [(r["bin"][0] + r["bin"][1]) / 2 for r in rows]
    ax[0].bar(centres, [r["acc"] for r in rows], width=0.09, color="tab:blue", alpha=0.8, label="accuracy")
    ax[0].plot([r["conf"] for r in rows], [r["acc"] for r in rows], "o", color="tab:orange", label="mean confidence")
    ax[0].plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax[0].set_xlabel("confidence (max answer probability)")
    ax[0].set_ylabel("accuracy")
    ax[0].set_xlim(0, 1)
    ax[0].set_ylim(0, 1)
    ax[0].set_title(f"{title}\nECE {metrics['ece_visible']:.3f}", fontsize=9)
    ax[0].legend(fontsize=8, loc="upper left")
    ax[1].bar(centres, [r["n"] for r in rows], width=0.09, color="gray")
    ax[1].set_xlabel("confidence")
    ax[1].set_ylabel("pairs")
    ax[1].set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_checkpoint(ckpt: dict, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buf.getvalue())


def dump_metrics(metrics: dict, path: Path) -> None:
    Path(path).write_text(json.dumps(metrics, indent=2, sort_keys=True))
