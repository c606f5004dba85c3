"""The `eqa` CLI and typed YAML configs with command-line overrides."""
import json
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from PIL import Image

from eqa.cli import build_parser, main
from eqa.config import apply_overrides, find_config, from_dict, load_config
from sim.config import SimConfig


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    sub_actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    names = list(sub_actions[0].choices)
    assert "sim" in names
    for name in names:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: eqa " + name in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "eqa.cli", "--help"], capture_output=True, text=True, check=True)
    assert "Confident EQA" in out.stdout


def test_default_yaml_matches_dataclass_defaults():
    assert load_config(SimConfig, "sim") == SimConfig()


def test_overrides_are_typed_and_validated():
    cfg = load_config(SimConfig, "sim", ["camera.hfov_deg=90", "robot.radius=0.25", "house.max_rooms=6"])
    assert cfg.camera.hfov_deg == 90.0 and isinstance(cfg.camera.hfov_deg, float)
    assert cfg.robot.radius == 0.25 and cfg.house.max_rooms == 6
    with pytest.raises(ValueError, match="hfov"):
        load_config(SimConfig, "sim", ["camera.hfov_deg=200"])
    with pytest.raises(ValueError, match="unknown config key"):
        load_config(SimConfig, "sim", ["camera.fov=90"])
    with pytest.raises(ValueError, match="must be int"):
        load_config(SimConfig, "sim", ["camera.width=abc"])
    with pytest.raises(ValueError, match="key.sub=value"):
        apply_overrides({}, ["camera.width"])
    with pytest.raises(FileNotFoundError, match="not found"):
        find_config("no-such-config")


def test_nested_lists_and_optionals():
    @dataclass
    class Inner:
        xs: list[float] = field(default_factory=list)
        name: str | None = None

    @dataclass
    class Outer:
        inner: Inner = field(default_factory=Inner)
        flag: bool = False

    cfg = from_dict(Outer, {"inner": {"xs": [1, 2], "name": None}, "flag": "true"})
    assert cfg.inner.xs == [1.0, 2.0] and cfg.flag is True and cfg.inner.name is None


def test_sim_show_writes_a_plan_a_contact_sheet_and_the_scene(tmp_path, capsys):
    assert main(["sim", "show", "--seed", "3", "--out", str(tmp_path), "--views", "2", "camera.width=160",
                 "camera.height=120"]) == 0
    plan = Image.open(tmp_path / "plan.png")
    views = Image.open(tmp_path / "views.png")
    assert plan.size[0] > 400
    assert views.size == (3 * 160, 2 * 120)
    scene = json.loads((tmp_path / "scene.json").read_text())
    assert scene["seed"] == 3 and len(scene["rooms"]) >= 4
    from sim.mesh import SceneMesh
    mesh = SceneMesh.load(tmp_path / "mesh.npz")
    assert mesh.triangles.shape[0] == mesh.instance.shape[0] > 1000
    object_ids = {o["instance_id"] for o in scene["objects"]}
    assert object_ids <= set(mesh.instance.tolist())
    assert "wrote" in capsys.readouterr().out


def test_cli_reports_bad_config_clearly(tmp_path, capsys):
    assert main(["sim", "show", "--out", str(tmp_path), "camera.hfov_deg=0"]) == 2
    assert "hfov_deg" in capsys.readouterr().err


def test_a_simulator_run_reads_one_flat_yaml_and_writes_it_back():
    from eqa.method import MethodConfig
    from eqa.sim_driver import SimRun, load_sim_run

    run = load_sim_run("semantic", ["sim.camera.width=160", "start_clearance=0.7", "semantic.k=2"])
    assert run.sim.camera.width == 160 and run.start_clearance == 0.7 and run.method.semantic.k == 2
    assert SimRun.from_dict(run.to_dict()) == run
    assert load_config(MethodConfig, "semantic", ["semantic.k=2"]) == run.method  # the same method, sim-free
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['camera'\]; known: .*'sim'"):
        load_sim_run("semantic", ["camera.width=160"])
    with pytest.raises(ValueError, match="start_clearance"):
        load_sim_run("fbe", ["start_clearance=-1"])


def test_overrides_may_follow_options_and_other_positionals():
    from eqa.cli import build_parser, parse

    parser = build_parser()
    args = parse(parser, ["replay", "some/bag", "--out", "o", "stop.eps=0.2", "--seed", "3", "vlm.backend=hf"])
    assert str(args.bag) == "some/bag" and args.seed == 3 and args.overrides == ["stop.eps=0.2", "vlm.backend=hf"]
    args = parse(parser, ["demo", "--seed", "2", "stop.eps=0.2"])
    assert args.overrides == ["stop.eps=0.2"]
    with pytest.raises(SystemExit):
        parse(parser, ["replay", "some/bag", "--out", "o", "stray"])  # left over, not key=value
    with pytest.raises(SystemExit):
        parse(parser, ["sim", "show", "--seed", "1", "--nope"])
