"""`eqa train-vlm`: generate simulator data, train the builtin VLM and evaluate it on held-out test-split
houses. Writes a new model folder (checkpoint, metrics JSON, reliability diagram, model card), never the
shipped weights."""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

EPOCH_METRICS = ("answer_acc_visible", "answer_acc_not_visible", "relevance_auroc", "direction_agreement",
                 "worth_auroc", "ece_visible", "colour_head_acc_visible")
WEIGHTS_NAME = "builtin_vlm.pt"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-vlm", help="train the builtin VLM on built-in simulator data",
                       description="Generate training views from train-split houses, train the builtin VLM "
                                   "(seeded), and write a new model folder: builtin_vlm.pt, its metrics on "
                                   "test-split houses, a reliability diagram and MODEL_CARD.md. Use it with "
                                   "vlm.builtin.weights=FOLDER/builtin_vlm.pt.")
    p.add_argument("--config", default="train_vlm", help="training config YAML (default configs/train_vlm.yaml)")
    p.add_argument("--out", type=Path, default=None,
                   help="new model folder (default: a fresh out/train_vlm/model-N); never the shipped weights")
    p.add_argument("--work-dir", type=Path, default=Path("out/train_vlm"),
                   help="data cache and logs (default out/train_vlm)")
    p.add_argument("--skip-eval", action="store_true", help="do not evaluate on test-split houses")
    p.add_argument("--eval-epochs", action="store_true",
                   help="also evaluate on the test-split houses after every epoch (learning curve in the metrics)")
    p.add_argument("overrides", nargs="*", help="config overrides like epochs=2 data.width=128")
    p.set_defaults(func=run)


def model_folder(out: Path | None, work: Path) -> Path:
    """The folder to write: `out`, or the first free work/model-N. ValueError when it already holds a model
    or is the shipped weights folder."""
    from vlm.backends.builtin import WEIGHTS_DIR

    if out is None:
        n = 1
        while (work / f"model-{n}").exists():
            n += 1
        out = work / f"model-{n}"
    if out.resolve() == WEIGHTS_DIR.resolve():
        raise ValueError(f"--out {out} is the shipped weights folder; train into a new folder and copy by hand")
    if (out / WEIGHTS_NAME).exists():
        raise ValueError(f"{out} already holds a model ({WEIGHTS_NAME}); choose a new --out")
    return out


def data_cache_key(split: str, n_houses: int, data_seed: int, dcfg) -> str:
    """12 hex digits naming a dataset cache: split, houses, seed, data config and data format."""
    from dataclasses import asdict

    from vlm.builtin_model.training import data

    config = asdict(dcfg)
    for later in ("answer_checks", "count_first", "distractor_views", "kind_counts"):
        if not config[later]:  # at its default: the data made before the field existed keeps its cache name
            del config[later]
    key = [split, n_houses, data_seed, config, data.DATA_VERSION]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]


def split_data_config(split: str, cfg):
    """DataConfig of `split` under TrainConfig cfg: training data from cfg.data; test-split (evaluation) data
    from cfg.eval_data (cfg.data when unset)."""
    return cfg.data if split == "train" else (cfg.eval_data or cfg.data)


def cached_data(split: str, n_houses: int, cfg, work: Path, log) -> dict:
    """Cached dataset of `split` (views as split_data_config says)."""
    from vlm.builtin_model.training import data

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


def held_out_data(config_name: str, answer_checks: bool, work: Path, log) -> dict:
    """The cached evaluation data of train-vlm config `config_name` (its eval_houses test-split houses and
    eval_data views), with questions made with the one-reading checks when answer_checks (else as configured)."""
    from dataclasses import replace

    from eqa.config import load_config
    from vlm.builtin_model.training.train import TrainConfig

    cfg = load_config(TrainConfig, config_name)
    if answer_checks:
        cfg = replace(cfg, eval_data=replace(split_data_config("test", cfg), answer_checks=True))
    return cached_data("test", cfg.eval_houses, cfg, work, log)


def model_card(ckpt: dict, cfg, metrics: dict | None, config_name: str) -> str:
    """MODEL_CARD.md of a trained folder: what it is, how it was trained, its held-out figures."""
    from dataclasses import asdict

    lines = [f"# Builtin VLM {ckpt['model_id']}", "",
             f"Trained by `eqa train-vlm --config {config_name}` on views of {cfg.train_houses} train-split houses "
             f"(dataset seed {cfg.data_seed}) rendered by the built-in simulator; architecture "
             f"`{ckpt['architecture']}`, prompts `{ckpt['prompt_version']}`. For research use with the built-in "
             "simulator; it has never seen real images. The shipped model's card (vlm/weights/MODEL_CARD.md) "
             "describes the data, the heads and their limits.", "", "## Training config", "", "```json",
             json.dumps(asdict(cfg), indent=1), "```", ""]
    if metrics is None:
        lines += ["Not evaluated (`--skip-eval`)."]
    else:
        lines += [f"## Held-out figures ({metrics['houses']} test-split houses, {metrics['pairs']} view-question "
                  "pairs)", ""]
        lines += [f"- {k}: {metrics[k]:.3f}" for k in EPOCH_METRICS if k in metrics]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    import torch

    from eqa.config import load_config
    from vlm.builtin_model.training import evaluate as E
    from vlm.builtin_model.training import train as T

    cfg = load_config(T.TrainConfig, args.config, args.overrides)
    work = Path(args.work_dir)
    out = model_folder(args.out, work)
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "train_log.txt", "a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_file.write(msg + "\n")
        log_file.flush()

    t0 = time.perf_counter()
    ds = cached_data("train", cfg.train_houses, cfg, work, log)
    t_data = time.perf_counter() - t0
    evaluate = not args.skip_eval and cfg.eval_houses > 0
    curve: list[dict] = []
    on_epoch, test = None, None
    if args.eval_epochs and evaluate:
        test = cached_data("test", cfg.eval_houses, cfg, work, log)

        def on_epoch(model, vocab, epoch: int) -> None:
            te = time.perf_counter()
            m = E.evaluate(E.predict(model, vocab, test), test)
            row = {"epoch": epoch, **{k: m[k] for k in EPOCH_METRICS if k in m}, "eval_s": time.perf_counter() - te}
            curve.append(row)
            log("held-out after epoch " + " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                   for k, v in row.items()))
    t1 = time.perf_counter()
    model, vocab, history = T.train(ds, cfg, log, on_epoch)
    t_train = time.perf_counter() - t1 - sum(r["eval_s"] for r in curve)  # per-epoch evaluation excluded
    ckpt = T.make_checkpoint(model, vocab, cfg, {"history": history})
    weights = out / WEIGHTS_NAME
    T.save_checkpoint(ckpt, weights)
    size = weights.stat().st_size
    log(f"wrote {weights} ({size / 1e6:.2f} MB, model_id {ckpt['model_id']}); data {t_data:.0f} s, "
        f"training {t_train:.0f} s")
    metrics = None
    if evaluate:
        if test is None:
            test = cached_data("test", cfg.eval_houses, cfg, work, log)
        metrics = E.evaluate(E.predict(model, vocab, test), test)
        metrics.update(model_id=ckpt["model_id"], data_seconds=t_data, train_seconds=t_train, weights_bytes=size)
        if curve:
            metrics["held_out_by_epoch"] = curve
        E.dump_metrics(metrics, out / "builtin_vlm_metrics.json")
        E.reliability_png(metrics, out / "builtin_vlm_reliability.png")
        log(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}, indent=1))
        log(f"per category (visible): {metrics['answer_acc_visible_by_category']}")
        log(f"per template (visible): {metrics['answer_acc_visible_by_template']}")
    (out / "MODEL_CARD.md").write_text(model_card(ckpt, cfg, metrics, args.config))
    log(f"model folder {out}: use it with vlm.builtin.weights={weights}")
    log_file.close()
    return 0
