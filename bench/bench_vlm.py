"""Per-view VLM latency: the four queries batched (query_view) versus one call each, and cache hits.

Backends: the tiny seeded random `hf` model (Qwen2-VL or LLaVA family, built offline; or --hf-model PATH),
`clip` ViT-B-32 (random weights unless --clip-weights FILE), and optionally `openai` against the
project's own server on loopback (--server). CPU by default. Prints a table; --json writes the figures.

    .venv/bin/python bench/bench_vlm.py --repeats 10
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the offline tiny-model builders live with the tests

from vlm import VLMConfig, make_vlm  # noqa: E402
from vlm.cache import ResponseCache  # noqa: E402

QUESTION = "Is the stove in the kitchen turned on?"
CHOICES = ["Yes, it is on", "No, it is off", "There is no stove", "I cannot tell"]


def summary(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "p90": float(np.percentile(times, 90))}


def bench_backend(name: str, vlm, image: np.ndarray, points, repeats: int, cache_dir: Path) -> dict:
    """Seconds per view: batched (query_view), four single calls, and warm-cache batched. Batched and
    single runs alternate so that load from other processes affects both alike."""
    def batched():
        vlm.query_view(image, QUESTION, CHOICES, points)

    def singles():
        vlm.answer(image, QUESTION, CHOICES)
        vlm.relevance(image, QUESTION)
        vlm.direction_scores(image, QUESTION, points)
        vlm.worth_exploring(image, QUESTION)

    batched(), singles()  # warm-up (allocator, kernels)
    vlm.accounting.reset()
    times: dict[str, list[float]] = {"batched_view_s": [], "single_calls_view_s": []}
    for i in range(repeats):
        for label, fn in (("batched_view_s", batched), ("single_calls_view_s", singles)):
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
        print(f"  {name}: {i + 1}/{repeats}", end="\r", flush=True)
    tot = vlm.accounting.totals()
    res = {"backend": name, "model_id": vlm.info.model_id, "tokens_in_per_view": tot["tokens_in"] / (2 * repeats)}
    res.update({k: summary(v) for k, v in times.items()})
    vlm.cache = ResponseCache(cache_dir / name)
    batched()  # fill the cache
    hits = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        batched()
        hits.append(time.perf_counter() - t0)
    res["cache_hit_view_s"] = summary(hits)
    vlm.cache = None
    print(f"  {name}: done{' ' * 20}", flush=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--backends", default="hf,clip", help="comma list of hf, clip, openai")
    ap.add_argument("--hf-model", help="local hf checkpoint (default: build the tiny random one)")
    ap.add_argument("--hf-family", default="qwen2_vl", choices=("qwen2_vl", "llava"))
    ap.add_argument("--clip-weights", help="local open_clip ViT-B-32 weights (default: random)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--image-size", default="480x640", help="HxW of the synthetic view")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args(argv)
    h, w = (int(x) for x in args.image_size.split("x"))
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    points = [(w * 0.2, h * 0.6), (w * 0.5, h * 0.5), (w * 0.8, h * 0.7)]
    wanted = args.backends.split(",")
    results = []
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device,
            "image": [h, w], "repeats": args.repeats}
    print(f"bench_vlm: {meta}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hf_path = args.hf_model
        if ("hf" in wanted or "openai" in wanted) and not hf_path:
            from vlm_fixtures import build_tiny_hf_model

            hf_path = str(build_tiny_hf_model(tmp / "tiny", args.hf_family, seed=0))
        if "hf" in wanted:
            print("[hf] loading", flush=True)
            from vlm.backends.hf import HFConfig

            vlm = make_vlm(VLMConfig(backend="hf", sections={"hf": HFConfig(model_path=hf_path, device=args.device)}))
            results.append(bench_backend("hf", vlm, image, points, args.repeats, tmp / "cache"))
        if "openai" in wanted:
            from vlm.backends.hf import HFConfig, HFScorer
            from vlm.backends.openai import OpenAIConfig
            from vlm.server import ServerConfig, VLMServer

            print("[openai] serve-vlm on loopback", flush=True)
            srv = VLMServer(HFScorer(HFConfig(model_path=hf_path, device=args.device)),
                            ServerConfig(port=0, model_name="bench")).start()
            try:
                vlm = make_vlm(VLMConfig(backend="openai", sections={"openai": OpenAIConfig(
                    base_url=srv.base_url, model="bench", api_key_env=None)}))
                results.append(bench_backend("openai", vlm, image, points, args.repeats, tmp / "cache"))
            finally:
                srv.stop()
        if "clip" in wanted:
            weights = args.clip_weights
            if not weights:
                from vlm_fixtures import build_random_clip_weights

                print("[clip] building random ViT-B-32 weights", flush=True)
                weights = str(build_random_clip_weights(tmp / "clip.pt"))
            from vlm.backends.clip import ClipConfig

            vlm = make_vlm(VLMConfig(backend="clip", sections={"clip": ClipConfig(weights=weights, device=args.device)}))
            results.append(bench_backend("clip", vlm, image, points, args.repeats, tmp / "cache"))
    print(f"\nper view, median (min) over {args.repeats} repeats")
    print(f"{'backend':<8} {'batched ms':>18} {'4 singles ms':>18} {'speed-up':>9} {'cache hit ms':>18}")
    for r in results:
        (b, bm), (s, sm), (c, cm) = ((r[k]["median"] * 1e3, r[k]["min"] * 1e3)
                                     for k in ("batched_view_s", "single_calls_view_s", "cache_hit_view_s"))
        print(f"{r['backend']:<8} {b:9.1f} ({bm:6.1f}) {s:9.1f} ({sm:6.1f}) {s / b:8.2f}x {c:9.2f} ({cm:6.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
