"""The repository is one ROS 2 ament_python package: colcon builds it into a workspace (no ROS needed)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_colcon_build_installs_package_configs_launch_and_script(tmp_path):
    colcon = Path(sys.executable).parent / "colcon"
    if not colcon.exists():
        pytest.skip("colcon is not installed (pip install colcon-common-extensions)")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    src = tmp_path / "src" / "confident_eqa"
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    listed = subprocess.run([str(colcon), "list"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "confident_eqa" in listed and "ros.ament_python" in listed
    subprocess.run([str(colcon), "build"], cwd=tmp_path, capture_output=True, text=True, check=True)
    share = tmp_path / "install" / "confident_eqa" / "share"
    assert (share / "ament_index" / "resource_index" / "packages" / "confident_eqa").is_file()
    assert (share / "confident_eqa" / "package.xml").is_file()
    assert (share / "confident_eqa" / "configs" / "sim.yaml").is_file()
    assert (tmp_path / "install" / "confident_eqa" / "lib" / "confident_eqa" / "eqa").is_file()  # for `ros2 run`
    site = next((tmp_path / "install" / "confident_eqa" / "lib").glob("python3*/site-packages"))
    for package in ("mapping", "nav", "sim", "vlm", "eqa"):
        assert (site / package / "__init__.py").is_file()
    assert (site / "vlm" / "assets" / "DejaVuSans-Bold.ttf").is_file()
