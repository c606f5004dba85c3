"""`eqa train-vlm`: generate simulator data, train the builtin VLM, save the checkpoint and evaluate it on
held-out test-split houses (metrics JSON + reliability diagram PNG next to the weights)."""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path


EPOCH_METRICS = ("answer_acc_visible", "answer_acc_not_visible", "relevance_auroc", "direction_agreement",
                 "worth_auroc", "ece_visible")
OPTIONAL_EPOCH_METRICS = ("count_head_acc_visible", "colour_head_acc_visible")  # with count_head / colour_head
LATER_DATA_FIELDS = {"point_sampling": "random", "goal_distances": False}  # data options added after data format 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-vlm", help="train the builtin VLM on built-in simulator data",
                       description="Generate training views from train-split houses, train the builtin VLM "
                                   "(seeded), write the checkpoint and evaluate it on test-split houses.")
    p.add_argument("--config", default="train_vlm", help="training config YAML (default configs/train_vlm.yaml)")
    p.add_argument("--out", type=Path, default=None,
                   help="checkpoint path (default: the shipped vlm/weights/builtin_vlm.pt)")
    p.add_argument("--work-dir", type=Path, default=Path("out/train_vlm"),
                   help="data cache and logs (default out/train_vlm)")
    p.add_argument("--skip-eval", action="store_true", help="do not evaluate on test-split houses")
    p.add_argument("--eval-epochs", action="store_true",
                   help="also evaluate on the test-split houses after every epoch (learning curve in the metrics)")
    p.add_argument("overrides", nargs="*", help="config overrides like epochs=2 data.width=128")
    p.set_defaults(func=run)


def data_cache_key(split: str, n_houses: int, data_seed: int, dcfg) -> str:
    """12 hex digits naming a dataset cache: split, houses, seed, data config and data format. Options added
    after data format 3 enter the key only when changed, so caches made before them stay valid."""
    from dataclasses import asdict

    from vlm.builtin_model import data

    fields = {k: v for k, v in asdict(dcfg).items() if LATER_DATA_FIELDS.get(k, object()) != v}
    return hashlib.sha256(json.dumps([split, n_houses, data_seed, fields, data.DATA_VERSION]).encode()).hexdigest()[:12]


def split_data_config(split: str, cfg):
    """DataConfig of `split` under TrainConfig cfg: training data from cfg.data; test-split (evaluation) data
    from cfg.eval_data (cfg.data when unset), never recoloured."""
    from dataclasses import replace

    return cfg.data if split == "train" else replace(cfg.eval_data or cfg.data, recolour_per_view=0)


def _data(split: str, n_houses: int, cfg, work: Path, log) -> dict:
    """Cached dataset of `split` (views as split_data_config says)."""
    from vlm.builtin_model import data

    dcfg = split_data_config(split, cfg)
    key = data_cache_key(split, n_houses, cfg.data_seed, dcfg)
    path = work / f"{split}_{n_houses}h_{key}.npz"
    if path.is_file():
        log(f"{split} data: cached {path}")
        return data.load(path)
    from tqdm import tqdm

    t0 = time.perf_counter()
    with tqdm(total=n_houses, desc=f"{split} houses", unit="house") as bar:
        ds = data.build_dataset(split, n_houses, cfg.data_seed, dcfg, workers=cfg.workers, progress=bar.update)
    work.mkdir(parents=True, exist_ok=True)
    data.save(ds, path)
    log(f"{split} data: {len(ds['images'])} views, {len(ds['pair_view'])} pairs from {n_houses} houses "
        f"in {time.perf_counter() - t0:.0f} s -> {path}")
    return ds


def run(args: argparse.Namespace) -> int:
    import torch

    from eqa.config import load_config
    from vlm.backends.builtin import WEIGHTS_FILE
    from vlm.builtin_model import train as T

    cfg = load_config(T.TrainConfig, args.config, args.overrides)
    torch.set_num_threads(cfg.threads)
    out = Path(args.out) if args.out else WEIGHTS_FILE
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    log_file = open(work / "train_log.txt", "a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_file.write(msg + "\n")
        log_file.flush()

    t0 = time.perf_counter()
    ds = _data("train", cfg.train_houses, cfg, work, log)
    t_data = time.perf_counter() - t0
    evaluate = not args.skip_eval and cfg.eval_houses > 0
    curve: list[dict] = []
    on_epoch, test = None, None
    if args.eval_epochs and evaluate:
        test = _data("test", cfg.eval_houses, cfg, work, log)

        def on_epoch(model, vocab, epoch: int) -> None:
            te = time.perf_counter()
            m = T.evaluate(T.predict(model, vocab, test), test)
            row = {"epoch": epoch, **{k: m[k] for k in EPOCH_METRICS + OPTIONAL_EPOCH_METRICS if k in m},
                   "eval_s": time.perf_counter() - te}
            curve.append(row)
            log("held-out after epoch " + " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                   for k, v in row.items()))
    t1 = time.perf_counter()
    model, vocab, history = T.train(ds, cfg, log, on_epoch)
    t_train = time.perf_counter() - t1 - sum(r["eval_s"] for r in curve)  # per-epoch evaluation excluded
    ckpt = T.make_checkpoint(model, vocab, cfg, {"history": history})
    T.save_checkpoint(ckpt, out)
    size = out.stat().st_size
    log(f"wrote {out} ({size / 1e6:.2f} MB, model_id {ckpt['model_id']}); data {t_data:.0f} s, "
        f"training {t_train:.0f} s")
    if evaluate:
        if test is None:
            test = _data("test", cfg.eval_houses, cfg, work, log)
        metrics = T.evaluate(T.predict(model, vocab, test), test)
        metrics.update(model_id=ckpt["model_id"], data_seconds=t_data, train_seconds=t_train,
                       weights_bytes=size)
        if curve:
            metrics["held_out_by_epoch"] = curve
        stem = out.with_suffix("")
        T.dump_metrics(metrics, Path(f"{stem}_metrics.json"))
        T.reliability_png(metrics, Path(f"{stem}_reliability.png"))
        log(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}, indent=1))
        log(f"per category (visible): {metrics['answer_acc_visible_by_category']}")
        log(f"per template (visible): {metrics['answer_acc_visible_by_template']}")
    log_file.close()
    return 0
