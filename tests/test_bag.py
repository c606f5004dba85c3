"""rosbag2 record and replay (eqa.bag): real bags written in temporary folders (MCAP and sqlite3), read back by
the replay and by an independent reader (mcap + mcap-ros2-support), robot layouts, broken bags, the open-loop
replay and the closed-loop check of a recorded simulator episode."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("rosbags")

from eqa.bag import messages as m  # noqa: E402
from eqa.bag.reader import BagReader  # noqa: E402
from eqa.bag.replay import ReplayEnv, first_difference, open_frames  # noqa: E402
from eqa.bag.topics import BagTopics, resolve_topics  # noqa: E402
from eqa.ros.keyframes import KeyframeQueue  # noqa: E402
from mapping.frame import pose_xy_yaw  # noqa: E402
from tests.bag_fixtures import sim_frames, write_robot_bag  # noqa: E402


@pytest.fixture(scope="module")
def frames():
    return sim_frames()


def replayed(path, **topics):
    reader, resolved, it = open_frames(path, BagTopics(**topics))
    out = list(it)
    reader.close()
    return out, resolved, it.stats


def assert_same_frames(got, want, depth_tol=0.0, colour_tol=0):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.stamp == pytest.approx(w.stamp + 1.0, abs=1e-9)
        assert np.allclose(g.T_world_cam, w.T_world_cam, atol=1e-6), "camera pose"
        assert np.allclose(g.T_world_base, w.T_world_base, atol=1e-6), "base pose"
        assert (g.intrinsics.fx, g.intrinsics.width) == (w.intrinsics.fx, w.intrinsics.width)
        assert np.abs(g.rgb.astype(int) - w.rgb.astype(int)).mean() <= colour_tol
        assert np.abs(g.depth - w.depth).max() <= depth_tol + 1e-5


# -- robot layouts -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_tf_posed_raw_frames_come_back_exactly(tmp_path, frames, storage):
    bag = tmp_path / "bag"
    write_robot_bag(bag, frames, storage=storage)
    got, resolved, stats = replayed(bag)
    assert (resolved.pose_source, resolved.world, resolved.base) == ("tf", "map", "base_link")
    assert_same_frames(got, frames)
    assert stats.frames == len(frames) and not stats.dropped


def test_odometry_poses_16uc1_depth_and_bgr_colour(tmp_path, frames):
    bag = tmp_path / "bag"
    write_robot_bag(bag, frames, storage="sqlite3", poses="odom", colour="bgr8", depth="16UC1")
    T_base_cam = np.linalg.inv(frames[0].T_world_base) @ frames[0].T_world_cam
    # the camera offset as the sim mounts it: 1.5 m up, pitched down 30 deg
    got, resolved, _ = replayed(bag, camera_offset=[float(T_base_cam[0, 3]), 0.0, float(T_base_cam[2, 3]), 0.0,
                                                    math.radians(30.0), 0.0])
    assert (resolved.pose_source, resolved.world, resolved.base, resolved.odom) == ("odom", "odom", "base_link", "/odom")
    assert_same_frames(got, frames, depth_tol=0.0005)


def test_compressed_colour_and_depth(tmp_path, frames):
    bag = tmp_path / "bag"
    write_robot_bag(bag, frames, colour="png", depth="compressed", rgb_topic="/camera/color/image_raw/compressed",
                    depth_topic="/camera/aligned_depth_to_color/image_raw/compressedDepth")
    got, resolved, _ = replayed(bag)
    assert resolved.rgb.endswith("/compressed") and resolved.depth.endswith("/compressedDepth")
    assert_same_frames(got, frames, depth_tol=0.0005)
    jpeg = tmp_path / "jpeg"
    write_robot_bag(jpeg, frames, colour="jpeg", rgb_topic="/camera/color/image_raw/compressed")
    got, _, _ = replayed(jpeg)
    assert_same_frames(got, frames, colour_tol=4)


def test_unsorted_and_duplicate_stamps_come_out_in_stamp_order(tmp_path, frames):
    n = len(frames)
    order = [1, 0, 2, 3, 3] + list(range(4, n))  # two swapped, one logged twice
    bag = tmp_path / "bag"
    write_robot_bag(bag, frames, order=order)
    got, _, stats = replayed(bag)
    stamps = [f.stamp for f in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert len(got) == n
    assert stats.dropped["duplicate stamp"] == 3  # colour, depth and camera info of the repeated frame
    assert "duplicate stamp" in stats.describe()


def test_topic_detection_picks_the_colour_camera_and_names_what_is_missing():
    available = {"/camera/color/image_raw": m.IMAGE, "/camera/color/image_raw/compressed": m.COMPRESSED_IMAGE,
                 "/camera/infra1/image_rect_raw": m.IMAGE, "/camera/depth/image_rect_raw": m.IMAGE,
                 "/camera/aligned_depth_to_color/image_raw": m.IMAGE, "/camera/color/camera_info": m.CAMERA_INFO,
                 "/camera/depth/camera_info": m.CAMERA_INFO, "/odom": m.ODOMETRY}
    t = resolve_topics(available, BagTopics())
    assert (t.rgb, t.depth, t.camera_info, t.odom, t.pose_source) == (
        "/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw", "/camera/color/camera_info", "/odom",
        "odom")
    zed = {"/zed/zed_node/rgb/image_rect_color": m.IMAGE, "/zed/zed_node/depth/depth_registered": m.IMAGE,
           "/zed/zed_node/rgb/camera_info": m.CAMERA_INFO, "/tf": m.TF_MESSAGE}
    t = resolve_topics(zed, BagTopics())
    assert (t.rgb, t.depth, t.camera_info, t.pose_source) == (
        "/zed/zed_node/rgb/image_rect_color", "/zed/zed_node/depth/depth_registered", "/zed/zed_node/rgb/camera_info",
        "tf")
    with pytest.raises(ValueError, match=r"no depth image topic.*/camera/color/image_raw"):
        resolve_topics({"/camera/color/image_raw": m.IMAGE, "/tf": m.TF_MESSAGE}, BagTopics())
    with pytest.raises(ValueError, match=r"no camera info"):
        resolve_topics({"/c/color/image_raw": m.IMAGE, "/c/depth/image_raw": m.IMAGE, "/tf": m.TF_MESSAGE}, BagTopics())
    with pytest.raises(ValueError, match=r"no topic '/front/rgb'.*/camera/color/image_raw"):
        resolve_topics(available, BagTopics(rgb="/front/rgb"))
    with pytest.raises(ValueError, match="neither /tf nor a nav_msgs/Odometry"):
        resolve_topics({"/c/color/image_raw": m.IMAGE, "/c/depth/image_raw": m.IMAGE,
                        "/c/color/camera_info": m.CAMERA_INFO}, BagTopics())


def test_topics_from_yaml(tmp_path):
    path = tmp_path / "topics.yaml"
    path.write_text("rgb: /front/color\ndepth: /front/depth\npose_source: odom\ncamera_offset: [0.1, 0, 1.0, 0, 0.3, 0]\n")
    t = BagTopics.from_yaml(path)
    assert (t.rgb, t.depth, t.pose_source, t.camera_offset[4]) == ("/front/color", "/front/depth", "odom", 0.3)
    path.write_text("rgb_topic: /x\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['rgb_topic'\]"):
        BagTopics.from_yaml(path)


# -- bad bags ------------------------------------------------------------------------------------------------------
def test_missing_camera_info_and_not_a_bag(tmp_path, frames):
    bag = tmp_path / "bag"
    write_robot_bag(bag, frames, info=False)
    with pytest.raises(ValueError, match="no camera info"):
        open_frames(bag, BagTopics())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a rosbag2 folder"):
        BagReader(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no bag at"):
        BagReader(tmp_path / "nowhere")


def test_depth_of_another_size_is_dropped_and_named(tmp_path, frames):
    bag = tmp_path / "bag"
    write_robot_bag(bag, frames, depth_size=(80, 60))
    got, _, stats = replayed(bag)
    assert got == []
    assert stats.assembler["dropped"]["size mismatch"] == len(frames)
    assert "depth 80x60" in stats.describe() and "160x120" in stats.describe()
    proc = eqa("replay", bag, "--question", "Is there a table?", "--choices", "yes", "no", "--out", tmp_path / "o",
               check=False)
    assert proc.returncode == 2
    assert "no usable frame" in proc.stderr and "size mismatch" in proc.stderr and "depth 80x60" in proc.stderr


def test_truncated_mcap_replays_what_is_readable(tmp_path):
    frames = sim_frames(n_moves=14, width=320, height=240)  # several 1 MB chunks
    bag = tmp_path / "bag"
    write_robot_bag(bag, frames)
    mcap = bag / "bag.mcap"
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.6)])
    got, _, _ = replayed(bag)
    reader = BagReader(bag)
    list(reader.messages())
    assert reader.truncated is not None and "truncated" in reader.truncated and "stopped at byte" in reader.truncated
    assert 0 < len(got) < len(frames)
    assert_same_frames(got, frames[: len(got)])


# -- keyframes and the open-loop env ---------------------------------------------------------------------------
def test_replay_env_sends_keyframes_to_decisions_and_the_rest_to_the_map(frames):
    mapped = []
    env = ReplayEnv(iter(frames), KeyframeQueue(min_distance=0.6, min_angle=0.5, capacity=1), mapped.extend)
    first = env.reset()
    keyframes, travelled = [first], 0.0
    while True:
        travelled += env.move_to(np.eye(4), 1.0).distance
        try:
            keyframes += env.observe()
        except Exception as err:  # the end of the recording
            assert type(err).__name__ == "EpisodeInterrupted" and "ended" in str(err)
            break
    xy = np.array([f.T_world_base[:2, 3] for f in frames])
    assert travelled == pytest.approx(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum())
    assert len(keyframes) + len(mapped) == len(frames)
    assert len(mapped) > 0 and len(keyframes) < len(frames)
    stamps = [f.stamp for f in keyframes]
    assert stamps == sorted(stamps)
    for a, b in zip(keyframes, keyframes[1:]):
        (x0, y0, yaw0), (x1, y1, yaw1) = pose_xy_yaw(a.T_world_base), pose_xy_yaw(b.T_world_base)
        assert math.hypot(x1 - x0, y1 - y0) >= 0.6 - 1e-9 or abs(yaw1 - yaw0) >= 0.5 - 1e-9


def test_first_difference_names_the_path():
    assert first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}) is None
    assert first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]}) == ("a[1].b", 2, 3)
    assert first_difference({"a": 1}, {"a": 1, "c": 0}) == ("c", None, 0)


# -- recorded simulator episodes -------------------------------------------------------------------------------
def eqa(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "eqa.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "episode"
    eqa("record", "--seed", 3, "--out", out, "--no-rerun")
    return out


def _independent_messages(path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path, "rb") as f:
        for schema, channel, message, decoded in make_reader(f, decoder_factories=[DecoderFactory()]) \
                .iter_decoded_messages(log_time_order=False):
            yield channel.topic, message.log_time, decoded


def _assert_equal_fields(a, b, where):
    """a: a rosbags message (dataclass), b: the same message from mcap-ros2-support."""
    fields = getattr(a, "__dataclass_fields__", None)
    if fields is not None:
        for name in fields:
            if name == "__msgtype__":
                continue
            _assert_equal_fields(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, np.ndarray) or isinstance(b, (bytes, list, np.ndarray)):
        x = np.asarray(a)
        y = np.frombuffer(b, dtype=x.dtype) if isinstance(b, bytes) else np.asarray(b, dtype=x.dtype)
        if isinstance(a, list) and a and getattr(a[0], "__dataclass_fields__", None):
            assert len(a) == len(b), where
            for i, (u, v) in enumerate(zip(a, b)):
                _assert_equal_fields(u, v, f"{where}[{i}]")
            return
        assert x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), where
    else:
        assert a == b, where


@pytest.mark.integration
def test_independent_reader_reads_every_message_equal(recorded):
    bag = recorded / "bag"
    ours = {}
    with BagReader(bag) as reader:
        for item in reader.messages():
            ours[(item.topic, item.log_ns)] = item.msg
        topics = set(reader.topics)
    assert {"/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw", "/camera/color/camera_info",
            "/odom", "/tf", "/tf_static", "/eqa/episode", "/eqa/step", "/eqa/decision", "/eqa/prediction_set",
            "/eqa/answer", "/eqa/value_map", "/eqa/map"} <= topics
    seen = 0
    for topic, log_ns, decoded in _independent_messages(bag / "bag.mcap"):
        _assert_equal_fields(ours[(topic, log_ns)], decoded, topic)
        seen += 1
    assert seen == len(ours) > 50
    answer = json.loads(next(v for (t, _), v in ours.items() if t == "/eqa/answer").data)
    summary = json.loads((recorded / "summary.json").read_text())
    assert answer["answer"] == summary["answer"] and answer["decisions"] == summary["decisions"]


@pytest.mark.integration
def test_check_rerun_matches_every_decision_and_catches_a_changed_one(recorded, tmp_path):
    proc = eqa("replay", recorded, "--check")  # the episode folder of `eqa record` holds the bag as bag/
    n = sum(1 for line in (recorded / "record.jsonl").read_text().splitlines()[1:] if line.strip())
    assert f"all {n} decisions identical" in proc.stdout
    # the same bag with one recorded decision changed: the check names it
    from rosbags.rosbag2 import Reader, Writer, StoragePlugin

    bad = tmp_path / "bad"
    changed = False
    with Reader(recorded / "bag") as src, Writer(bad, version=9, storage_plugin=StoragePlugin.MCAP) as dst:
        conns = {c.id: dst.add_connection(c.topic, c.msgtype, typestore=m.typestore()) for c in src.connections}
        for conn, ns, raw in src.messages():
            if conn.topic == "/eqa/decision" and not changed:
                data = json.loads(m.deserialize(raw, m.STRING).data)
                if data["record"] is not None and data["record"]["step"] == 1:
                    data["record"]["views"][-1]["relevance"] += 0.01
                    raw, changed = m.serialize(m.string_msg(json.dumps(data)), m.STRING), True
            dst.write(conns[conn.id], ns, raw)
    assert changed
    proc = eqa("replay", bad, "--check", check=False)
    assert proc.returncode == 1
    assert "first difference" in proc.stdout and "(decision step 1): record.views" in proc.stdout


@pytest.mark.integration
def test_sqlite3_recording_checks_and_open_loop_replay_answers(tmp_path):
    out = tmp_path / "run"
    eqa("run", "--scene", 5, "--question", "Is there a sofa?", "--choices", "yes", "no", "--out", out, "--no-rerun",
        "--record-bag", tmp_path / "bag", "--bag-storage", "sqlite3")
    assert any(p.suffix == ".db3" for p in (tmp_path / "bag").iterdir())
    assert "decisions identical" in eqa("replay", tmp_path / "bag", "--check").stdout
    cache = tmp_path / "cache"
    rep = tmp_path / "replay"
    proc = eqa("replay", tmp_path / "bag", "--out", rep, "--no-rerun", "--vlm-cache", cache, "--keyframe-distance", 0.5)
    summary = json.loads((rep / "summary.json").read_text())
    assert summary["question"] == "Is there a sofa?" and summary["answer"] in (0, 1)
    assert summary["keyframes"] <= summary["frames"]
    for name in ("record.jsonl", "episode.png", "map.png", "prediction_sets.json"):
        assert (rep / name).is_file(), name
    assert "answer:" in proc.stdout
    # a second replay through the same cache makes no model call
    rep2 = tmp_path / "replay2"
    eqa("replay", tmp_path / "bag", "--out", rep2, "--no-rerun", "--vlm-cache", cache, "--keyframe-distance", 0.5)
    again = json.loads((rep2 / "summary.json").read_text())
    assert again["vlm_model_calls"] == 0 and again["vlm_cache_hits"] > 0
    assert again["answer"] == summary["answer"]
    shutil.rmtree(cache)


@pytest.mark.integration
def test_an_hf_backend_replays_through_the_cache_beside_the_bag(recorded, tmp_path):
    """A VLM other than the built-in one (a tiny random hf checkpoint) goes through the disk cache by default
    (BAG.vlm-cache): a second replay makes no model call and gives the same answer probabilities."""
    pytest.importorskip("transformers")
    from vlm_fixtures import build_tiny_hf_model

    model = build_tiny_hf_model(tmp_path / "model", "qwen2_vl", seed=0)
    bag = tmp_path / "bag"
    shutil.copytree(recorded / "bag", bag)
    runs = []
    for name in ("first", "second"):
        eqa("replay", bag, "--out", tmp_path / name, "--no-rerun", "--method", "fbe-vlm", "vlm.backend=hf",
            f"vlm.hf.model_path={model}", "stop.policy=fixed-budget")
        runs.append(json.loads((tmp_path / name / "summary.json").read_text()))
    assert (tmp_path / "bag.vlm-cache").is_dir()
    assert runs[0]["vlm_model_calls"] > 0 and runs[0]["vlm_cache_hits"] == 0
    assert runs[1]["vlm_model_calls"] == 0 and runs[1]["vlm_cache_hits"] > 0
    assert runs[1]["answer_probabilities"] == runs[0]["answer_probabilities"]
