"""Posed frames from a bag, in stamp order: colour, depth and camera info paired by stamp within a tolerance,
each frame posed at its stamp by TF or odometry (interpolated), by the same FrameAssembler as the ROS 2 node,
whose clock here is the bag's time. Images are put in header-stamp order through a window of `reorder_s`
seconds; an image older than what has been released, or repeating a stamp, is dropped and counted.

Decoded here: sensor_msgs/Image (eqa.ros.convert: rgb8, bgr8, rgba8, bgra8; depth 32FC1 m, 16UC1 mm) and
sensor_msgs/CompressedImage: colour JPEG or PNG, depth `compressedDepth` PNG (16UC1 millimetres, or 32FC1 as
quantised inverse depth), as image_transport writes them.
"""
from __future__ import annotations

import heapq
import io
import struct
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Iterator, Optional

import numpy as np

from eqa.bag.messages import COMPRESSED_IMAGE
from eqa.bag.reader import BagReader
from eqa.bag.topics import BagTopics
from eqa.ros.config import EQANodeConfig, FrameConfig, SyncConfig
from eqa.ros.convert import stamp_seconds
from eqa.ros.frames import FrameAssembler
from mapping.frame import Frame

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def decode_compressed(msg, depth: bool):
    """A sensor_msgs/CompressedImage as an object with sensor_msgs/Image's fields (rgb8, 16UC1 or 32FC1);
    ValueError naming an unsupported format."""
    fmt = str(msg.format).lower()
    data = bytes(msg.data)
    from PIL import Image

    if depth or "compresseddepth" in fmt:
        if "rvl" in fmt:
            raise ValueError(f"compressed depth format {msg.format!r} (RVL) is not supported; record raw depth or PNG")
        start = data.find(PNG_MAGIC, 0, 64)
        if start < 0:
            raise ValueError(f"compressed depth format {msg.format!r}: no PNG data")
        pixels = np.asarray(Image.open(io.BytesIO(data[start:]))).astype(np.uint16)
        if fmt.startswith("32fc1"):
            if start < 12:
                raise ValueError(f"compressed depth format {msg.format!r}: no quantisation header")
            _, quant_a, quant_b = struct.unpack("<iff", data[start - 12:start])
            values = pixels.astype(np.float32)
            out = np.zeros_like(values)
            ok = pixels > 0
            out[ok] = quant_a / (values[ok] - quant_b)
            return _image(msg.header, out.astype("<f4"), "32FC1")
        return _image(msg.header, pixels.astype("<u2"), "16UC1")
    try:
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except Exception as err:  # noqa: BLE001 - PIL raises many kinds for bad data
        raise ValueError(f"cannot decode compressed colour image ({msg.format!r}): {err}") from err
    return _image(msg.header, np.ascontiguousarray(rgb), "rgb8")


def _image(header, pixels: np.ndarray, encoding: str):
    h, w = pixels.shape[:2]
    return SimpleNamespace(header=header, height=h, width=w, encoding=encoding, is_bigendian=0,
                           step=pixels.strides[0], data=pixels.tobytes())


@dataclass
class BagFrameStats:
    """What the replay read: frames built, images dropped before pairing (by reason), and the assembler's
    counts (eqa.ros.frames.FrameStats)."""

    frames: int = 0
    dropped: Counter = field(default_factory=Counter)
    assembler: dict = field(default_factory=dict)
    problem: str = ""

    def describe(self) -> str:
        """One line: frames built, and those dropped by reason with the last problem (the assembler's counts
        once the iteration has ended)."""
        dropped = {**self.dropped, **self.assembler.get("dropped", {})}
        text = f"{self.frames} frames"
        if dropped:
            text += "; dropped: " + ", ".join(f"{n} {why}" for why, n in sorted(dropped.items()))
        problem = self.problem or self.assembler.get("last_problem", "")
        return text + (f" (last problem: {problem})" if problem and dropped else "")


class BagFrames:
    """Iterates the posed frames of a bag (topics resolved: eqa.bag.topics.resolve_topics and resolve_frames).
    pair_tolerance_s / pose_tolerance_s: as the ROS node's sync settings; reorder_s: the stamp-order window."""

    def __init__(self, reader: BagReader, topics: BagTopics, pair_tolerance_s: float = 0.02,
                 pose_tolerance_s: float = 0.1, reorder_s: float = 0.5) -> None:
        self.reader, self.topics, self.reorder_s = reader, topics, reorder_s
        config = EQANodeConfig(frames=FrameConfig(world=topics.world, base=topics.base, pose_source=topics.pose_source,
                                                  camera_offset=list(topics.camera_offset)),
                               sync=SyncConfig(pair_tolerance_s=pair_tolerance_s, pose_tolerance_s=pose_tolerance_s))
        self._now = 0.0
        self.assembler = FrameAssembler(config, clock=lambda: self._now)
        self.stats = BagFrameStats()

    def __iter__(self) -> Iterator[Frame]:
        t = self.topics
        streams = {t.rgb: "rgb", t.depth: "depth", t.camera_info: "camera_info"}
        names = list(streams) + ([t.odom] if t.odom else []) + (["/tf", "/tf_static"] if t.pose_source == "tf" else [])
        heap: list = []
        released: dict[str, float] = {}
        newest, seq = -np.inf, 0
        for item in self.reader.messages(names):
            if item.msg is None:
                continue
            stream = streams.get(item.topic)
            if stream is None:
                yield from self._pose(item)
                continue
            stamp = self._stamp(item)
            if stamp is None:
                continue
            newest = max(newest, stamp)
            heapq.heappush(heap, (stamp, seq, stream, item))
            seq += 1
            while heap and heap[0][0] < newest - self.reorder_s:
                yield from self._release(heapq.heappop(heap), released)
        while heap:
            yield from self._release(heapq.heappop(heap), released)
        yield from self._built(self.assembler.flush())
        self.stats.assembler = self.assembler.stats.to_json(self.assembler.unmatched())

    def _stamp(self, item) -> Optional[float]:
        try:
            return stamp_seconds(item.msg.header.stamp)
        except (AttributeError, TypeError, ValueError) as err:
            self.stats.dropped["bad header"] += 1
            self.stats.problem = f"{item.topic}: {err}"
            return None

    def _pose(self, item) -> Iterator[Frame]:
        if item.topic == self.topics.odom:
            frames = self.assembler.add_odometry(item.msg)
        else:
            frames = self.assembler.add_tf(item.msg, static=item.topic == "/tf_static")
        yield from self._built(frames)

    def _release(self, entry, released: dict[str, float]) -> Iterator[Frame]:
        stamp, _, stream, item = entry
        last = released.get(stream)
        if last is not None and stamp <= last:
            self.stats.dropped["duplicate stamp" if stamp == last else "out of order"] += 1
            self.stats.problem = f"{item.topic}: stamp {stamp:.6f} s after {last:.6f} s"
            return
        released[stream] = stamp
        msg = item.msg
        if item.msgtype == COMPRESSED_IMAGE:
            try:
                msg = decode_compressed(msg, depth=stream == "depth")
            except ValueError as err:
                self.stats.dropped["bad image"] += 1
                self.stats.problem = f"{item.topic}: {err}"
                return
        self._now = max(self._now, stamp)
        yield from self._built(self.assembler.add_image(stream, msg))

    def _built(self, frames: list[Frame]) -> Iterator[Frame]:
        for frame in frames:
            self.stats.frames += 1
            yield frame
