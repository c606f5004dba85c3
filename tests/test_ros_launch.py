"""The ROS 2 launch files (launch/*.launch.xml), the parameter files (configs/ros/*.yaml) and the RViz config
(launch/eqa.rviz), checked without ROS (no rclpy, no `launch` package, no DDS): what they name must exist.

What setup.py installs is read by running setup.py with setuptools.setup replaced by a function that keeps its
arguments, in the repository root: data_files and entry_points are then exactly what setup.py computes (its
globs included) and nothing is built. A file `$(find-pkg-share confident_eqa)/X` is found after `colcon build`
when data_files installs the source file X as share/confident_eqa/X.

Parameters are checked as rclpy's declare_parameter sees them (eqa.ros.params.declare_config): the names are
those of the node's config dataclass (eqa.ros.config) plus ROS's use_sim_time, a value has the type of the
declared default (rclpy refuses an integer for a double parameter), and the merged values pass the dataclass's
checks (eqa.config.from_dict: types, bounds, choices).
"""
from __future__ import annotations

import configparser
import contextlib
import dataclasses
import functools
import importlib
import re
import runpy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from eqa.config import from_dict
from eqa.ros.config import EQANodeConfig, FrameConfig, SimRobotConfig, TopicConfig, flatten, unflatten
from eqa.ros.params import list_fields, parameter_names

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "confident_eqa"
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.xml"))
PARAM_FILES = sorted((ROOT / "configs" / "ros").glob("*.yaml"))
RVIZ_FILE = ROOT / "launch" / "eqa.rviz"
# the package's executables: module (its NODE_NAME, its topics) and config dataclass (its parameters)
NODES = {"eqa_node": ("eqa.ros.node", EQANodeConfig), "sim_robot": ("eqa.ros.sim_robot", SimRobotConfig)}
ROS_PARAMETERS = {"use_sim_time": False}  # declared by every ROS node
PKG_SHARE = f"$(find-pkg-share {PACKAGE})"
VAR = re.compile(r"\$\(var ([^)\s]*)\)")
SHARE_PATH = re.compile(re.escape(PKG_SHARE) + r"/([^\s\"']+)")


# -- what setup.py installs -------------------------------------------------------------------------------------
@functools.cache
def setup_arguments() -> dict:
    """The keyword arguments setup.py passes to setuptools.setup (run in the repository root, nothing built)."""
    kept: dict = {}
    with mock.patch("setuptools.setup", lambda **kwargs: kept.update(kwargs)), contextlib.chdir(ROOT):
        runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    assert kept, "setup.py did not call setuptools.setup"
    return kept


def installed_share() -> dict[str, str]:
    """Path under share/confident_eqa/ -> the source file (relative to the root) installed there."""
    prefix = f"share/{PACKAGE}/"
    out = {}
    for dest, files in setup_arguments()["data_files"]:
        for f in files:
            target = f"{dest.rstrip('/')}/{Path(f).name}"
            if target.startswith(prefix):
                out[target[len(prefix):]] = f
    return out


def console_scripts() -> dict[str, str]:
    """Console script name -> 'module:function'."""
    out = {}
    for spec in setup_arguments()["entry_points"]["console_scripts"]:
        name, target = (s.strip() for s in spec.split("=", 1))
        out[name] = target
    return out


def share_file(rel: str) -> Path | None:
    """The source file installed as share/confident_eqa/`rel`, None when nothing is installed there."""
    source = installed_share().get(rel)
    return ROOT / source if source is not None else None


# -- parameters as rclpy declares them --------------------------------------------------------------------------
def flatten_yaml(values: dict, prefix: str = "") -> dict[str, Any]:
    """A ros__parameters mapping as dotted parameter names (nested mappings are sections)."""
    out = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_yaml(value, name + "."))
        else:
            out[name] = value
    return out


def _ros_type(value: Any) -> str:
    for tp, name in ((bool, "bool"), (int, "integer"), (float, "double"), (str, "string"), (list, "array")):
        if isinstance(value, tp):
            return name
    return type(value).__name__


def parameter_problems(config_cls: type, values: dict[str, Any], where: str) -> list[str]:
    """What a node with config `config_cls` would refuse in `values` (dotted name -> value): unknown names,
    values not of the declared type, values its config rejects."""
    defaults = {**ROS_PARAMETERS, **flatten(config_cls())}
    element_types = list_fields(config_cls)
    problems = []
    for name, value in values.items():
        if name not in defaults:
            problems.append(f"{where}: {name!r} is not a parameter of {config_cls.__name__} (known: "
                            f"{sorted(defaults)})")
        elif _ros_type(value) != _ros_type(defaults[name]):
            problems.append(f"{where}: {name} = {value!r} is {_ros_type(value)}, the parameter is "
                            f"{_ros_type(defaults[name])}")
        elif name in element_types and any(_ros_type(v) != _ros_type(element_types[name]()) for v in value):
            problems.append(f"{where}: {name} = {value!r} must hold only {element_types[name].__name__} values")
    if not problems:
        merged = {**flatten(config_cls()), **{k: v for k, v in values.items() if k not in ROS_PARAMETERS}}
        try:
            from_dict(config_cls, unflatten(merged), config_cls.__name__)
        except ValueError as err:
            problems.append(f"{where}: {err}")
    return problems


def param_file_values(data: dict, node_name: str, where: str) -> tuple[dict[str, Any], list[str]]:
    """The parameters a ROS parameter file (parsed) sets for node `node_name`, and its structural problems."""
    problems, values = [], {}
    if not isinstance(data, dict):
        return {}, [f"{where}: not a mapping of node names"]
    for key, section in data.items():
        if not isinstance(section, dict) or set(section) != {"ros__parameters"}:
            problems.append(f"{where}: {key!r} must hold exactly `ros__parameters:`")
        elif str(key).lstrip("/") in (node_name, "**"):
            values.update(flatten_yaml(section["ros__parameters"] or {}))
    return values, problems


def param_file_problems(data: dict, where: str) -> list[str]:
    """Problems of a whole parameter file: node names that are no node of the package, and their parameters."""
    problems = []
    names = {importlib.import_module(module).NODE_NAME: cls for module, cls in NODES.values()}
    for key in data if isinstance(data, dict) else []:
        if str(key).lstrip("/") not in names:
            problems.append(f"{where}: {key!r} is no node of {PACKAGE} (nodes: {sorted(names)})")
    for node_name, cls in names.items():
        values, structure = param_file_values(data, node_name, where)
        problems += structure + parameter_problems(cls, values, f"{where} ({node_name})")
    return problems


def node_topics(exe: str, config) -> set[str]:
    """The names a node uses (topics, services, actions), as written in its code and its topic parameters,
    and resolved (no namespace): '~/map' -> '/eqa_node/map', 'navigate_to_pose' -> '/navigate_to_pose'."""
    module_name = NODES[exe][0]
    module = importlib.import_module(module_name)
    source = Path(module.__file__).read_text()
    names = set(re.findall(r"\"(~?/[A-Za-z0-9_/]+)\"", source))  # "~/map", "/tf", "/clock" in the code
    names |= {module.ACTION_NAME} if hasattr(module, "ACTION_NAME") else set()
    for topics in (TopicConfig(), config.topics):
        names |= set(dataclasses.asdict(topics).values())
    resolved = set()
    for name in names:
        if name.startswith("~/"):
            resolved.add(f"/{module.NODE_NAME}/{name[2:]}")
        elif not name.startswith("/"):
            resolved.add(f"/{name}")
    return names | resolved


# -- launch files -----------------------------------------------------------------------------------------------
def declared_args(root: ET.Element) -> dict[str, str]:
    """The launch arguments a file declares -> default (with the earlier arguments' defaults substituted);
    <arg> elements with a value (arguments of an <include>) are not declarations."""
    out: dict[str, str] = {}
    for arg in root.iter("arg"):
        if "value" not in arg.attrib:
            out[arg.attrib["name"]] = VAR.sub(lambda m: out.get(m.group(1), m.group(0)), arg.get("default", ""))
    return out


def with_defaults(text: str, args: dict[str, str]) -> str:
    """`text` with each $(var X) replaced by X's default."""
    return VAR.sub(lambda m: args.get(m.group(1), m.group(0)), text)


def shipped_file(text: str) -> Path | None:
    """The source file behind $(find-pkg-share confident_eqa)/X (None when `text` is not such a path)."""
    match = SHARE_PATH.fullmatch(text.strip())
    return share_file(match.group(1)) if match else None


def substitution_problems(root: ET.Element) -> list[str]:
    """Each $(var X) names a declared argument; each declared argument is used."""
    args = declared_args(root)
    used = {name for el in root.iter() for value in el.attrib.values() for name in VAR.findall(value)}
    return ([f"$(var {name}) but no <arg name={name!r}>" for name in sorted(used - set(args))]
            + [f"<arg name={name!r}> is never used" for name in sorted(set(args) - used)])


def package_nodes(root: ET.Element) -> list[ET.Element]:
    return [node for node in root.iter("node") if node.get("pkg") == PACKAGE]


def executable_problems(root: ET.Element) -> list[str]:
    """Each node of the package runs an installed console script whose function exists, under its NODE_NAME."""
    problems, scripts = [], console_scripts()
    for node in package_nodes(root):
        exe = node.get("exec")
        if exe not in scripts:
            problems.append(f"node exec={exe!r} is no console script of setup.py ({sorted(scripts)})")
            continue
        module_name, function = scripts[exe].split(":")
        module = importlib.import_module(module_name)
        if not callable(getattr(module, function, None)):
            problems.append(f"console script {exe} = {scripts[exe]}: no such function")
        if exe not in NODES:
            problems.append(f"node exec={exe!r} is no ROS node of the package ({sorted(NODES)})")
        elif node.get("name") != module.NODE_NAME:
            problems.append(f"node exec={exe!r} name={node.get('name')!r}: the parameter files and RViz know it as "
                            f"{module.NODE_NAME!r}")
    return problems


def file_problems(root: ET.Element) -> list[str]:
    """Each $(find-pkg-share confident_eqa)/X in the file (argument defaults substituted) exists in the source tree
    and setup.py installs it as share/confident_eqa/X."""
    args = declared_args(root)
    problems = []
    for el in root.iter():
        for value in el.attrib.values():
            for rel in SHARE_PATH.findall(with_defaults(value, args)):
                if not (ROOT / rel).is_file():
                    problems.append(f"{PKG_SHARE}/{rel}: no file {rel} in the source tree")
                elif installed_share().get(rel) != rel:
                    problems.append(f"{PKG_SHARE}/{rel}: setup.py data_files does not install {rel} there")
    return problems


def _launch_params(element: ET.Element, args: dict[str, str], prefix: str = "") -> list[tuple[str, Any]]:
    """The <param> elements of a node in order: ('from', path) or (dotted name, value as launch_ros types it)."""
    out: list[tuple[str, Any]] = []
    for param in element.findall("param"):
        if "from" in param.attrib:
            out.append(("from", with_defaults(param.attrib["from"], args)))
        elif "value" in param.attrib:
            out.append((prefix + param.attrib["name"], yaml.safe_load(with_defaults(param.attrib["value"], args))))
        else:  # <param name="section"><param name="leaf" value=.../></param>
            out += _launch_params(param, args, prefix + param.attrib["name"] + ".")
    return out


def effective_parameters(node: ET.Element, args: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The parameters a package node gets with the arguments' defaults: its parameter files in order, then the
    <param name= value=> overrides as they come (the later wins)."""
    values: dict[str, Any] = {}
    problems = []
    for name, value in _launch_params(node, args):
        if name != "from":
            values[name] = value
            continue
        path = shipped_file(value)
        if path is None or not path.is_file():
            problems.append(f"node {node.get('name')}: parameter file {value!r} is no file the package installs")
            continue
        data = yaml.safe_load(path.read_text())
        file_values, structure = param_file_values(data, node.get("name"), path.name)
        if not file_values:
            problems.append(f"node {node.get('name')}: {path.name} has no parameters for it")
        problems += structure
        values.update(file_values)
    return values, problems


def launch_parameter_problems(root: ET.Element) -> list[str]:
    """Each parameter a package node gets (files and <param>) is declared by it, with the right type and an
    accepted value."""
    args, problems = declared_args(root), []
    for node in package_nodes(root):
        if node.get("exec") not in NODES:
            continue
        values, found = effective_parameters(node, args)
        problems += found + parameter_problems(NODES[node.get("exec")][1], values, f"node {node.get('name')}")
    return problems


def remap_problems(root: ET.Element) -> list[str]:
    """Each <remap from=...> of a package node names a topic, service or action the node uses."""
    args, problems = declared_args(root), []
    for node in package_nodes(root):
        exe = node.get("exec")
        if exe not in NODES:
            continue
        values, _ = effective_parameters(node, args)
        cls = NODES[exe][1]
        merged = {**flatten(cls()), **{k: v for k, v in values.items() if k in parameter_names(cls)}}
        try:
            config = from_dict(cls, unflatten(merged), cls.__name__)
        except ValueError:
            config = cls()
        used = node_topics(exe, config)
        for remap in node.iter("remap"):
            source = with_defaults(remap.get("from", ""), args)
            if source not in used:
                problems.append(f"node {node.get('name')}: <remap from={source!r}> is no name it uses "
                                f"({sorted(used)})")
            if not with_defaults(remap.get("to", ""), args).strip():
                problems.append(f"node {node.get('name')}: <remap from={source!r}> has no `to`")
    return problems


def launch_problems(root: ET.Element) -> list[str]:
    return (substitution_problems(root) + executable_problems(root) + file_problems(root)
            + launch_parameter_problems(root) + remap_problems(root))


def parse(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "launch", f"{path.name}: the root element is <{root.tag}>, not <launch>"
    return root


def parse_replaced(path: Path, old: str, new: str) -> ET.Element:
    """`path` parsed with `old` replaced by `new` (the checkers' own tests)."""
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path.name}"
    return ET.fromstring(text.replace(old, new, 1))


# -- the shipped files --------------------------------------------------------------------------------------------
def test_the_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {"eqa.launch.xml", "sim_demo.launch.xml"}
    assert {p.name for p in PARAM_FILES} >= {"eqa_node.yaml", "sim_robot.yaml", "sim_demo.yaml"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_substitutions_name_declared_arguments(path):
    assert substitution_problems(parse(path)) == []


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_nodes_run_installed_console_scripts(path):
    root = parse(path)
    assert package_nodes(root), f"{path.name} starts no node of {PACKAGE}"
    assert executable_problems(root) == []


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_refer_to_installed_files(path):
    assert file_problems(parse(path)) == []


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_parameters_are_declared_by_the_node(path):
    assert launch_parameter_problems(parse(path)) == []


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_remaps_name_topics_the_node_uses(path):
    assert remap_problems(parse(path)) == []


def test_launch_and_rviz_files_are_installed_and_ros2_run_finds_the_scripts():
    for path in sorted((ROOT / "launch").iterdir()):
        assert installed_share().get(f"launch/{path.name}") == f"launch/{path.name}", path.name
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    # `ros2 run confident_eqa eqa_node` looks in lib/confident_eqa
    assert cfg["install"]["install_scripts"] == f"$base/lib/{PACKAGE}"
    assert cfg["develop"]["script_dir"] == f"$base/lib/{PACKAGE}"
    assert {"eqa_node", "sim_robot"} <= set(console_scripts())


def test_robot_launch_topic_arguments_default_to_the_node_defaults():
    """The topic arguments override the parameter file's topics.*: their defaults must be the node's, so that
    `ros2 launch confident_eqa eqa.launch.xml` without arguments listens where the shipped file says."""
    root = parse(ROOT / "launch" / "eqa.launch.xml")
    args = declared_args(root)
    node = next(n for n in package_nodes(root) if n.get("exec") == "eqa_node")
    overrides = dict(p for p in _launch_params(node, {}) if p[0] != "from")
    shipped = flatten_yaml(yaml.safe_load((ROOT / "configs/ros/eqa_node.yaml").read_text())["eqa_node"]
                           ["ros__parameters"])
    for stream in ("rgb", "depth", "camera_info", "odom"):
        arg = VAR.fullmatch(str(overrides[f"topics.{stream}"]))
        assert arg, f"topics.{stream} is not set from a launch argument"
        assert args[arg.group(1)] == getattr(TopicConfig(), stream), stream
        assert shipped.get(f"topics.{stream}", args[arg.group(1)]) == args[arg.group(1)], stream
    assert args["use_sim_time"] == "false" and args["rviz"] == "false"
    assert shipped_file(args["params_file"]) == ROOT / "configs/ros/eqa_node.yaml"


def test_sim_demo_launch_uses_the_sim_demo_parameters():
    root = parse(ROOT / "launch" / "sim_demo.launch.xml")
    args = declared_args(root)
    assert shipped_file(args["params_file"]) == ROOT / "configs/ros/sim_demo.yaml"
    nodes = {n.get("exec"): n for n in package_nodes(root)}
    assert set(nodes) == {"sim_robot", "eqa_node"}
    node_values, _ = effective_parameters(nodes["eqa_node"], args)
    robot_values, _ = effective_parameters(nodes["sim_robot"], args)
    assert node_values["use_sim_time"] is True and node_values["frames.pose_source"] == "odom"
    assert robot_values["rate_hz"] == 0.0  # exact mode: simulated time on /clock


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_parameter_files_set_only_declared_parameters(path):
    data = yaml.safe_load(path.read_text())
    assert data, f"{path.name} is empty"
    assert param_file_problems(data, path.name) == []


def _rviz_topics(tree: Any, where: str = "") -> list[tuple[str, str, dict]]:
    """(display class, topic, display) of every display with a topic."""
    out = []
    if isinstance(tree, dict):
        if isinstance(tree.get("Topic"), dict) and "Value" in tree["Topic"]:
            out.append((tree.get("Class", where), tree["Topic"]["Value"], tree))
        for key, value in tree.items():
            out += _rviz_topics(value, str(key))
    elif isinstance(tree, list):
        for value in tree:
            out += _rviz_topics(value, where)
    return out


def rviz_problems(config: dict) -> list[str]:
    """RViz shows the node's world frame and only topics the eqa_node publishes or subscribes."""
    problems = []
    manager = config.get("Visualization Manager", {})
    fixed = manager.get("Global Options", {}).get("Fixed Frame")
    if fixed != FrameConfig().world:
        problems.append(f"Fixed Frame {fixed!r}, the node's world frame is {FrameConfig().world!r}")
    used = node_topics("eqa_node", EQANodeConfig())
    for cls, topic, display in _rviz_topics(config):
        if topic not in used:
            problems.append(f"{cls} shows {topic!r}, which the eqa_node does not use")
        update = display.get("Update Topic", {}).get("Value")
        if update is not None and update != f"{topic}_updates":
            problems.append(f"{cls} {topic}: Update Topic {update!r} is not RViz's {topic}_updates")
    return problems


def test_rviz_config_shows_the_node_topics():
    config = yaml.safe_load(RVIZ_FILE.read_text())
    assert rviz_problems(config) == []
    shown = {(cls, topic) for cls, topic, _ in _rviz_topics(config)}
    assert {("rviz_default_plugins/Map", "/eqa_node/map"), ("rviz_default_plugins/Map", "/eqa_node/value_map"),
            ("rviz_default_plugins/MarkerArray", "/eqa_node/markers"),
            ("rviz_default_plugins/Image", TopicConfig().rgb)} <= shown
    displays = config["Visualization Manager"]["Displays"]
    assert any(d["Class"] == "rviz_default_plugins/TF" for d in displays)
    value_map = next(d for d in displays if d.get("Topic", {}).get("Value") == "/eqa_node/value_map")
    assert value_map["Color Scheme"] == "costmap"


# -- the checkers find mistakes -----------------------------------------------------------------------------------
ROBOT, DEMO = ROOT / "launch" / "eqa.launch.xml", ROOT / "launch" / "sim_demo.launch.xml"


@pytest.mark.parametrize("path, old, new, expected", [
    (ROBOT, 'name="topics.rgb"', 'name="topics.rbg"', "'topics.rbg' is not a parameter"),
    (ROBOT, "$(var rgb_topic)", "$(var rgb_topics)", "no <arg name='rgb_topics'>"),
    (ROBOT, 'exec="eqa_node"', 'exec="eqa_nod"', "no console script"),
    (ROBOT, 'name="eqa_node" output', 'name="eqa" output', "know it as 'eqa_node'"),
    (ROBOT, 'ros/eqa_node.yaml"', 'ros/eqa_node.yml"', "no file configs/ros/eqa_node.yml"),
    (ROBOT, "<param from=", '<remap from="/camera/rgb" to="/x"/><param from=', "no name it uses"),
    (DEMO, 'name="seed" default="0"', 'name="seed" default="0.5"', "seed = 0.5 is double"),
    (DEMO, 'ros/sim_demo.yaml"', 'ros/sim_robot.yaml"', "has no parameters for it"),
])
def test_launch_checkers_find_mistakes(path, old, new, expected):
    assert launch_problems(parse(path)) == []
    problems = launch_problems(parse_replaced(path, old, new))
    assert any(expected in p for p in problems), problems


def test_remaps_of_used_topics_pass():
    root = parse_replaced(ROBOT, "<param from=", '<remap from="/odom" to="/robot/odom"/>'
                                                 '<remap from="~/map" to="/eqa_map"/><param from=')
    assert remap_problems(root) == []


@pytest.mark.parametrize("data, expected", [
    ({"eqa_node": {"ros__parameters": {"sync": {"pair_tolerence_s": 0.1}}}}, "'sync.pair_tolerence_s' is not"),
    ({"eqa_node": {"ros__parameters": {"frames": {"pose_source": "gps"}}}}, "frames.pose_source must be one of"),
    ({"eqa_node": {"ros__parameters": {"keyframes": {"capacity": 16.0}}}}, "is double, the parameter is integer"),
    ({"eqa_node": {"ros__parameters": {"frames": {"camera_offset": [0, 0, 1.5, 0, 0.5, 0]}}}}, "only float"),
    ({"sim_robot": {"ros__parameters": {"rate_hz": 0}}}, "is integer, the parameter is double"),
    ({"sim_robt": {"ros__parameters": {"seed": 0}}}, "'sim_robt' is no node"),
    ({"eqa_node": {"parameters": {"seed": 0}}}, "exactly `ros__parameters:`"),
])
def test_parameter_file_checker_finds_mistakes(data, expected):
    problems = param_file_problems(data, "test.yaml")
    assert any(expected in p for p in problems), problems


def test_rviz_checker_finds_mistakes():
    config = yaml.safe_load(RVIZ_FILE.read_text().replace("/eqa_node/markers", "/eqa_node/marker"))
    assert any("'/eqa_node/marker'" in p for p in rviz_problems(config))
    config = yaml.safe_load(RVIZ_FILE.read_text().replace("Fixed Frame: map", "Fixed Frame: odom"))
    assert any("Fixed Frame 'odom'" in p for p in rviz_problems(config))
