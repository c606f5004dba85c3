"""HM-EQA and OpenEQA loaders against the real files, the Habitat frame conversion, malformed input."""
import collections
import json
import math
from pathlib import Path

import numpy as np
import pytest

from eqa.datasets.hmeqa import PAD, flagged, format_prompt, load_hmeqa
from eqa.datasets.openeqa import CATEGORIES, load_openeqa
from mapping.frame import rot_z
from sim.habitat_frame import (R_WORLD_HABITAT, habitat_agent_pose, habitat_angle_to_yaw, habitat_to_world_point,
                               world_to_habitat_point)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HMEQA = DATA / "hm-eqa"
OPENEQA = DATA / "open-eqa"
needs_hmeqa = pytest.mark.skipif(not (HMEQA / "questions.csv").is_file(),
                                 reason=f"HM-EQA data not found at {HMEQA} (../shared/data/hm-eqa)")
needs_openeqa = pytest.mark.skipif(not (OPENEQA / "open-eqa-v0.json").is_file(),
                                   reason=f"OpenEQA data not found at {OPENEQA} (../shared/data/open-eqa)")


# ---- Habitat frame ----

def _quat_rotate(angle, axis, v):
    """Rotate v by the unit quaternion angle-axis(angle, axis) (Habitat's agent rotation), written out."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    w, xyz = math.cos(angle / 2), math.sin(angle / 2) * axis
    v = np.asarray(v, float)
    t = 2.0 * np.cross(xyz, v)
    return v + w * t + np.cross(xyz, t)


def test_habitat_to_world_is_a_proper_rotation_with_z_up():
    assert np.linalg.det(R_WORLD_HABITAT) == pytest.approx(1.0)
    assert np.allclose(R_WORLD_HABITAT @ R_WORLD_HABITAT.T, np.eye(3))
    assert np.allclose(habitat_to_world_point([0, 1, 0]), [0, 0, 1])  # Habitat up -> our up
    assert np.allclose(habitat_to_world_point([0, 0, -1]), [0, 1, 0])  # Habitat -z -> our +y
    assert np.allclose(habitat_to_world_point([1, 0, 0]), [1, 0, 0])
    # Cross products survive: handedness preserved.
    a, b = np.array([0.3, -1.2, 2.0]), np.array([1.5, 0.2, -0.7])
    assert np.allclose(habitat_to_world_point(np.cross(a, b)), np.cross(habitat_to_world_point(a),
                                                                        habitat_to_world_point(b)))
    p = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 7.0]])
    assert np.allclose(world_to_habitat_point(habitat_to_world_point(p)), p)


@pytest.mark.parametrize("angle", [0.0, 0.5, math.pi / 2, 2.0, math.pi, 4.5, -1.0, 6.2])
def test_habitat_agent_heading_becomes_our_yaw(angle):
    forward_h = _quat_rotate(angle, [0, 1, 0], [0, 0, -1])  # Habitat agents look along local -z
    left_h = _quat_rotate(angle, [0, 1, 0], [-1, 0, 0])  # local +x is their right
    T = habitat_agent_pose([1.0, 0.2, -3.0], angle)
    assert np.allclose(T[:3, 0], habitat_to_world_point(forward_h))  # base x = forward
    assert np.allclose(T[:3, 1], habitat_to_world_point(left_h))  # base y = left
    assert np.allclose(T[:3, 2], [0, 0, 1])
    assert np.allclose(T[:3, 3], [1.0, 3.0, 0.2])
    yaw = habitat_angle_to_yaw(angle)
    assert -math.pi <= yaw < math.pi
    assert np.allclose(T[:3, :3], rot_z(yaw))
    assert np.allclose(T[:2, 0], [math.cos(yaw), math.sin(yaw)])
    if angle == 0.0:
        assert yaw == pytest.approx(math.pi / 2)  # facing Habitat -z = our +y


def test_bad_angle_rejected():
    with pytest.raises(ValueError, match="finite"):
        habitat_angle_to_yaw(float("nan"))


# ---- HM-EQA ----

@pytest.fixture(scope="module")
def hmeqa():
    return load_hmeqa(HMEQA)


@needs_hmeqa
def test_hmeqa_loads_all_questions_with_four_choices(hmeqa):
    qs = hmeqa.questions
    assert len(qs) == 500 and [q.row for q in qs] == list(range(500))
    assert all(len(q.choices) == 4 for q in qs)
    assert sum(any("'" in c for c in q.choices) for q in qs) == 13  # the rows split("'") breaks
    assert all(format_prompt(q.question, q.choices) == q.question_formatted for q in qs)
    pads = collections.Counter(sum(c == PAD for c in q.choices) for q in qs)
    assert pads == {0: 308, 2: 172, 1: 20}  # padding kept where the benchmark put it
    assert collections.Counter(q.label for q in qs) == {"location": 130, "existence": 108, "state": 101,
                                                          "identification": 81, "count": 80}
    assert collections.Counter(q.answer for q in qs) == {"A": 142, "B": 119, "C": 121, "D": 118}
    assert collections.Counter(q.floor for q in qs) == {0: 335, 1: 135, 2: 30}
    assert len(hmeqa.scenes()) == 266
    first = qs[0]
    assert first.scene == "00004-VqCaAuuoeWk" and first.floor == 1 and first.answer_text == "Yes, it is on"
    assert first.choices == (PAD, "Yes, it is on", "No, it is not on", PAD) and first.real_choices == [1, 2]


@needs_hmeqa
def test_hmeqa_start_poses_join_and_convert(hmeqa):
    assert len(hmeqa.starts) == 1015
    assert len({q.scene_floor for q in hmeqa.questions}) == 350
    assert all(q.start.scene_floor == q.scene_floor for q in hmeqa.questions)
    s = hmeqa.starts["00001-UVdNNRcVyV1_0"]
    assert s.position_habitat == (-0.30367583, 0.12231609, -0.106891215)
    assert np.allclose(s.position, (-0.30367583, 0.106891215, 0.12231609))
    assert s.yaw == pytest.approx(0.9581783304603155 + math.pi / 2)
    x, y, yaw = s.xy_yaw
    assert np.allclose(s.T_world_base()[:3, 3], s.position) and (x, y) == s.position[:2]


@needs_hmeqa
def test_hmeqa_answer_on_padding_is_flagged(hmeqa):
    bad = flagged(hmeqa)
    assert [(q.scene, q.answer) for q in bad] == [("00259-4J8N2Ah1a6o", "D")]
    assert bad[0].answer_text == PAD


def _write_hmeqa(tmp_path, rows, poses="scene_floor,init_x,init_y,init_z,init_angle\ns1_0,1,0.1,2,0.5\n"):
    header = "scene,floor,question,choices,question_formatted,answer,label\n"
    (tmp_path / "questions.csv").write_text(header + "".join(r + "\n" for r in rows))
    (tmp_path / "scene_init_poses.csv").write_text(poses)
    return tmp_path


def test_hmeqa_malformed_files_name_file_line_and_field(tmp_path):
    good = 's1,0,Is it?,"[\'Yes\', \'No\', \'(Do not choose this option)\', \'(Do not choose this option)\']",x,A,state'
    assert len(load_hmeqa(_write_hmeqa(tmp_path, [good]))) == 1
    cases = [
        ('s1,0,Q?,"[\'a\', \'b\']",x,A,state', r"questions.csv:2: field 'choices' must be a list of 4"),
        ('s1,0,Q?,"[\'a\', \'b\',",x,A,state', r"questions.csv:2: field 'choices' is not a Python list"),
        ('s1,0,Q?,"[\'a\', \'b\', \'c\', \'d\']",x,E,state', r"questions.csv:2: field 'answer'"),
        ('s1,zero,Q?,"[\'a\', \'b\', \'c\', \'d\']",x,A,state', r"questions.csv:2: field 'floor'"),
        ('s1,0,Q?,"[\'a\', \'b\', \'c\', \'d\']",x,A,colour', r"questions.csv:2: field 'label'"),
        ('s2,0,Q?,"[\'a\', \'b\', \'c\', \'d\']",x,A,state', r"questions.csv:2: no start pose for scene_floor 's2_0'"),
    ]
    for row, message in cases:
        with pytest.raises(ValueError, match=message):
            load_hmeqa(_write_hmeqa(tmp_path, [row]))
    with pytest.raises(ValueError, match=r"scene_init_poses.csv:3: duplicate scene_floor"):
        load_hmeqa(_write_hmeqa(tmp_path, [good], "scene_floor,init_x,init_y,init_z,init_angle\ns1_0,1,0,2,0\n"
                                                  "s1_0,1,0,2,0\n"))
    with pytest.raises(ValueError, match=r"scene_init_poses.csv:2: field 'init_angle' must be a number"):
        load_hmeqa(_write_hmeqa(tmp_path, [good], "scene_floor,init_x,init_y,init_z,init_angle\ns1_0,1,0,2,abc\n"))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['init_angle'\]"):
        load_hmeqa(_write_hmeqa(tmp_path, [good], "scene_floor,init_x,init_y,init_z\ns1_0,1,0,2\n"))
    with pytest.raises(FileNotFoundError, match="questions.csv"):
        load_hmeqa(tmp_path / "nowhere")


# ---- OpenEQA ----

@pytest.fixture(scope="module")
def openeqa():
    return load_openeqa(OPENEQA)


@needs_openeqa
def test_openeqa_loads_everything(openeqa):
    qs = openeqa.questions
    assert len(qs) == 1636 and len({q.question_id for q in qs}) == 1636
    assert collections.Counter(q.category for q in qs) == {
        "object localization": 263, "object state recognition": 252, "attribute recognition": 240,
        "object recognition": 231, "spatial understanding": 220, "functional reasoning": 217, "world knowledge": 213}
    assert set(CATEGORIES) == {q.category for q in qs}
    extra = [q for q in qs if q.extra_answers]
    assert len(extra) == 263 and all(q.category == "object localization" and len(q.extra_answers) == 4 for q in extra)
    assert collections.Counter(q.source for q in qs) == {"scannet": 1079, "hm3d": 557}
    assert len(openeqa.episodes()) == 152
    assert len({q.episode_history for q in qs if q.source == "hm3d"}) == 63
    q0 = qs[0]
    assert q0.question_id == "f2e82760-5c3c-41b1-88b6-85921b9e7b32" and q0.answer == "Air conditioning unit"
    assert (q0.episode_history, q0.episode_index, q0.scene_id) == ("hm3d-v0/000-hm3d-BFRyYbPCCPE", 0, "BFRyYbPCCPE")


@needs_openeqa
def test_openeqa_184_subset(openeqa):
    sub = openeqa.subset()
    ids = {q.question_id for q in openeqa.questions}
    assert len(sub) == 184 and len(set(openeqa.subset_ids)) == 184 and set(openeqa.subset_ids) <= ids
    assert [q.question_id for q in sub] == openeqa.subset_ids
    assert all(q.source == "hm3d" for q in sub)
    assert len({q.episode_history for q in sub}) == 57
    assert collections.Counter(q.category for q in sub) == {
        "object localization": 35, "attribute recognition": 33, "world knowledge": 28,
        "object state recognition": 27, "object recognition": 25, "spatial understanding": 19,
        "functional reasoning": 17}


def test_openeqa_malformed_files(tmp_path):
    item = {"question": "Q?", "answer": "A", "category": "world knowledge", "question_id": "q1",
            "episode_history": "hm3d-v0/000-hm3d-ABC"}

    def write(items, subset):
        (tmp_path / "open-eqa-v0.json").write_text(json.dumps(items))
        (tmp_path / "open-eqa-v0-184-questions.json").write_text(json.dumps(subset))
        return tmp_path

    assert len(load_openeqa(write([item], ["q1"])).subset()) == 1
    with pytest.raises(ValueError, match=r"open-eqa-v0.json\[1\]: duplicate question_id 'q1'"):
        load_openeqa(write([item, item], []))
    with pytest.raises(ValueError, match=r"\[0\]: field 'category'"):
        load_openeqa(write([{**item, "category": "trivia"}], []))
    with pytest.raises(ValueError, match=r"\[0\]: missing field\(s\) \['answer'\]"):
        load_openeqa(write([{k: v for k, v in item.items() if k != "answer"}], []))
    with pytest.raises(ValueError, match=r"\[0\]: field 'episode_history'"):
        load_openeqa(write([{**item, "episode_history": "hm3d/ABC"}], []))
    with pytest.raises(ValueError, match=r"184-questions.json\[0\]: question id 'q9' is not in"):
        load_openeqa(write([item], ["q9"]))
    (tmp_path / "open-eqa-v0.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_openeqa(tmp_path)
