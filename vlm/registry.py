"""VLM backends by name. A backend is one module, `vlm/backends/<name>.py`, that declares

    BACKEND = Backend(name="<name>", config_class=..., build=..., serve=...)

`VLMConfig` parses the backend's YAML section (`vlm.<name>`) into its config class and `vlm.make_vlm`
builds it; nothing else needs editing to add one. A backend module is imported only when its name is
used, so heavy dependencies (torch, transformers, open_clip) load with the backend that needs them.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable, Optional

PACKAGE = "vlm.backends"


@dataclass(frozen=True)
class Backend:
    """name: the `vlm.backend` value (and module name); config_class: its settings dataclass;
    build(settings, cache, visual_prompt) -> VLM; serve(settings) -> TokenScorer for `eqa serve-vlm`
    (None: the backend is not served, e.g. a remote client or a non-token model); writes_text: its VLMs answer
    open questions in free text (`VLM.answer_open`)."""

    name: str
    config_class: type
    build: Callable[[Any, Any, Any], Any]
    serve: Optional[Callable[[Any], Any]] = None
    writes_text: bool = False


def backend_names() -> list[str]:
    """Names of the backend modules in vlm/backends (sorted; not imported)."""
    package = importlib.import_module(PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def backend(name: str) -> Backend:
    """The Backend declared by vlm/backends/<name>.py; ValueError naming the known ones otherwise."""
    if name not in backend_names():
        raise ValueError(f"unknown VLM backend {name!r}; known: {', '.join(backend_names())}")
    declared = getattr(importlib.import_module(f"{PACKAGE}.{name}"), "BACKEND", None)
    if not isinstance(declared, Backend) or declared.name != name:
        raise ValueError(f"{PACKAGE}.{name} does not declare BACKEND = Backend(name={name!r}, ...)")
    return declared
