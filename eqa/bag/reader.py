"""Reading rosbag2 bags: a bag folder (metadata.yaml with MCAP or sqlite3 files) through rosbags' AnyReader,
or a lone `.mcap` file through the mcap library; messages are deserialised with rosbags (CDR).

A truncated MCAP file (a recording cut off by a crash or a full disk) has no summary, so the indexed readers
refuse it: its records are then read in file order until the first unreadable one, and `truncated` says where
reading stopped. Log times in nanoseconds.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence


@dataclass
class BagMessage:
    """One deserialised message: topic, type (e.g. sensor_msgs/msg/Image), log time (ns) and the message."""

    topic: str
    msgtype: str
    log_ns: int
    msg: object


class BagReader:
    """A bag (a rosbag2 folder, an episode folder of `eqa record` holding one as bag/, or an .mcap file): its
    topics (`topics`: name -> (type, message count; None when the file has no index)) and its
    messages in log-time order (file order for a truncated MCAP file)."""

    def __init__(self, path: str | Path) -> None:
        from eqa.bag.messages import typestore

        typestore()  # a clear ImportError without rosbags
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no bag at {self.path}")
        self.truncated: Optional[str] = None
        self._mcap_files: list[Path] = []
        self._any = None
        if self.path.is_dir() and not (self.path / "metadata.yaml").is_file() \
                and (self.path / "bag" / "metadata.yaml").is_file():
            self.path = self.path / "bag"  # an episode folder of `eqa record`
        if self.path.is_dir():
            if not (self.path / "metadata.yaml").is_file():
                mcaps = sorted(self.path.glob("*.mcap"))
                if not mcaps:
                    raise ValueError(f"{self.path} is not a rosbag2 folder: no metadata.yaml and no .mcap file")
                self._mcap_files = mcaps
            else:
                self._open_folder()
        elif self.path.suffix == ".mcap":
            self._mcap_files = [self.path]
        else:
            raise ValueError(f"{self.path}: give a rosbag2 folder (with metadata.yaml) or an .mcap file")
        if self._mcap_files:
            self.topics = self._mcap_topics()

    def _open_folder(self) -> None:
        from rosbags.highlevel import AnyReader, AnyReaderError

        try:
            reader = AnyReader([self.path])
            reader.open()
        except (AnyReaderError, ValueError, OSError) as err:
            mcaps = sorted(self.path.glob("*.mcap"))
            if not mcaps:
                raise ValueError(f"cannot read bag {self.path}: {err}") from err
            self._mcap_files = mcaps  # read record by record below (a truncated file has no index)
            return
        self._any = reader
        self.topics = {}
        for c in reader.connections:
            msgtype, count = self.topics.get(c.topic, (c.msgtype, 0))
            self.topics[c.topic] = (msgtype, count + c.msgcount)

    def close(self) -> None:
        if self._any is not None:
            self._any.close()
            self._any = None

    def __enter__(self) -> "BagReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def messages(self, topics: Optional[Sequence[str]] = None) -> Iterator[BagMessage]:
        """Messages of `topics` (None: all), deserialised, in log-time order."""
        wanted = set(topics) if topics is not None else None
        if self._any is not None:
            conns = [c for c in self._any.connections if wanted is None or c.topic in wanted]
            for conn, log_ns, raw in self._any.messages(connections=conns):
                yield BagMessage(conn.topic, conn.msgtype, log_ns, self._any.deserialize(raw, conn.msgtype))
            return
        for path in self._mcap_files:
            yield from self._mcap_messages(path, wanted)

    # -- MCAP files without rosbag2 metadata, or damaged ones -----------------------------------------------
    def _mcap_topics(self) -> dict[str, tuple[str, Optional[int]]]:
        topics: dict[str, tuple[str, Optional[int]]] = {}
        for path in self._mcap_files:
            summary = _mcap_summary(path)
            if summary is not None:
                for cid, ch in summary.channels.items():
                    count = summary.statistics.channel_message_counts.get(cid, 0) if summary.statistics else None
                    name = summary.schemas[ch.schema_id].name
                    prev = topics.get(ch.topic, (name, 0))[1]
                    topics[ch.topic] = (name, None if count is None or prev is None else prev + count)
                continue
            for schema, channel in _scan_channels(path):
                topics.setdefault(channel.topic, (schema.name, None))
        return topics

    def _mcap_messages(self, path: Path, wanted) -> Iterator[BagMessage]:
        from eqa.bag.messages import deserialize

        if _mcap_summary(path) is not None:
            from mcap.reader import make_reader

            with open(path, "rb") as f:
                for schema, channel, message in make_reader(f).iter_messages(
                        topics=list(wanted) if wanted is not None else None, log_time_order=True):
                    yield BagMessage(channel.topic, schema.name, message.log_time,
                                     _decode(deserialize, message.data, schema.name))
            return
        from mcap.exceptions import McapError
        from mcap.records import Channel, Message, Schema
        from mcap.stream_reader import StreamReader

        schemas: dict[int, str] = {}
        channels: dict[int, tuple[str, int]] = {}
        count, last_ns = 0, None
        with open(path, "rb") as f:
            try:
                for rec in StreamReader(f, skip_magic=False).records:
                    if isinstance(rec, Schema):
                        schemas[rec.id] = rec.name
                    elif isinstance(rec, Channel):
                        channels[rec.id] = (rec.topic, rec.schema_id)
                    elif isinstance(rec, Message) and rec.channel_id in channels:
                        topic, schema_id = channels[rec.channel_id]
                        if wanted is None or topic in wanted:
                            msgtype = schemas.get(schema_id, "")
                            count, last_ns = count + 1, rec.log_time
                            yield BagMessage(topic, msgtype, rec.log_time, _decode(deserialize, rec.data, msgtype))
            except (McapError, EOFError, ValueError, OSError, struct.error) as err:
                where = f"after log time {last_ns * 1e-9:.3f} s" if last_ns is not None else "before any message"
                self.truncated = (f"{path.name} is truncated or damaged ({type(err).__name__}: {err}): read "
                                  f"{count} messages, stopped at byte {f.tell()} of {path.stat().st_size}, {where}")


def _decode(deserialize, data: bytes, msgtype: str):
    try:
        return deserialize(data, msgtype)
    except KeyError:  # a type the ROS 2 Jazzy store does not know: the replay does not use it
        return None


def _mcap_summary(path: Path):
    """The MCAP file's summary (channels, schemas, statistics), None when it has none or the file is damaged."""
    from mcap.exceptions import McapError
    from mcap.reader import make_reader

    try:
        with open(path, "rb") as f:
            return make_reader(f).get_summary()
    except (McapError, EOFError, ValueError, OSError, struct.error):
        return None


def _scan_channels(path: Path):
    """(schema, channel) records of a file read in order, as far as it is readable."""
    from mcap.exceptions import McapError
    from mcap.records import Channel, Schema
    from mcap.stream_reader import StreamReader

    schemas = {}
    with open(path, "rb") as f:
        try:
            for rec in StreamReader(f, skip_magic=False).records:
                if isinstance(rec, Schema):
                    schemas[rec.id] = rec
                elif isinstance(rec, Channel) and rec.schema_id in schemas:
                    yield schemas[rec.schema_id], rec
        except (McapError, EOFError, ValueError, OSError, struct.error):
            return
