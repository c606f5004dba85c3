"""Procedural question sets: answers checked against the scene, viewpoints and starts checked by rendering."""
import json
import math
import re

import numpy as np
import pytest
from scipy import ndimage

from eqa.cli import main
from eqa.config import load_config
from mapping.frame import base_pose
from sim.catalog import build_parts
from sim.env import SimEnv
from sim.house import generate_house
from sim.question_templates import display_name, house_candidates
from sim.questions import (SPLIT_BASES, Question, QuestionConfig, generate_questions, house_seed, load_jsonl,
                           save_jsonl)

N_QUESTIONS = 10
WORDS = ["None", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten"]


@pytest.fixture(scope="module")
def questions():
    return generate_questions("test", N_QUESTIONS, seed=3)


@pytest.fixture(scope="module")
def envs(questions):
    return {s: SimEnv(generate_house(s)) for s in sorted({q.house_seed for q in questions})}


def _render_ids(env, pose):
    return env.renderer.render(base_pose(*pose) @ env.T_base_cam)[2]


def _floor_seen(env, room, pose, spacing=0.25):
    """Share of the room's free floor (off furniture footprints) seen in a full-resolution render."""
    x0, y0, x1, y1 = room.bounds()
    gx, gy = np.meshgrid(np.arange(x0 + 0.1 + spacing / 2, x1 - 0.1, spacing),
                         np.arange(y0 + 0.1 + spacing / 2, y1 - 0.1, spacing))
    pts = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, 1e-3)], axis=1)
    keep = np.ones(len(pts), bool)
    for o in env.scene.objects:
        lo, hi = o.bbox_min, o.bbox_max
        if lo[2] < 0.1 and hi[2] - lo[2] > 0.03:
            keep &= ~((pts[:, 0] > lo[0] - 0.1) & (pts[:, 0] < hi[0] + 0.1) & (pts[:, 1] > lo[1] - 0.1)
                      & (pts[:, 1] < hi[1] + 0.1))
    pts = pts[keep]
    T = base_pose(*pose) @ env.T_base_cam
    _, depth, ids = env.renderer.render(T)
    p = (pts - T[:3, 3]) @ T[:3, :3]
    K = env.intrinsics
    u = np.rint(K.fx * p[:, 0] / p[:, 2] + K.cx).astype(int)
    v = np.rint(K.fy * p[:, 1] / p[:, 2] + K.cy).astype(int)
    ok = (p[:, 2] > 0) & (u >= 0) & (u < K.width) & (v >= 0) & (v < K.height)
    u, v = u[ok], v[ok]
    floor_like = {room.floor_id} | {o.instance_id for o in env.scene.objects
                                    if o.category == "rug" and o.room_id == room.room_id}
    seen = np.isin(ids[v, u], list(floor_like)) & (np.abs(depth[v, u] - p[ok, 2]) < 0.15)
    return seen.sum() / len(pts)


def _room(scene, kind):
    rooms = [r for r in scene.rooms if r.kind == kind]
    assert len(rooms) == 1, f"room kind {kind!r} must be unique to be named"
    return rooms[0]


def _named(scene, room, name):
    return [o for o in scene.objects if o.room_id == room.room_id and o.category != "door"
            and display_name(o.category) == name]


def _check_ground_truth(q: Question, scene):
    """Re-derive the answer and the wrongness of every other choice from the scene and the question text."""
    objs = [o for o in scene.objects if o.category != "door"]
    wrong = [c for i, c in enumerate(q.choices) if i != q.answer_index]
    if m := re.fullmatch(r"What is on the (.+) in the (.+)\?", q.question):
        support = _named(scene, _room(scene, m[2]), m[1])
        assert len(support) == 1
        on = [display_name(o.category) for o in objs if o.support_id == support[0].instance_id]
        assert len(on) == 1 and q.answer_text.lower() == on[0].lower()
        assert all(c.lower() not in on for c in wrong)
    elif m := re.fullmatch(r"What colour is the (.+) in the (.+)\?", q.question):
        obj = _named(scene, _room(scene, m[2]), m[1])
        assert len(obj) == 1 and q.answer_text.lower() == obj[0].color
        assert all(c.lower() != obj[0].color for c in wrong)
    elif m := re.fullmatch(r"How many (.+) are (?:at|on) the (.+) in the (.+)\?", q.question):
        support = _named(scene, _room(scene, m[3]), m[2])
        assert len(support) == 1
        sid = support[0].instance_id
        items = [o for o in objs if (o.group == f"around:{sid}" or o.support_id == sid)
                 and display_name(o.category) + "s" == m[1]]
        assert WORDS.index(q.answer_text) == len(items) and sorted(q.target_ids) == sorted(o.instance_id for o in items)
        assert all(WORDS.index(c) != len(items) for c in wrong)
    elif m := re.fullmatch(r"How many (.+) are there in the (.+)\?", q.question):
        room = _room(scene, m[2])
        items = [o for o in objs if o.room_id == room.room_id and (display_name(o.category) + "s" == m[1]
                                                                   or display_name(o.category)[:-1] + "ves" == m[1])]
        assert WORDS.index(q.answer_text) == len(items) > 0
        assert all(WORDS.index(c) != len(items) for c in wrong)
    elif m := re.fullmatch(r"Is there an? (.+) in the (.+)\?", q.question):
        room = _room(scene, m[2])
        present = _named(scene, room, m[1])
        assert q.choices == ["Yes", "No"] and q.answer_text == ("Yes" if present else "No")
        if not present:  # a plausible "no": the thing exists elsewhere
            assert any(display_name(o.category) == m[1] for o in objs)
            assert q.target_ids == [room.floor_id] and q.target_mode == "floor"
        else:
            assert sorted(q.target_ids) == sorted(o.instance_id for o in present)
    elif m := re.fullmatch(r"Is the door between the (.+) and the (.+) open\?", q.question):
        a, b = _room(scene, m[1]).room_id, _room(scene, m[2]).room_id
        groups = (f"between:{a},{b}", f"between:{b},{a}")
        doors = [o for o in scene.objects if o.category == "door" and o.group in groups]
        assert len(doors) == 1 and q.answer_text == ("Yes" if doors[0].state == "open" else "No")
    elif m := re.fullmatch(r"Is the (.+) in the (.+) (on|open)\?", q.question):
        obj = _named(scene, _room(scene, m[2]), m[1])
        assert len(obj) == 1 and q.answer_text == ("Yes" if obj[0].state == m[3] else "No")
    elif m := re.fullmatch(r"Where is the (\w+) (.+)\?", q.question):
        obj = [o for o in objs if o.color == m[1] and display_name(o.category) == m[2]]
        assert len(obj) == 1, "the referent must be unique in the house"
        kind = next(r.kind for r in scene.rooms if r.room_id == obj[0].room_id)
        assert q.answer_text == f"In the {kind}" and f"In the {kind}" not in wrong
    else:
        raise AssertionError(f"unrecognised question {q.question!r}")


def test_questions_match_ground_truth(questions, envs):
    cats = {q.category for q in questions}
    assert cats == {"identification", "count", "existence", "state", "location"}
    for q in questions:
        assert 2 <= len(q.choices) <= 4 and len(set(q.choices)) == len(q.choices)
        assert q.answer == "ABCD"[q.answer_index]
        _check_ground_truth(q, envs[q.house_seed].scene)
        cand = q.candidate()
        assert (cand.answer, cand.target_ids, cand.mode) == (q.answer_text, q.target_ids, q.target_mode)
        target = envs[q.house_seed].scene.object_by_id(q.target_ids[0])
        assert q.target_facing == (target is not None and target.category in ("tv", "monitor", "fridge", "laptop")
                                   and q.category == "state")
        assert q.floor_area_m2 == pytest.approx(envs[q.house_seed].scene.floor_area(), abs=0.01)


def test_answerable_viewpoints_show_the_targets_at_full_resolution(questions, envs):
    cfg = QuestionConfig()
    for q in questions:
        env = envs[q.house_seed]
        assert 1 <= len(q.answerable_viewpoints) <= cfg.max_viewpoints
        for pose in q.answerable_viewpoints[:3]:
            assert env.freespace.is_navigable(np.array(pose[:2]))
            ids = _render_ids(env, pose)
            px = np.array([(ids == t).sum() for t in q.target_ids])
            if q.target_mode == "floor":  # most of the room's free floor is in view
                room = next(r for r in env.scene.rooms if r.room_id == q.room_id)
                assert _floor_seen(env, room, pose) >= 0.9 * cfg.no_floor_fraction, q.question
            elif q.target_mode == "all":  # every counted thing in one view
                assert px.min() >= 0.9 * cfg.min_pixels_each, (q.question, px)
            else:
                assert px.max() >= 0.9 * cfg.min_pixels, (q.question, px)


def test_start_pose_has_clearance_and_hides_the_answer(questions, envs):
    cfg = QuestionConfig()
    for q in questions:
        env = envs[q.house_seed]
        fs = env.freespace
        x, y, yaw = q.start
        assert fs.is_navigable(np.array([x, y]))
        clearance = ndimage.distance_transform_edt(~fs.occupied) * fs.grid.resolution
        rc = fs.grid.world_to_cell(np.array([x, y]))
        # Cell-centre distance; the true edge clearance is within a half cell diagonal of it.
        assert clearance[rc[0], rc[1]] - env.config.robot.radius >= cfg.start_clearance - 1e-9
        # Reachable: the start and the answerable viewpoints share one navigable component.
        labels = {fs.component_of(np.array(p[:2])) for p in [q.start] + q.answerable_viewpoints}
        assert len(labels) == 1 and 0 not in labels
        if q.room_id is not None:
            room = next(r for r in env.scene.rooms if r.room_id == q.room_id)
            assert not room.contains(np.array([x, y]))
        for k in range(4):  # the whole look-around
            pose = (x, y, yaw + k * math.pi / 2)
            if q.target_mode == "floor":
                room = next(r for r in env.scene.rooms if r.room_id == q.room_id)
                assert _floor_seen(env, room, pose) <= cfg.start_max_floor_fraction + 0.02, q.question
            else:
                ids = _render_ids(env, pose)
                px = sum(int((ids == t).sum()) for t in q.target_ids)
                assert px == 0, (q.question, k, px)


def test_same_seed_same_bytes_and_splits_use_disjoint_houses(questions, tmp_path):
    again = generate_questions("test", N_QUESTIONS, seed=3)
    save_jsonl(questions, tmp_path / "a.jsonl")
    save_jsonl(again, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert [q.to_json() for q in load_jsonl(tmp_path / "a.jsonl")] == [q.to_json() for q in questions]
    seeds = {split: {house_seed(split, s, k) for s in (0, 99) for k in (0, 9_999)} for split in SPLIT_BASES}
    assert not (seeds["train"] & seeds["calib"]) and not (seeds["calib"] & seeds["test"])
    assert max(seeds["train"]) < min(seeds["calib"]) and max(seeds["calib"]) < min(seeds["test"])
    assert all(2_000_000 <= q.house_seed < 3_000_000 for q in questions)
    with pytest.raises(ValueError, match="dataset seed"):
        house_seed("train", 100, 0)
    with pytest.raises(ValueError, match="split"):
        house_seed("val", 0, 0)


def test_categories_are_balanced_and_yes_no_answers_both_occur():
    qs = generate_questions("train", 10, seed=7, cfg=QuestionConfig(categories=("existence", "state"),
                                                                    questions_per_house=4))
    assert sum(q.category == "existence" for q in qs) == 5
    for cat in ("existence", "state"):
        answers = [q.answer_text for q in qs if q.category == cat]
        assert set(answers) == {"Yes", "No"}


def test_ambiguous_referents_give_no_questions():
    scene = generate_house(5)
    rng = np.random.default_rng(0)
    backpacks = [o for o in scene.objects if o.category == "backpack"]
    assert len(backpacks) >= 2, "house 5 is expected to hold two backpacks"
    for b in backpacks[:2]:  # two red backpacks: "the red backpack" is ambiguous
        b.color = "red"
        b.parts = build_parts("backpack", b.size, "red", None)
    texts = [c.question for cands in house_candidates(scene, rng, 4).values() for c in cands]
    assert "Where is the red backpack?" not in texts
    kinds = [r.kind for r in scene.rooms]
    for text in texts:  # rooms are named only when their kind is unique
        m = re.search(r" in the ([a-z ]+)\?$", text)
        if m and m[1] in kinds:
            assert kinds.count(m[1]) == 1, text


def test_config_validation_and_bad_records(tmp_path):
    assert load_config(QuestionConfig, "questions") == QuestionConfig()
    with pytest.raises(ValueError, match="n_choices"):
        QuestionConfig(n_choices=5)
    with pytest.raises(ValueError, match="categories"):
        QuestionConfig(categories=("colour",))
    with pytest.raises(ValueError, match="aspect ratio"):
        generate_questions("train", 1, 0, QuestionConfig(visibility_width=160, visibility_height=160))
    good = generate_questions("calib", 1, 0)[0].to_json()
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "answer_index": 7}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: .*answer_index"):
        load_jsonl(path)
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "start"}) + "\n")
    with pytest.raises(ValueError, match=r":1: .*missing \['start'\]"):
        load_jsonl(path)


def test_cli_dataset_make(tmp_path, capsys):
    out = tmp_path / "calib.jsonl"
    assert main(["dataset", "make", "--split", "calib", "--n", "3", "--seed", "2", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert all(r["split"] == "calib" and 1_000_000 <= r["house_seed"] < 2_000_000 for r in records)
    assert "wrote 3 questions" in capsys.readouterr().out
    assert main(["dataset", "make", "--split", "calib", "--n", "0", "--out", str(out)]) == 2
    assert main(["dataset", "make", "--split", "calib", "--n", "1", "--seed", "500", "--out", str(out)]) == 2


def test_surface_colours_are_named_by_the_palette_colour_they_are_a_shade_of():
    from sim.answer_checks import COLOUR_NAMES, colour_names
    from sim.catalog import DARK, METAL, WOOD
    from sim.palette import COLORS

    shades = [np.array(COLORS[n]) * f / 255 for n in ("white", "red", "grey", "beige") for f in (1.0, 0.85, 0.6)]
    names = [COLOUR_NAMES[i] for i in colour_names(np.array(shades))]
    assert names == ["white"] * 3 + ["red"] * 3 + ["grey"] * 3 + ["beige"] * 3
    assert [COLOUR_NAMES[i] for i in colour_names(np.array([DARK, WOOD, METAL]) / 255)] == ["black", "brown", "white"]


def test_one_reading_checks_judge_views_by_the_parts_they_show():
    from types import SimpleNamespace

    from sim.answer_checks import COLOUR_NAMES, check_views
    from sim.question_templates import Candidate

    # one 4x5 view per row of cases; triangles: 0 white body, 1 black top, 2 lamp shade (off), 3 another lamp
    labels = SimpleNamespace(colour=np.array([COLOUR_NAMES.index("white"), COLOUR_NAMES.index("black"), 0, 0, -1]),
                             state_part=np.array([False, False, True, False, False]), instance=np.array([7, 7, 7, 9]))
    cfg = QuestionConfig()
    white_body = np.zeros((1, 4, 5), dtype=np.int64)
    ids = np.full((2, 4, 5), 7, dtype=np.int32)
    tris = np.concatenate([white_body, white_body])
    tris[1, :2] = 1  # the second view: 10 of 20 pixels on the black top
    colour = Candidate("identification", "colour", "What colour is the stove?", ["Black", "White"], 1, [7])
    assert check_views(colour, None, ids, tris, 1.0, labels, cfg)["colour"].tolist() == [True, False]
    only_white = Candidate("identification", "colour", "What colour is the stove?", ["Grey", "White"], 1, [7])
    assert check_views(only_white, None, ids, tris, 1.0, labels, cfg)["colour"].tolist() == [True, False]  # 50 % < 60
    lamp = Candidate("state", "table_lamp", "Is the lamp on?", ["Yes", "No"], 1, [7])
    tris[0, 0] = 2  # the first view shows 5 shade pixels, the second none
    assert check_views(lamp, None, ids, tris, 40.0, labels, cfg)["state"].tolist() == [True, False]
    scene = SimpleNamespace(objects=[SimpleNamespace(instance_id=7, category="plant"),
                                     SimpleNamespace(instance_id=9, category="plant")],
                            object_by_id=lambda i: SimpleNamespace(category="plant"))
    ids[1, 0, 0] = 9  # the second view also shows a plant that is not counted
    count = Candidate("count", "things_in_room", "How many plants are there?", ["One", "Two"], 0, [7], mode="all")
    assert check_views(count, scene, ids, tris, 40.0, labels, cfg)["count"].tolist() == [True, True]  # 40 <= 50 px
    assert check_views(count, scene, ids, tris, 60.0, labels, cfg)["count"].tolist() == [True, False]


def test_the_white_stove_with_a_dark_top_is_not_asked_any_more():
    """`make demo`'s old first question: every answerable view shows the dark top or door as black."""
    from sim.config import SimConfig
    from sim.questions import HouseLabeller

    old = generate_questions("test", 1, 0, QuestionConfig(answer_checks=False))[0]
    assert old.question == "What colour is the stove in the kitchen?" and old.answer_text == "White"
    sim = SimConfig()
    labeller = HouseLabeller(generate_house(old.house_seed, None, sim.house, sim.robot), sim, QuestionConfig())
    checks = labeller.check_results(old.candidate(), np.array(old.answerable_viewpoints))
    assert not checks["colour"].any()
    assert all(q.question != old.question for q in generate_questions("test", 5, 0))


def test_calibration_seeds_are_the_makefiles_and_never_tuning_seeds():
    from pathlib import Path

    from sim.questions import CALIBRATION_SEEDS, TUNING_SEEDS

    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    seeds = re.search(r"^CAL_SEEDS := (.+)$", makefile, re.M).group(1).split()
    assert tuple(int(s) for s in seeds) == CALIBRATION_SEEDS
    assert not set(CALIBRATION_SEEDS) & set(TUNING_SEEDS)
