"""Run one exploration episode of an `Agent` in any `Env` and write its episode folder:

record.jsonl (one line per decision), summary.json, map.png (top-down), episode.rrd (rerun).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image, ImageDraw

from eqa.agent import Agent, Decision
from eqa.records import RecordWriter, write_json_atomic
from eqa.rerun_log import RerunLogger, rerun_available
from mapping.frame import pose_xy_yaw
from mapping.render import render_map


@dataclass
class EpisodeSpec:
    """What the runner needs: an id, the env's episode object, seed and optional floor area (m^2)."""

    episode_id: str
    env_episode: object
    seed: int
    floor_area_m2: Optional[float] = None


def draw_episode_png(agent: Agent, path: Path, goal=None, chosen_xy=None, scale: int = 4) -> np.ndarray:
    """Map rendering with the current goal (green) and chosen frontier (yellow) marked; writes PNG."""
    img = render_map(agent.map, agent.value_map, scale=scale)
    spec = agent.map.spec
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)

    def px(xy):
        return ((xy[0] - spec.origin[0]) / spec.resolution * scale,
                (spec.shape[0] - (xy[1] - spec.origin[1]) / spec.resolution) * scale)

    for xy, colour in ((chosen_xy, (250, 220, 0)), (goal, (0, 200, 0))):
        if xy is not None:
            x, y = px(xy)
            r = 2.5 * scale
            draw.ellipse([x - r, y - r, x + r, y + r], outline=colour, width=max(2, scale // 2))
    pil.save(path)
    return np.asarray(pil)


def run_episode(env, agent: Agent, spec: EpisodeSpec, out_dir: str | Path,
                metrics: Optional[Callable[[Agent], dict]] = None,
                step_hook: Optional[Callable[[int, Agent, list], dict]] = None,
                finish_hook: Optional[Callable[[], dict]] = None,
                rerun: bool = True, progress: bool = True, save_map: bool = True,
                on_row: Optional[Callable[[dict], None]] = None) -> dict:
    """Explore until the agent stops; returns the summary (also written to summary.json).

    metrics(agent): fields added to every row and to the summary (e.g. ground-truth coverage).
    step_hook(step, agent, views): fields added to a row before its decision (e.g. VLM outputs); views: the
        frames seen since the previous decision, newest last (at the first decision the look-around's views,
        one per heading; after a move the frames the robot captured along its path, then the one at its end;
        after a turn the turned view alone).
    finish_hook(): fields added to the summary.
    on_row(row): called with every row once written (e.g. to narrate the episode).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    logger = RerunLogger(out / "episode.rrd", spec.episode_id) if (rerun and rerun_available()) else None
    t_start = time.perf_counter()
    agent.reset(spec.seed, spec.floor_area_m2)
    newest = env.reset(spec.env_episode)
    agent.observe([newest])
    if logger:
        logger.log_frame(0, newest)
    views = []  # a full look-around ends facing its start, so its turns' frames cover every heading once
    for angle in agent.look_around_angles():
        newest = env.turn(angle)
        agent.observe(env.observe())
        views.append(newest)
    views = views or [newest]
    path_length, blocked, recoveries = 0.0, 0, 0
    last: Optional[Decision] = None
    with RecordWriter(out / "record.jsonl") as writer:
        while True:
            x, y, yaw = pose_xy_yaw(agent.pose)
            row = {"step": agent.decisions, "stamp": newest.stamp, "pose": [x, y, yaw]}
            if step_hook:
                row.update(step_hook(agent.decisions, agent, views))
            decision = agent.decide()
            last = decision
            row.update({"action": decision.kind, "reason": decision.reason, "budget": agent.budget})
            if decision.plan is not None:
                row["plan"] = decision.plan.record()
            if decision.kind == "stop":
                row["timings"] = decision.timings
                row.update(metrics(agent) if metrics else {})
                writer.write(row)
                if on_row:
                    on_row(row)
                break
            t0 = time.perf_counter()
            moved = 0.0
            if decision.kind == "move":
                result = env.move_to(decision.T_world_base, decision.max_distance)
                moved = result.distance
                blocked += int(result.blocked)
                row.update({"moved": moved, "blocked": result.blocked, "reached": result.reached})
                agent.report_motion(moved)
            else:
                env.turn(decision.angle)
                recoveries += int(decision.reason == "recovery")
                row.update({"turn": decision.angle})
            decision.timings["act_s"] = time.perf_counter() - t0
            path_length += moved
            frames = env.observe()
            agent.observe(frames)
            newest = frames[-1] if frames else newest
            views = frames or [newest]  # after a move: the frames captured along the way, then its end
            row["timings"] = decision.timings
            row.update(metrics(agent) if metrics else {})
            writer.write(row)
            if on_row:
                on_row(row)
            if logger:
                _log_step(logger, agent, decision, newest)
            if progress:
                cov = f" coverage {row['coverage']:.2f}" if "coverage" in row else ""
                print(f"\r[{spec.episode_id}] step {decision.step + 1}/{agent.budget} {decision.kind:<4} "
                      f"moved {moved:4.2f} m{cov}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    plan = last.plan if last is not None else None
    goal = plan.goal[:2] if (plan is not None and plan.goal is not None) else None
    draw_episode_png(agent, out / "map.png", goal=goal)
    if save_map:
        agent.map.save(out / "map.npz")
    summary = {"episode_id": spec.episode_id, "seed": spec.seed, "decisions": agent.decisions, "budget": agent.budget,
               "normalized_steps": agent.decisions / agent.budget, "stop_reason": last.reason if last else "",
               "path_length_m": path_length, "blocked_moves": blocked, "recovery_turns": recoveries}
    summary.update(metrics(agent) if metrics else {})
    summary.update(finish_hook() if finish_hook else {})
    summary["wall_time_s"] = time.perf_counter() - t_start
    write_json_atomic(out / "summary.json", summary)
    if logger:
        logger.close()
    return summary


def _log_step(logger: RerunLogger, agent: Agent, decision: Decision, frame) -> None:
    logger.log_frame(decision.step + 1, frame)
    plan = decision.plan
    fronts = np.array([f.centroid for f in plan.frontiers]).reshape(-1, 2) if plan else np.zeros((0, 2))
    goal = np.asarray(plan.goal[:2]) if (plan and plan.goal) else None
    path = np.array([p[:2] for p in agent.map.robot_path]).reshape(-1, 2)
    logger.log_decision(decision.step + 1, render_map(agent.map, agent.value_map, scale=2), path, fronts, goal)


def wrap_for_sim(env) -> Callable[[Agent], dict]:
    """Ground-truth metrics for the built-in simulator: coverage of the reachable floor, collisions."""
    from eqa.coverage import collisions, coverage, reachable_floor

    cache = {}

    def metrics(agent: Agent) -> dict:
        if "floor" not in cache:
            start = env.path[0]
            cache["floor"] = reachable_floor(env.freespace, start)
        return {"coverage": coverage(agent.map, cache["floor"]),
                "collisions": collisions(env.freespace, env.trajectory, env.config.robot.radius)}

    return metrics

