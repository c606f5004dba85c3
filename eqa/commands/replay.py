"""`eqa replay`: ask a question about a recorded rosbag2 bag (open loop), or re-run a bag the project recorded and
check every decision (`--check`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "replay", help="replay a rosbag2 bag through the agent (a question about it, or --check a recorded one)",
        description="Feed BAG's frames (a rosbag2 folder with MCAP or sqlite3 storage, or an .mcap file), in stamp "
                    "order, through the agent: keyframes (by distance and angle travelled) are scored by the VLM, "
                    "the frames between them only mapped. Open loop: decisions are computed, recorded and drawn, "
                    "but the recorded trajectory is what the agent sees. Writes OUT: record.jsonl, summary.json, "
                    "prediction_sets.json, episode.png, map.png, episode.rrd. Topics are detected (RealSense-style "
                    "names, /tf or odometry poses) or given by options or --topics FILE (eqa/bag/topics.py). "
                    "--check: re-run a bag recorded by `eqa record` / --record-bag in closed-loop order and report "
                    "the first decision that differs.")
    parser.add_argument("bag", type=Path, help="rosbag2 folder or .mcap file")
    parser.add_argument("--question", default=None, help="the question (default: the recorded one, for the "
                                                         "project's own bags)")
    parser.add_argument("--choices", nargs="+", default=None, help="2 to 6 answers")
    parser.add_argument("--check", action="store_true", help="re-run the recorded decisions and compare them")
    parser.add_argument("--out", type=Path, default=Path("out/replay"), help="episode folder (default out/replay)")
    parser.add_argument("--method", default="semantic", help="method config (default configs/semantic.yaml)")
    parser.add_argument("--eps", type=float, default=0.1, help="conformal miscoverage level: 0.05, 0.1 or 0.2")
    parser.add_argument("--camera-preset", default=None,
                        help="the simulator camera preset the bag's camera is closest to, which picks the shipped "
                             "calibration (default: the recorded one for the project's bags, else realsense)")
    parser.add_argument("--floor-area", type=float, default=None,
                        help="floor area in m^2, which sets the decision budget (default: the recorded one, else "
                             "the default budget)")
    parser.add_argument("--seed", type=int, default=0, help="planner seed (default 0)")
    parser.add_argument("--topics", type=Path, default=None, help="YAML of topic and frame settings")
    parser.add_argument("--rgb-topic", default=None)
    parser.add_argument("--depth-topic", default=None)
    parser.add_argument("--camera-info-topic", default=None)
    parser.add_argument("--odom-topic", default=None)
    parser.add_argument("--pose-source", choices=("tf", "odom"), default=None,
                        help="robot poses from /tf (default when present) or odometry")
    parser.add_argument("--world-frame", default=None)
    parser.add_argument("--base-frame", default=None)
    parser.add_argument("--camera-offset", type=float, nargs=6, default=None, metavar=("X", "Y", "Z", "R", "P", "Y"),
                        help="camera body in the base frame (m, rad; pitch > 0 looks down), for odometry poses")
    parser.add_argument("--pair-tolerance", type=float, default=0.02, help="colour-depth stamp tolerance, s")
    parser.add_argument("--pose-tolerance", type=float, default=0.1, help="pose extrapolation limit, s")
    parser.add_argument("--keyframe-distance", type=float, default=1.0, help="metres between keyframes")
    parser.add_argument("--keyframe-angle", type=float, default=0.5, help="radians between keyframes")
    parser.add_argument("--vlm-cache", type=Path, default=None,
                        help="VLM response cache folder (default: BAG.vlm-cache beside the bag for backends other "
                             "than the built-in one, so a replay makes no model call twice)")
    parser.add_argument("--no-rerun", action="store_true", help="do not write the rerun recording")
    parser.add_argument("overrides", nargs="*", help="method overrides like stop.policy=fixed-budget")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.check:
        return check(args)
    return replay(args)


def check(args: argparse.Namespace) -> int:
    from eqa.bag.replay import check_bag

    def progress(calls: int) -> None:
        print(f"\rre-ran {calls} agent calls", end="", file=sys.stderr, flush=True)

    result = check_bag(args.bag, vlm_cache=str(args.vlm_cache) if args.vlm_cache else None, progress=progress)
    print(file=sys.stderr)
    if result.identical:
        print(f"check: all {result.decisions} decisions identical ({result.calls} agent calls, "
              f"{result.vlm_calls} VLM calls)")
        return 0
    m = result.mismatch
    if m is None:
        print(f"check: the recording has {result.recorded_calls} agent calls, the re-run made {result.calls}")
    else:
        print(f"check: first difference at agent call {m['call']} (decision step {m.get('step', '?')}): {m['field']}: "
              f"recorded {m['recorded']!r}, recomputed {m['recomputed']!r}")
    return 1


def replay(args: argparse.Namespace) -> int:
    from eqa.agent import EQAQuestion
    from eqa.bag.reader import BagReader
    from eqa.bag.replay import ReplayEnv, episode_header, open_frames, write_prediction_sets
    from eqa.commands.demo import report
    from eqa.episode import Episode, run_episode
    from eqa.narrate import narrator
    from eqa.records import read_records, write_json_atomic
    from eqa.ros.keyframes import KeyframeQueue
    from eqa.sim_driver import make_agent
    from vlm import make_vlm

    head = {}
    with BagReader(args.bag) as probe:
        if "/eqa/episode" in probe.topics:
            head = episode_header(probe)
    question, choices = args.question or head.get("question"), args.choices or head.get("choices")
    if question and head.get("question") and not choices:
        raise ValueError("this bag records an open question (no choices): replay answers multiple-choice "
                         "questions only; give --choices")
    if not question or not choices:
        raise ValueError("give --question and --choices (this bag records no question)")
    run_cfg = replay_run(args, head)
    reader, resolved, frames = open_frames(args.bag, bag_topics(args), args.pair_tolerance, args.pose_tolerance)
    print(f"bag {args.bag}: colour {resolved.rgb}, depth {resolved.depth}, camera info {resolved.camera_info}, "
          f"poses from {resolved.pose_source} ({resolved.world} -> {resolved.base})")
    vlm = make_vlm(run_cfg.method.vlm) if run_cfg.method.vlm is not None else None
    agent = make_agent(run_cfg, vlm)
    env = ReplayEnv(iter(frames), KeyframeQueue(args.keyframe_distance, args.keyframe_angle, capacity=1),
                    agent.integrate, describe=frames.stats.describe)
    floor_area = args.floor_area if args.floor_area is not None else head.get("floor_area_m2")
    episode = Episode(f"replay-{args.bag.name}", None, EQAQuestion(question, tuple(choices)), args.seed, floor_area)
    print(f"question: {question}  choices: {' / '.join(choices)}")
    try:
        summary = run_episode(env, agent, episode, args.out, rerun=not args.no_rerun, progress=False,
                              on_record=narrator(sys.stdout))
    finally:
        reader.close()
    summary.update({"bag": str(args.bag), "frames": env.n_frames, "keyframes": env.n_keyframes,
                    "bag_frames": frames.stats.describe()})
    if vlm is not None:
        calls = vlm.accounting.records
        summary["vlm_model_calls"] = sum(1 for c in calls if c.n_scored)
        summary["vlm_cache_hits"] = sum(c.n_cached for c in calls)
    if reader.truncated:
        summary["bag_truncated"] = reader.truncated
    write_json_atomic(args.out / "summary.json", summary)
    write_prediction_sets(read_records(args.out / "record.jsonl"), args.out / "prediction_sets.json")
    report(summary, args.out)
    print(f"bag frames read: {frames.stats.describe()}; {env.n_keyframes} of them keyframes")
    if reader.truncated:
        print(f"warning: {reader.truncated}", file=sys.stderr)
    return 0


def replay_run(args: argparse.Namespace, head: dict):
    """The run config of a replay: --method with conformal stopping at --eps, the camera preset (--camera-preset,
    else the recorded one, else realsense) and, for VLMs other than the built-in one, the response cache."""
    import dataclasses

    from eqa.sim_driver import load_sim_run

    recorded_preset = ((head.get("run") or {}).get("sim") or {}).get("camera", {}).get("preset")
    preset = args.camera_preset or recorded_preset or "realsense"
    run = load_sim_run(args.method, [f"sim.camera.preset={preset}", "stop.policy=conformal", f"stop.eps={args.eps}"]
                       + args.overrides)
    method = run.method
    cache = args.vlm_cache
    if cache is None and method.vlm is not None and method.vlm.backend != "builtin" and not method.vlm.cache_dir:
        cache = args.bag.with_name(args.bag.name + ".vlm-cache")
    if cache is None or method.vlm is None:
        return run
    vlm = dataclasses.replace(method.vlm, cache_dir=str(cache))
    return dataclasses.replace(run, method=dataclasses.replace(method, vlm=vlm))


def bag_topics(args: argparse.Namespace):
    """The topic and frame settings: --topics FILE, then the options that are given."""
    from eqa.bag.topics import BagTopics

    topics = BagTopics.from_yaml(args.topics) if args.topics else BagTopics()
    return topics.merged(rgb=args.rgb_topic, depth=args.depth_topic, camera_info=args.camera_info_topic,
                         odom=args.odom_topic, pose_source=args.pose_source, world=args.world_frame,
                         base=args.base_frame, camera_offset=args.camera_offset)
