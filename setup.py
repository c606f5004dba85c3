"""pip and colcon (ament_python) install of Confident EQA; console scripts `eqa`, `eqa_node`, `sim_robot`."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "confident_eqa"

ROS_WHEELS = ["rclpy[fastrtps]", "sensor-msgs", "geometry-msgs", "nav-msgs", "std-msgs", "std-srvs",
              "visualization-msgs", "lifecycle-msgs", "rosgraph-msgs", "action-msgs", "builtin-interfaces"]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Embodied question answering: explore until confident (conformal stopping).",
    # configs/ installs as the package `eqa.configs` (its YAML files are package data)
    packages=find_packages(include=["mapping*", "vlm*", "nav*", "sim*", "eqa*"]) + ["eqa.configs"],
    package_dir={"eqa.configs": "configs"},
    package_data={"": ["*.json", "*.ttf", "*.pt", "*.md", "assets/*", "weights/*", "calibrations/*.json", "hm_eqa/*.csv",
                      "open_eqa/*.json"],
                  "eqa.configs": ["*.yaml", "ros/*.yaml", "ros/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.xml") + glob("launch/*.rviz")),
        (f"share/{PACKAGE}/configs", glob("configs/*.yaml")),
        (f"share/{PACKAGE}/configs/ros", glob("configs/ros/*.yaml") + glob("configs/ros/*.xml")),
    ],
    python_requires=">=3.11",
    install_requires=[
        "numpy>=1.26,<3",
        "scipy>=1.11",
        "open3d-cpu==0.20.0; platform_machine=='x86_64'",
        "open3d==0.20.0; platform_machine!='x86_64'",
        "scikit-image>=0.24",
        "pillow>=10",
        "pyyaml>=6",
        "tqdm>=4.66",
        "numba>=0.60",
        "matplotlib>=3.8",
    ],
    extras_require={
        # the bag tests read the project's bags back with a second, independent reader (mcap + mcap-ros2-support)
        "test": ["pytest>=8", "pytest-xdist>=3", "rerun-sdk>=0.20", "ray>=2.9", "colcon-common-extensions>=0.3",
                 "rosbags>=0.10", "mcap>=1.2", "mcap-ros2-support>=0.5",
                 "trimesh>=4.0", "pygltflib>=1.16", "opengl_basisu==0.1.0a2"],
        "bag": ["rosbags>=0.10", "mcap>=1.2"],  # eqa record / eqa replay (rosbag2 MCAP and sqlite3)
        "rerun": ["rerun-sdk>=0.20"],
        "torch": ["torch==2.14.1", "torchvision==0.29.1"],
        "hf": ["torch==2.14.1", "torchvision==0.29.1", "transformers>=5.0,<6"],
        "clip": ["torch==2.14.1", "torchvision==0.29.1", "open_clip_torch>=3.0,<4"],
        # ROS 2 Jazzy from pip (x86_64 wheels, Fast DDS); the interfaces are built with interfaces/build_interfaces.sh
        "ros": [f"ros-jazzy-{name}; platform_machine=='x86_64'" for name in ROS_WHEELS],
        "ray": ["ray>=2.9"],
        # mesh scene files: glTF/GLB (pygltflib), PLY/OBJ and GLB export (trimesh), Basis Universal textures
        "mesh": ["trimesh>=4.0", "pygltflib>=1.16", "opengl_basisu==0.1.0a2"],
    },
    entry_points={"console_scripts": ["eqa = eqa.cli:main", "eqa_node = eqa.ros.node:main",
                                      "sim_robot = eqa.ros.sim_robot:main"]},
    zip_safe=False,
)
