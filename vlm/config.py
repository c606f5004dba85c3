"""The typed VLM config: which backend, its settings, visual prompting and the response cache.
Each backend's settings class lives in its own module (vlm/backends/<name>.py, see vlm.registry)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from vlm.registry import backend, backend_names
from vlm.visual_prompt import VisualPromptConfig


@dataclass
class VLMConfig:
    """backend: a backend name (vlm/backends/<name>.py). sections: settings per backend name, each an instance
    of that backend's config class; in YAML a section named after its backend (`hf: {model_path: ...}`). The
    selected backend's section gets its defaults when absent. cache_dir: response cache directory (None: off)."""

    backend: str = "builtin"
    visual_prompt: VisualPromptConfig = field(default_factory=VisualPromptConfig)
    cache_dir: Optional[str] = None
    sections: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in {self.backend, *self.sections}:
            config_class = backend(name).config_class
            if name not in self.sections:
                self.sections[name] = config_class()
            elif not isinstance(self.sections[name], config_class):
                raise ValueError(f"vlm.{name} must be a {config_class.__name__}, got "
                                 f"{type(self.sections[name]).__name__}")

    @property
    def settings(self) -> Any:
        """The selected backend's settings."""
        return self.sections[self.backend]

    @staticmethod
    def section_class(name: str) -> Optional[type]:
        """The settings class of backend `name` (a YAML section of the vlm config), None for other names."""
        return backend(name).config_class if name in backend_names() else None
