"""Conformal calibration of the VLM's answers (DESIGN.md section 3) and calibration files.

Per step t of an episode the VLM gives relevance R_t in [0, 1] and answer probabilities p_t(y).
- step score          s_t(y) = R_t * (p_t(y) - 1)            in [-1, 0]
- non-conformity      k_i    = 1 - min_t s_t(y_i)            in [1, 2] (y_i: the true answer)
- threshold           q      = the ceil((N + 1)(1 - eps))-th smallest k_i (inf when that index exceeds N)
- prediction set      C_t    = {y : 1 - s_t(y) <= q}
The agent keeps the running intersection of the C_t. For exchangeable calibration and test episodes,
P(true answer in the intersection over a whole episode) >= 1 - eps.

A calibration file carries a checksum over its fields, so an edited threshold (or any other field) is
detected on load.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

CALIBRATION_FORMAT = "eqa-conformal-v1"


class CalibrationError(ValueError):
    """A calibration file that is malformed or does not match the VLM / prompts / config in use."""


def step_scores(relevance: float, p_answer: Sequence[float]) -> np.ndarray:
    """s_t(y) = R_t * (p_t(y) - 1) for every choice y; in [-1, 0]."""
    r = float(relevance)
    p = np.asarray(p_answer, dtype=np.float64)
    tol = 1e-6  # floating-point overshoot of a softmax is clipped; anything else is an error
    if not (-tol <= r <= 1 + tol) or p.ndim != 1 or len(p) < 2 or not np.all((p >= -tol) & (p <= 1 + tol)):
        raise ValueError(f"need relevance in [0, 1] and >= 2 probabilities in [0, 1]; got {relevance}, {p_answer}")
    return min(max(r, 0.0), 1.0) * (np.clip(p, 0.0, 1.0) - 1.0)


def nonconformity(steps: Iterable[tuple[float, Sequence[float]]], truth: int) -> float:
    """k = 1 - min_t s_t(truth) over an episode's (relevance, p_answer) steps."""
    scores = [step_scores(r, p)[truth] for r, p in steps]
    if not scores:
        raise ValueError("an episode without VLM steps has no non-conformity score")
    return 1.0 - float(min(scores))


def quantile_rank(n: int, eps: float) -> int:
    """ceil((n + 1)(1 - eps)): the 1-based rank of the threshold among n sorted scores (> n: infinite)."""
    return math.ceil((n + 1) * (1.0 - eps) - 1e-12)


def conformal_threshold(scores: Sequence[float], eps: float) -> float:
    """The ceil((N + 1)(1 - eps))-th smallest score (1-based), or inf when that index exceeds N
    (too few calibration episodes for this eps: no set ever shrinks). Ties keep their multiplicity."""
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    s = np.sort(np.asarray(scores, dtype=np.float64))
    if not np.all(np.isfinite(s)):
        raise ValueError("non-conformity scores must be finite")
    rank = quantile_rank(len(s), eps)
    return math.inf if rank > len(s) else float(s[rank - 1])


def prediction_set(relevance: float, p_answer: Sequence[float], threshold: float) -> frozenset[int]:
    """C_t = {y : 1 - s_t(y) <= q}."""
    return frozenset(int(i) for i in np.nonzero(1.0 - step_scores(relevance, p_answer) <= threshold)[0])


class RunningIntersection:
    """The intersection of the prediction sets seen so far (starts as every choice)."""

    def __init__(self, n_choices: int, threshold: float):
        if n_choices < 2:
            raise ValueError(f"need >= 2 choices, got {n_choices}")
        self.n_choices = n_choices
        self.threshold = threshold
        self.members = frozenset(range(n_choices))

    def update(self, relevance: float, p_answer: Sequence[float]) -> frozenset[int]:
        """Intersect with this step's set; returns the step's own set."""
        if len(p_answer) != self.n_choices:
            raise ValueError(f"expected {self.n_choices} probabilities, got {len(p_answer)}")
        step_set = prediction_set(relevance, p_answer, self.threshold)
        self.members = self.members & step_set
        return step_set


def min_episodes(eps: float) -> int:
    """The fewest calibration episodes that give a finite threshold at eps."""
    n = 1
    while quantile_rank(n, eps) > n:
        n += 1
    return n


def config_hash(config: dict) -> str:
    """Short stable hash of a JSON-able config (sorted keys)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class Calibration:
    """A conformal threshold and what it is valid for. threshold is inf when N was too small for eps."""

    eps: float
    n: int
    threshold: float
    vlm_id: str
    prompt_version: str
    config_hash: str
    method: str = ""
    source: str = ""
    created: str = ""
    camera: str = ""  # the camera of the calibration episodes, as the driver describes it ('' = not recorded)
    format: str = CALIBRATION_FORMAT

    def check(self, vlm_id: str, prompt_version: str, cfg_hash: Optional[str] = None,
              eps: Optional[float] = None, camera: Optional[str] = None) -> None:
        """Raise CalibrationError unless this calibration was made with this VLM, prompts, config, eps and
        camera (checked when both name one)."""
        problems = []
        if camera and self.camera and camera != self.camera:
            problems.append(f"camera {camera} (calibrated with camera {self.camera})")
        if eps is not None and not math.isclose(eps, self.eps):
            problems.append(f"eps {eps:g} (calibrated for eps {self.eps:g})")
        if vlm_id != self.vlm_id:
            problems.append(f"VLM {vlm_id!r} (calibrated with {self.vlm_id!r})")
        if prompt_version != self.prompt_version:
            problems.append(f"prompt version {prompt_version!r} (calibrated with {self.prompt_version!r})")
        if cfg_hash is not None and cfg_hash != self.config_hash:
            problems.append(f"method config hash {cfg_hash} (calibrated with {self.config_hash})")
        if problems:
            raise CalibrationError("calibration does not match: " + "; ".join(problems)
                                   + ". Re-run `eqa calibrate` on episodes of this VLM and method.")

    @property
    def never_stops(self) -> bool:
        """Whether the threshold is infinite: no prediction set ever shrinks, so the calibration cannot stop an
        episode early."""
        return math.isinf(self.threshold)

    def describe_infinite(self) -> str:
        """Why an infinite threshold cannot stop early, in one line."""
        return (f"this calibration can never stop early: N = {self.n} calibration episodes are too few for eps "
                f"{self.eps:g} (it needs at least {min_episodes(self.eps)})")

    def to_json(self) -> dict:
        d = asdict(self)
        d["threshold"] = None if math.isinf(self.threshold) else self.threshold  # JSON has no inf
        d["checksum"] = _checksum(d)
        return d

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        """A calibration file, checked: its format, fields and their types, and its checksum; CalibrationError
        naming the problem."""
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CalibrationError(f"{path}: cannot read calibration file ({e})") from e
        if not isinstance(d, dict) or d.get("format") != CALIBRATION_FORMAT:
            raise CalibrationError(f"{path}: not a calibration file (format {CALIBRATION_FORMAT!r} expected)")
        missing = [k for k in ("eps", "n", "threshold", "vlm_id", "prompt_version", "config_hash", "checksum")
                   if k not in d]
        if missing:
            raise CalibrationError(f"{path}: missing fields {missing}" + (
                " (written before calibration files had checksums: run `eqa calibrate` again)"
                if missing == ["checksum"] else ""))
        if d["checksum"] != _checksum(d):
            raise CalibrationError(f"{path}: checksum mismatch: the file was changed after `eqa calibrate` wrote it")
        number, text = ((int, float), "a number"), ((str,), "a string")
        types = {"eps": number, "n": ((int,), "an integer"),
                 "threshold": ((int, float, type(None)), "a number or null"),
                 "vlm_id": text, "prompt_version": text, "config_hash": text, "method": text, "source": text,
                 "created": text, "camera": text}
        for key, (kinds, expected) in types.items():
            if key in d and (not isinstance(d[key], kinds) or isinstance(d[key], bool)):
                raise CalibrationError(f"{path}: field {key!r} must be {expected}, got {type(d[key]).__name__} "
                                       f"{d[key]!r}")
        thr = math.inf if d["threshold"] is None else float(d["threshold"])
        if not (0 < float(d["eps"]) < 1) or int(d["n"]) < 0 or not (thr >= 1.0):
            raise CalibrationError(f"{path}: invalid eps / n / threshold ({d['eps']}, {d['n']}, {d['threshold']})")
        if math.isfinite(thr) and quantile_rank(int(d["n"]), float(d["eps"])) > int(d["n"]):
            raise CalibrationError(f"{path}: a finite threshold needs more than N = {d['n']} episodes at eps "
                                   f"{d['eps']}")
        known = set(cls.__dataclass_fields__)
        return cls(**{**{k: v for k, v in d.items() if k in known}, "threshold": thr, "eps": float(d["eps"]),
                      "n": int(d["n"])})


def _checksum(fields: dict) -> str:
    """sha256 (16 hex digits) of a calibration file's fields other than the checksum (canonical JSON)."""
    blob = json.dumps({k: v for k, v in fields.items() if k != "checksum"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def calibrate(scores: Sequence[float], eps: float, vlm_id: str, prompt_version: str, cfg_hash: str,
              method: str = "", source: str = "", camera: str = "") -> Calibration:
    """A Calibration from the calibration episodes' non-conformity scores (camera: how the episodes' driver
    describes its camera)."""
    return Calibration(eps=float(eps), n=len(scores), threshold=conformal_threshold(scores, eps), vlm_id=vlm_id,
                       prompt_version=prompt_version, config_hash=cfg_hash, method=method, source=source,
                       created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), camera=camera)
