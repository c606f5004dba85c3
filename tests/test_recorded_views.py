"""sim.recorded_views: re-rendering recorded poses gives the episode's own frames; question files read exactly."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sim.env import SimEnv, SimEpisode
from sim.recorded_views import HouseCamera, read_question_files


def test_house_camera_renders_what_the_episode_saw():
    """The view at a recorded base pose equals the simulator's frame there (pixels and instance ids), in each of
    two houses and again after switching back."""
    camera = HouseCamera()
    for seed, n_rooms in ((3, 3), (4, None), (3, 3)):
        env = SimEnv.from_seed(seed, n_rooms=n_rooms)
        start = env.random_start(np.random.default_rng(seed))
        frame = env.reset(SimEpisode(start=start))
        rgb, depth, ids, _tris = camera.render({"house_seed": seed, "n_rooms": n_rooms}, *start)
        assert rgb.shape == frame.rgb.shape
        assert np.array_equal(rgb, frame.rgb) and np.array_equal(ids, frame.semantic)
        assert camera.house == (seed, n_rooms)


def test_house_camera_renders_at_its_own_size():
    small = HouseCamera(width=224, height=168)
    rgb, depth, ids, _tris = small.render({"house_seed": 3, "n_rooms": 3}, 1.0, 1.0, 0.0)
    assert rgb.shape == (168, 224, 3) and depth.shape == ids.shape == (168, 224)


def test_question_files_are_read_by_id_with_clear_errors(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps({"id": "q1", "house_seed": 3}) + "\n\n" + json.dumps({"id": "q2", "house_seed": 4}) + "\n")
    b.write_text(json.dumps({"id": "q3", "house_seed": 5}) + "\n")
    qs = read_question_files([a, b])
    assert list(qs) == ["q1", "q2", "q3"] and qs["q2"]["house_seed"] == 4
    with pytest.raises(ValueError, match="q1.*twice"):
        read_question_files([a, a])
    b.write_text('{"id": "q3"\n')
    with pytest.raises(ValueError, match=r"b.jsonl:1: not JSON"):
        read_question_files([b])
    b.write_text('{"house_seed": 5}\n')
    with pytest.raises(ValueError, match=r"b.jsonl:1: .*\"id\""):
        read_question_files([b])
