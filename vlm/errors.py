"""Exceptions raised by VLM backends (all subclass VLMError except missing files)."""
from __future__ import annotations


class VLMError(RuntimeError):
    """A VLM backend failed to produce probabilities."""


class VLMConnectionError(VLMError):
    """The VLM server could not be reached (down, refused, timed out) after bounded retries."""


class VLMResponseError(VLMError):
    """The VLM server answered, but with an error status or a malformed / log-probability-free body."""


class WeightsNotFoundError(FileNotFoundError):
    """A backend's weights file is missing; the message names the file."""
