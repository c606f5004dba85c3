"""`eqa ros`: the ROS 2 nodes without the `ros2` command (pip installs), and the simulated-robot demo.

  eqa ros node [ROS_ARGS]       the eqa_node (as `ros2 run confident_eqa eqa_node`)
  eqa ros sim-robot [ROS_ARGS]  the simulated robot
  eqa ros demo [--out DIR]      both on a private ROS domain; asks the demo question through the action
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ros", help="ROS 2: the EQA node, the simulated robot, and a demo of both",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ros_sub = parser.add_subparsers(dest="ros_command", metavar="ROS_COMMAND", required=True)
    for name, text in (("node", "run the eqa_node (configure + activate unless autostart:=false)"),
                       ("sim-robot", "run the simulated robot")):
        p = ros_sub.add_parser(name, help=text, description=text + ", e.g. --params-file my.yaml "
                               "-p navigation.mode:=goal_pose -r /odom:=/robot/odom")
        p.add_argument("--params-file", help="ROS parameter file (default: the shipped one)")
        p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                       help="a parameter (repeatable)")
        p.add_argument("-r", "--remap", action="append", default=[], metavar="FROM:=TO",
                       help="a topic remapping (repeatable)")
        p.set_defaults(func=run_node, node=name)
    demo = ros_sub.add_parser("demo", help="the sim robot and the eqa_node on a private domain answer the demo "
                                           "question through the AskQuestion action",
                              description="Start sim_robot and eqa_node as two processes on a private ROS domain "
                                          "(localhost only), ask the `eqa demo` question of --seed through the "
                                          "AskQuestion action, print the feedback and the answer. The node writes "
                                          "the episode (record, pictures) under --out.")
    demo.add_argument("--out", type=Path, default=Path("out/ros_demo"), help="output folder (default out/ros_demo)")
    demo.add_argument("--seed", type=int, default=0, help="question seed (default 0)")
    demo.add_argument("--timeout", type=float, default=600.0, help="seconds before giving up (default 600)")
    demo.add_argument("--domain", type=int, default=None,
                      help="ROS_DOMAIN_ID, 1 to 101 (default: a random one; higher ids' DDS ports reach into "
                           "Linux's ephemeral port range)")
    demo.add_argument("--record-bag", action="store_true",
                      help="the node also records the question as a rosbag2 bag in its episode folder (bag/)")
    demo.set_defaults(func=run_demo)


def shipped_params(node: str) -> Path:
    from eqa.config import config_dir

    return config_dir() / "ros" / f"{'eqa_node' if node == 'node' else 'sim_robot'}.yaml"


def run_node(args: argparse.Namespace) -> int:
    params = Path(args.params_file) if args.params_file else shipped_params(args.node)
    if not params.is_file():
        raise FileNotFoundError(f"no parameter file {params}")
    for item in args.param + args.remap:
        if ":=" not in item:
            raise ValueError(f"{item!r} must look like name:=value")
    ros_args = ["--ros-args", "--params-file", str(params)]
    for item in args.param:
        ros_args += ["-p", item]
    for item in args.remap:
        ros_args += ["-r", item]
    if args.node == "node":
        from eqa.ros.node import main
    else:
        from eqa.ros.sim_robot import main
    return main(args=[sys.argv[0]] + ros_args)


def run_demo(args: argparse.Namespace) -> int:
    from eqa.ros.demo import run_demo as demo

    domain = args.domain if args.domain is not None else random.randint(1, 101)
    return demo(args.out, args.seed, domain, args.timeout, args.record_bag)
