"""Installs that are not editable: `pip install .` into a fresh venv, and `colcon build` (the repository is one
ROS 2 ament_python package; no ROS needed). Each installed `eqa` runs the demo from another directory, so it
must find the shipped configs, weights and calibrations as package data, not in the source tree."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]
DEMO = ["demo", "--no-rerun", "--seed", "1"]


def _source_copy(dest: Path) -> Path:
    """The tracked files of the repository (what a clean clone holds), copied to dest."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _env(pythonpath: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def _installed_paths(python: str, env: dict, cwd: Path) -> list[str]:
    """Where `python`, run in cwd, finds the package, its configs, the weights and the calibrations."""
    code = ("import eqa; from eqa.config import config_dir; from eqa.stopping import SHIPPED_CALIBRATIONS; "
            "from vlm.backends.builtin import WEIGHTS_FILE; print(eqa.__file__, config_dir(), WEIGHTS_FILE, "
            "SHIPPED_CALIBRATIONS)")
    return subprocess.run([python, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def _demo_runs(eqa: list[str], env: dict, cwd: Path) -> None:
    """`eqa demo` from `cwd` writes its episode with the shipped calibration."""
    out = subprocess.run(eqa + DEMO + ["--out", "episode"], cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((cwd / "episode" / "summary.json").read_text())
    assert summary["stop_policy"] == "conformal" and summary["answer"] is not None
    assert (cwd / "episode" / "episode.png").is_file() and (cwd / "episode" / "record.jsonl").is_file()
    assert "answer:" in out.stdout


def test_pip_install_into_a_fresh_venv_runs_the_demo_elsewhere(tmp_path):
    src = _source_copy(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # pip comes from here
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    # dependencies from this test's environment (nothing is downloaded); the package itself is installed fresh
    (site / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                              "--no-build-isolation", "--no-index", str(src)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    shutil.rmtree(src)  # the install must not need the source tree
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = _env()
    found = _installed_paths(str(venv / "bin" / "python"), env, work)
    assert len(found) == 4 and all(p.startswith(str(site)) for p in found), found
    _demo_runs([str(venv / "bin" / "eqa")], env, work)


def test_colcon_build_installs_package_configs_launch_and_script(tmp_path):
    """The repository cloned into a workspace builds both of its packages with colcon, as on a robot (README,
    "On a robot"): confident_eqa (ament_python) and confident_eqa_interfaces (ament_cmake, the AskQuestion
    action), against the ROS 2 of this venv (the ros-jazzy wheels and the toolchain build_interfaces.sh
    installs) where a robot uses its system ROS 2."""
    colcon = Path(sys.executable).parent / "colcon"
    if not colcon.exists():
        pytest.fail("colcon is not installed (pip install colcon-common-extensions; the test extra has it)")
    prefix_ros = Path(sys.prefix)
    if not (prefix_ros / "share" / "ament_cmake" / "cmake").is_dir():
        pytest.fail("no ament_cmake in this venv: run interfaces/build_interfaces.sh VENV (make test does)")
    _source_copy(tmp_path / "ws" / "src" / "confident_eqa")
    ws = tmp_path / "ws"
    paths = ["--base-paths", "src", "src/confident_eqa/interfaces"]
    env = {**_env(), "AMENT_PREFIX_PATH": str(prefix_ros), "CMAKE_PREFIX_PATH": str(prefix_ros)}
    listed = subprocess.run([str(colcon), "list", *paths], cwd=ws, capture_output=True, text=True, check=True).stdout
    assert "confident_eqa\t" in listed and "ros.ament_python" in listed
    assert "confident_eqa_interfaces\t" in listed and "ros.ament_cmake" in listed
    assert "nav2_msgs" not in listed and "tf2_msgs" not in listed  # compat/: for pip venvs only
    built = subprocess.run([str(colcon), "build", *paths, "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}",
                            "-DBUILD_TESTING=OFF"], cwd=ws, capture_output=True, text=True, env=env)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    prefix = ws / "install" / "confident_eqa"
    share = prefix / "share"
    assert (share / "ament_index" / "resource_index" / "packages" / "confident_eqa").is_file()
    assert (share / "confident_eqa" / "package.xml").is_file()
    assert (share / "confident_eqa" / "configs" / "sim.yaml").is_file()
    for name in ("eqa_node.yaml", "sim_robot.yaml", "sim_demo.yaml", "fastdds_large_data.xml"):
        assert (share / "confident_eqa" / "configs" / "ros" / name).is_file(), name
    for name in ("eqa.launch.xml", "sim_demo.launch.xml", "eqa.rviz"):
        assert (share / "confident_eqa" / "launch" / name).is_file(), name
    for name in ("eqa", "eqa_node", "sim_robot"):  # for `ros2 run confident_eqa NAME`
        assert (prefix / "lib" / "confident_eqa" / name).is_file(), name
    script = prefix / "lib" / "confident_eqa" / "eqa"
    site = next((prefix / "lib").glob("python3*/site-packages"))
    for package in ("mapping", "nav", "sim", "vlm", "eqa", "eqa/configs", "eqa/ros"):
        assert (site / package / "__init__.py").is_file(), package
    assert (site / "vlm" / "assets" / "DejaVuSans-Bold.ttf").is_file()
    assert (site / "vlm" / "weights" / "builtin_vlm.pt").is_file()
    assert (site / "vlm" / "calibrations" / "semantic-eps0.1.json").is_file()
    assert (site / "eqa" / "configs" / "semantic.yaml").is_file()
    interfaces = ws / "install" / "confident_eqa_interfaces"
    assert (interfaces / "share" / "confident_eqa_interfaces" / "action" / "AskQuestion.action").is_file()
    interfaces_site = next((interfaces / "lib").glob("python3*/site-packages"))
    shutil.rmtree(ws / "src")  # the installed packages must not need the source tree
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = _env(str(site))
    found = _installed_paths(sys.executable, env, work)
    assert len(found) == 4 and all(p.startswith(str(site)) for p in found), found
    _demo_runs([sys.executable, str(script)], env, work)
    # the workspace's action type, not the venv's: a goal of it is built and serialised
    code = ("import confident_eqa_interfaces, rclpy.serialization as s; "
            "from confident_eqa_interfaces.action import AskQuestion; "
            "g = AskQuestion.Goal(question='q', choices=['a', 'b']); "
            "print(confident_eqa_interfaces.__file__, len(s.serialize_message(g)))")
    env = {**_env(f"{interfaces_site}:{site}"),
           "LD_LIBRARY_PATH": f"{interfaces / 'lib'}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
    out = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    path, size = out.stdout.split()
    assert path.startswith(str(interfaces_site)) and int(size) > 0
