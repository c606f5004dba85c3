"""Replaying a bag through `EQAAgent`.

Open loop (`replay_bag`, `eqa replay BAG --question ...`): the recorded trajectory is what the agent sees. Frames
(eqa.bag.frames) are selected as keyframes by distance and angle travelled (eqa.ros.keyframes); the frames
between keyframes go into the map only (EQAAgent.integrate), keyframes are what the agent's decisions score.
Each decision is computed, recorded and drawn by the one episode loop (eqa.episode.run_episode, with
`ReplayEnv` as its Env), but motion is not carried out: a move or turn advances the recording to its next
keyframe, and reports the distance the recorded robot travelled meanwhile. The episode ends when the agent
stops or the recording ends (stop reason "end of data", with the answer so far).

Closed loop (`check_bag`, `eqa replay --check`): for a bag the project recorded (eqa.bag.recorder), the agent
is rebuilt from the recorded config and given exactly the frames and outcomes of each recorded agent call; every
recomputed decision is compared with the recorded one, and the first difference is reported.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from eqa.bag import recorder as rec
from eqa.bag.frames import BagFrames
from eqa.bag.reader import BagReader
from eqa.bag.topics import BagTopics, resolve_frames, resolve_topics
from eqa.episode import EpisodeInterrupted
from eqa.records import Outcome, Reason
from eqa.ros.keyframes import KeyframeQueue
from mapping.frame import Frame, pose_xy_yaw


@dataclass
class ReplayMove:
    """What a replayed move reports: metres the recorded robot travelled to the next keyframe; never blocked;
    reached when the recording ends within `tolerance` of the goal."""

    T_world_base: np.ndarray
    distance: float
    blocked: bool = False
    reached: bool = False


class ReplayEnv:
    """An Env over a recording's posed frames (oldest first). keyframes: the selection (min_distance m,
    min_angle rad); map_frames: called with the frames between keyframes (EQAAgent.integrate); describe: what
    was read, for the error when no frame was usable."""

    def __init__(self, frames: Iterator[Frame], keyframes: KeyframeQueue,
                 map_frames: Callable[[list[Frame]], None], tolerance: float = 0.3,
                 describe: Callable[[], str] = lambda: "") -> None:
        self._frames = iter(frames)
        self.describe = describe
        self.keyframes = keyframes
        self.map_frames = map_frames
        self.tolerance = tolerance
        self.n_frames = self.n_keyframes = 0
        self.last_stamp: Optional[float] = None
        self._last_pose: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._travelled = 0.0
        self._next: Optional[Frame] = None
        self._ended = False

    def reset(self, episode=None) -> Frame:
        self.keyframes.clear()
        frame = self._advance()
        if frame is None:
            why = self.describe()
            raise ValueError("the recording has no usable frame" + (f": {why}" if why else ""))
        return frame

    def observe(self) -> list[Frame]:
        if self._next is None:
            self._next = self._advance()
        if self._next is None:
            raise EpisodeInterrupted(f"the recording ended at {self.last_stamp:.3f} s", Reason.END_OF_DATA)
        frame, self._next = self._next, None
        return [frame]

    def move_to(self, T_world_base: np.ndarray, max_distance: float) -> ReplayMove:
        self._next = self._advance()
        end = self.last_pose()
        gx, gy, _ = pose_xy_yaw(T_world_base)
        reached = end is not None and math.hypot(end[0] - gx, end[1] - gy) <= self.tolerance
        return ReplayMove(np.asarray(T_world_base), self._travelled, reached=reached)

    def turn(self, angle: float) -> Optional[Frame]:
        self._next = self._advance()
        return self._next

    def last_pose(self) -> Optional[tuple[float, float, float]]:
        return self._last_pose if self.n_frames else None

    def _advance(self) -> Optional[Frame]:
        """The next keyframe (the frames before it go to the map), None at the end of the recording."""
        if self._ended:
            return None
        self._travelled = 0.0
        between: list[Frame] = []
        for frame in self._frames:
            self._note(frame)
            if self.keyframes.offer(frame):
                self.keyframes.take()
                if between:
                    self.map_frames(between)
                self.n_keyframes += 1
                return frame
            between.append(frame)
        self._ended = True
        if between:
            self.map_frames(between)
        return None

    def _note(self, frame: Frame) -> None:
        pose = pose_xy_yaw(frame.T_world_base)
        if self.n_frames:
            self._travelled += math.hypot(pose[0] - self._last_pose[0], pose[1] - self._last_pose[1])
        self._last_pose = pose
        self.n_frames += 1
        self.last_stamp = frame.stamp


def open_frames(bag: str | Path, topics: BagTopics, pair_tolerance_s: float = 0.02,
                pose_tolerance_s: float = 0.1) -> tuple[BagReader, BagTopics, BagFrames]:
    """The bag's reader, its resolved topics and frames (eqa.bag.topics) and its frame iterator."""
    reader = BagReader(bag)
    resolved = resolve_topics({t: k for t, (k, _) in reader.topics.items()}, topics)
    camera_frame, odom_frames, parents = _frames_of(reader, resolved)
    resolved = resolve_frames(resolved, parents, camera_frame, odom_frames)
    return reader, resolved, BagFrames(reader, resolved, pair_tolerance_s, pose_tolerance_s)


def _frames_of(reader: BagReader, topics: BagTopics, tf_messages: int = 2000
               ) -> tuple[str, Optional[tuple[str, str]], dict[str, str]]:
    """The colour images' frame id, the odometry's (header, child) frames, and the TF tree (child -> parent) of
    /tf_static and the first `tf_messages` of /tf."""
    def first(topic: str):
        for item in reader.messages([topic]):
            if item.msg is not None:
                return item.msg
        return None

    image = first(topics.rgb)
    if image is None:
        raise ValueError(f"no readable message on {topics.rgb}")
    odom = None
    if topics.odom:
        msg = first(topics.odom)
        odom = (msg.header.frame_id, msg.child_frame_id) if msg is not None else None
    parents: dict[str, str] = {}
    if topics.pose_source == "tf":
        for topic, limit in (("/tf_static", None), ("/tf", tf_messages)):
            for n, item in enumerate(reader.messages([topic]) if topic in reader.topics else []):
                if limit is not None and n >= limit:
                    break
                for t in item.msg.transforms if item.msg is not None else []:
                    parents.setdefault(t.child_frame_id, t.header.frame_id)
    return image.header.frame_id, odom, parents


# -- closed-loop check -------------------------------------------------------------------------------------------
@dataclass
class CheckResult:
    """The re-run of a recorded episode: agent calls and decisions compared, and the first difference (None when
    every decision matched): the decision's step, the field that differs, the recorded and recomputed values."""

    calls: int
    decisions: int
    recorded_calls: int
    mismatch: Optional[dict] = None
    vlm_calls: int = 0

    @property
    def identical(self) -> bool:
        return self.mismatch is None and self.calls == self.recorded_calls


def episode_header(reader: BagReader) -> dict:
    """The bag's /eqa/episode record; ValueError for a bag the project did not record."""
    if rec.Topics.EPISODE not in reader.topics:
        raise ValueError("this bag has no /eqa/episode: --check re-runs bags recorded by confident-eqa "
                         "(eqa record, --record-bag, the eqa_node's record_bag); replay others with --question")
    for item in reader.messages([rec.Topics.EPISODE]):
        data = json.loads(item.msg.data)
        if data.get("schema") != rec.SCHEMA or data.get("version") != rec.SCHEMA_VERSION:
            raise ValueError(f"/eqa/episode is not a {rec.SCHEMA} v{rec.SCHEMA_VERSION} record")
        return data
    raise ValueError("the bag's /eqa/episode topic holds no message")


def first_difference(recorded, recomputed, path: str = "") -> Optional[tuple[str, object, object]]:
    """(path, recorded, recomputed) of the first differing leaf of two JSON values, None when equal."""
    if isinstance(recorded, dict) and isinstance(recomputed, dict):
        for key in list(recorded) + [k for k in recomputed if k not in recorded]:
            found = first_difference(recorded.get(key), recomputed.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if isinstance(recorded, list) and isinstance(recomputed, list) and len(recorded) == len(recomputed):
        for i, (a, b) in enumerate(zip(recorded, recomputed)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if recorded == recomputed else (path, recorded, recomputed)


def check_bag(bag: str | Path, vlm_cache: Optional[str] = None, progress: Optional[Callable[[int], None]] = None
              ) -> CheckResult:
    """Re-run a bag recorded by the project in closed-loop order and compare every decision (see module doc)."""
    from eqa.agent import EQAQuestion
    from eqa.ros.convert import camera_info_to_intrinsics, image_to_depth, image_to_rgb
    from eqa.sim_driver import SimRun, make_agent

    reader = BagReader(bag)
    head = episode_header(reader)
    if head.get("run") is None:
        raise ValueError("the bag's /eqa/episode holds no run config")
    if head.get("continues_map"):
        raise ValueError("this episode continued the map of an earlier question (the ROS node keeps its map): "
                         "its decisions depend on frames that are not in the bag")
    run = SimRun.from_dict(head["run"])
    if run.method.direction_oracle or run.method.stop.policy == "oracle":
        raise ValueError("oracle methods read simulator ground truth, which a bag does not hold")
    vlm = None
    if run.method.vlm is not None:
        from vlm import make_vlm
        import dataclasses

        cfg = run.method.vlm if vlm_cache is None else dataclasses.replace(run.method.vlm, cache_dir=str(vlm_cache))
        vlm = make_vlm(cfg)
        recorded_id = (head.get("vlm") or {}).get("model_id")
        if recorded_id != vlm.info.model_id:
            raise ValueError(f"the bag was recorded with VLM {recorded_id!r}, this one is {vlm.info.model_id!r}")
    agent = make_agent(run, vlm)
    question = EQAQuestion(head["question"], tuple(head["choices"])) if head.get("question") else None
    agent.reset(question, head["seed"], head.get("floor_area_m2"))
    topics = [rec.Topics.RGB, rec.Topics.DEPTH, rec.Topics.CAMERA_INFO, rec.Topics.STEP, rec.Topics.DECISION]
    images: dict[tuple[str, int], object] = {}
    computed: dict[int, dict] = {}
    result = CheckResult(calls=0, decisions=0, recorded_calls=0)
    for item in reader.messages(topics):
        if item.topic in (rec.Topics.RGB, rec.Topics.DEPTH, rec.Topics.CAMERA_INFO):
            images[(item.topic, item.log_ns)] = item.msg
            continue
        data = json.loads(item.msg.data)
        if item.topic == rec.Topics.STEP:
            result.recorded_calls += 1
            if agent.stopped:
                result.mismatch = {"call": data["call"], "field": "stop",
                                   "recorded": "the recording goes on", "recomputed": "the agent stopped"}
                break
            frames = []
            for entry in data["frames"]:
                ns = entry["ns"]
                try:
                    rgb, depth, info = (images.pop((t, ns)) for t in topics[:3])
                except KeyError:
                    raise ValueError(f"agent call {data['call']}: the images of frame {ns} ns are missing") from None
                frames.append(Frame(rgb=image_to_rgb(rgb), depth=image_to_depth(depth),
                                    intrinsics=camera_info_to_intrinsics(info),
                                    T_world_cam=rec.list_pose(entry["T_world_cam"]), stamp=entry["stamp"],
                                    T_world_base=rec.list_pose(entry["T_world_base"])))
            outcome = Outcome(**data["outcome"]) if data["outcome"] is not None else None
            computed[data["call"]] = rec.decision_json(agent.step(frames, outcome))
            result.calls += 1
            if progress:
                progress(result.calls)
        elif item.topic == rec.Topics.DECISION:
            mine = computed.pop(data["call"], None)
            if mine is None:
                continue
            recorded = {k: v for k, v in data.items() if k != "call"}
            result.decisions += int(recorded.get("record") is not None)
            diff = first_difference(recorded, mine)
            if diff is not None:
                result.mismatch = {"call": data["call"], "step": recorded["step"], "field": diff[0],
                                   "recorded": diff[1], "recomputed": diff[2]}
                break
    result.vlm_calls = agent.vlm_calls
    reader.close()
    return result


def write_prediction_sets(records, path: Path) -> list[dict]:
    """prediction_sets.json: per decision its step, stamp, the newest view's set and the running set (choice
    indices), for the decisions of a conformal policy."""
    rows = [{"step": r.step, "stamp": r.stamp, "step_set": r.conformal.step_set, "set": r.conformal.set}
            for r in records if r.conformal is not None]
    path.write_text(json.dumps(rows, indent=1))
    return rows
