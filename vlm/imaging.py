"""Image checks, content hashes and PNG data URLs (lossless, so server round trips are exact)."""
from __future__ import annotations

import base64
import binascii
import hashlib
import io

import numpy as np


def check_image(image: np.ndarray) -> np.ndarray:
    """Return image as a contiguous RGB uint8 HxWx3 array or raise ValueError."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 HxWx3, got {arr.dtype} {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"image must be non-empty, got {arr.shape}")
    return np.ascontiguousarray(arr)


def image_hash(image: np.ndarray) -> str:
    """sha256 hex of the image shape and pixel bytes."""
    arr = check_image(image)
    h = hashlib.sha256(f"{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def to_png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(check_image(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def to_data_url(image: np.ndarray) -> str:
    """data:image/png;base64,... URL of the image."""
    return "data:image/png;base64," + base64.b64encode(to_png_bytes(image)).decode("ascii")


def open_data_url(url: str):
    """The PIL image of a data:image/...;base64 URL, opened lazily (its size is known, its pixels not yet
    decoded); ValueError on anything else."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(url, str) or not url.startswith("data:"):
        raise ValueError("only data: URLs with base64 images are supported (the server fetches nothing)")
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64") or not header[5:].startswith("image/"):
        raise ValueError("image data URL must look like data:image/<type>;base64,<data>")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("image data URL is not valid base64") from None
    try:
        return Image.open(io.BytesIO(raw))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"image data URL does not decode to an image ({type(err).__name__})") from None


def decode_image(img, max_pixels: int = 50_000_000) -> np.ndarray:
    """RGB uint8 pixels of an opened PIL image of at most max_pixels; ValueError otherwise."""
    from PIL import Image

    if img.width * img.height > max_pixels:
        raise ValueError(f"image of {img.width}x{img.height} px exceeds {max_pixels} pixels")
    try:
        with img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"image data URL does not decode to an image ({type(err).__name__})") from None


def from_data_url(url: str, max_pixels: int = 50_000_000) -> np.ndarray:
    """Decode a data:image/...;base64 URL of at most max_pixels to RGB uint8; ValueError on anything else."""
    return decode_image(open_data_url(url), max_pixels)
