"""Which topics and frames of a bag the replay reads: given by options or a small YAML file, otherwise detected
from the common camera layouts (RealSense and ZED names such as `.../color/image_raw`,
`.../aligned_depth_to_color/image_raw`, `.../depth/image_rect_raw`, `.../rgb/image_rect_color`,
`.../depth/depth_registered`, their image_transport `/compressed` and `/compressedDepth` versions, the colour
stream's `camera_info`; a depth topic must have "depth" in its name), with poses from /tf or nav_msgs/Odometry.

YAML keys (all optional): rgb, depth, camera_info, odom (topic names); pose_source (tf | odom); world, base
(frame names); camera_offset (x, y, z, roll, pitch, yaw of the camera body in the base frame, for odometry
poses).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

from eqa.bag.messages import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, ODOMETRY, TF_MESSAGE
from eqa.ros.config import FrameConfig

IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)


@dataclass
class BagTopics:
    """Topic names ('' = detect), the pose source ('' = tf when the bag has /tf, else odom) and frames ('' =
    detect: the TF tree's root above the base, base_link or base_footprint; for odometry its header and child
    frames); camera_offset: the camera body in the base frame for odometry poses (default: the eqa_node's,
    eqa.ros.config.FrameConfig)."""

    rgb: str = ""
    depth: str = ""
    camera_info: str = ""
    odom: str = ""
    pose_source: str = ""
    world: str = ""
    base: str = ""
    camera_offset: list[float] = field(default_factory=lambda: list(FrameConfig().camera_offset))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "BagTopics":
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of topic settings")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def merged(self, **options) -> "BagTopics":
        """A copy with the options that are set (not None or '') replacing these values."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in options.items() if v not in (None, "")})
        return BagTopics(**values)


def _is_depth(name: str) -> bool:
    return "depth" in name.lower()


def _colour_rank(name: str) -> tuple:
    """Lower is better: colour names first, raw before compressed, rectified before raw."""
    low = name.lower()
    colour = 0 if ("color" in low or "colour" in low or "rgb" in low) else 1
    infra = 1 if any(k in low for k in ("infra", "/ir/", "mono", "left/", "right/", "thermal")) else 0
    return infra, colour, low.endswith("/compressed"), "rect" not in low, len(name)


def _depth_rank(name: str) -> tuple:
    low = name.lower()
    return "aligned" not in low and "registered" not in low, low.endswith("compresseddepth"), len(name)


def _namespace(topic: str) -> str:
    parts = topic.rstrip("/").split("/")
    if parts[-1] in ("compressed", "compressedDepth"):
        parts = parts[:-1]
    return "/".join(parts[:-1])


def resolve_topics(available: dict[str, str], wanted: BagTopics) -> BagTopics:
    """The topics to read, from the bag's topics (name -> type) and the user's choices; ValueError naming what
    is missing and what the bag has."""
    listing = ", ".join(f"{t} ({k})" for t, k in sorted(available.items())) or "none"

    def given(name: str, value: str, types: tuple[str, ...]) -> str:
        if value not in available:
            raise ValueError(f"the bag has no topic {value!r} ({name}); its topics: {listing}")
        if available[value] not in types:
            raise ValueError(f"topic {value!r} ({name}) is {available[value]}, expected {' or '.join(types)}")
        return value

    images = [t for t, k in available.items() if k in IMAGE_TYPES]
    if wanted.rgb:
        rgb = given("rgb", wanted.rgb, IMAGE_TYPES)
    else:
        colour = sorted((t for t in images if not _is_depth(t)), key=_colour_rank)
        if not colour:
            raise ValueError(f"the bag has no colour image topic (sensor_msgs/Image or CompressedImage); its topics: "
                             f"{listing}. Name one with --rgb-topic")
        rgb = colour[0]
    if wanted.depth:
        depth = given("depth", wanted.depth, IMAGE_TYPES)
    else:
        depths = sorted((t for t in images if _is_depth(t)), key=_depth_rank)
        if not depths:
            raise ValueError(f"the bag has no depth image topic (a sensor_msgs/Image with 'depth' in its name); its "
                             f"topics: {listing}. Name one with --depth-topic")
        depth = depths[0]
    if wanted.camera_info:
        info = given("camera_info", wanted.camera_info, (CAMERA_INFO,))
    else:
        infos = [t for t, k in available.items() if k == CAMERA_INFO]
        same = [t for t in infos if _namespace(t) == _namespace(rgb)]
        aligned = [t for t in infos if _namespace(t) == _namespace(depth) and "aligned" in depth]
        if not infos:
            raise ValueError(f"the bag has no camera info (sensor_msgs/CameraInfo): the colour camera's intrinsics "
                             f"are needed; its topics: {listing}")
        if same or aligned:
            info = (same or aligned)[0]
        elif len(infos) == 1:
            info = infos[0]
        else:
            raise ValueError(f"cannot tell which camera info belongs to {rgb} among {sorted(infos)}; name it with "
                             "--camera-info-topic")
    odoms = [t for t, k in available.items() if k == ODOMETRY]
    odom = given("odom", wanted.odom, (ODOMETRY,)) if wanted.odom else (
        "/odom" if "/odom" in odoms else (sorted(odoms)[0] if odoms else ""))
    has_tf = available.get("/tf") == TF_MESSAGE
    source = wanted.pose_source or ("tf" if has_tf else "odom")
    if source not in ("tf", "odom"):
        raise ValueError(f"pose source must be tf or odom, got {source!r}")
    if source == "tf" and not has_tf:
        raise ValueError(f"pose source tf, but the bag has no /tf (tf2_msgs/TFMessage); its topics: {listing}")
    if source == "odom" and not odom:
        raise ValueError(f"the bag has neither /tf nor a nav_msgs/Odometry topic: no robot poses; its topics: "
                         f"{listing}")
    return wanted.merged(rgb=rgb, depth=depth, camera_info=info, odom=odom, pose_source=source)


def tf_root(parents: dict[str, str], start: str) -> list[str]:
    """The chain of frames from `start` up to the root of its TF tree (start first)."""
    chain, seen = [start], {start}
    while chain[-1] in parents and parents[chain[-1]] not in seen:
        chain.append(parents[chain[-1]])
        seen.add(chain[-1])
    return chain


def resolve_frames(topics: BagTopics, parents: dict[str, str], camera_frame: str, odom_frames: Optional[tuple[str, str]]
                   ) -> BagTopics:
    """World and base frames: for TF poses from the camera frame's chain (base: base_link, base_footprint or
    the camera's parent; world: map, odom or the root); for odometry poses the message's frames."""
    if topics.pose_source == "odom":
        if odom_frames is None:
            raise ValueError(f"no odometry message on {topics.odom}")
        world, base = odom_frames
        return topics.merged(world=topics.world or world, base=topics.base or base)
    chain = tf_root(parents, camera_frame)
    if len(chain) == 1:
        known = sorted(set(parents) | set(parents.values()))
        raise ValueError(f"the camera frame {camera_frame!r} is not in the bag's TF tree (frames: {known}); use "
                         "--pose-source odom with --camera-offset, or record the camera's transforms")
    base = topics.base or next((f for f in ("base_link", "base_footprint") if f in chain), chain[1])
    world = topics.world or next((f for f in ("map", "odom", "world") if f in chain), chain[-1])
    if base not in chain or world not in chain or chain.index(world) <= chain.index(base):
        raise ValueError(f"frames: need the world frame above the base frame above the camera; TF chain from the "
                         f"camera: {chain}; got world {world!r}, base {base!r}")
    return topics.merged(world=world, base=base)
