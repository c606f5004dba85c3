"""Texture images from bytes: PNG/JPEG (Pillow) and Basis Universal (KTX2 or .basis, as HM3D's `*.basis.glb`
embed them) transcoded to RGBA8 with `opengl_basisu` (the `mesh` extra)."""
from __future__ import annotations

import io

import numpy as np

KTX2_MAGIC = b"\xabKTX 20\xbb\r\n\x1a\n"
BASIS_MAGIC = b"sB"


def is_basis(data: bytes) -> bool:
    """Whether `data` is a KTX2 file or a .basis file (Basis Universal payloads)."""
    return data[:12] == KTX2_MAGIC or data[:2] == BASIS_MAGIC


def decode_image(data: bytes, where: str) -> np.ndarray:
    """HxWx3 uint8 of an encoded image (alpha dropped); ValueError naming `where` when it cannot be decoded."""
    if is_basis(data):
        return _decode_basis(data, where)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"{where}: cannot decode the image ({len(data)} bytes): {err}") from None


def _decode_basis(data: bytes, where: str) -> np.ndarray:
    try:
        import opengl_basisu
    except ImportError:
        raise ImportError(f"{where} is a Basis Universal texture: install the mesh extra "
                          "(pip install 'confident_eqa[mesh]') to decode it") from None
    try:
        texture = opengl_basisu.Texture(bytes(data))
        rgba = np.asarray(texture.transcode(opengl_basisu.Target.RGBA8).data, dtype=np.uint8)
    except opengl_basisu.BasisuError as err:
        raise ValueError(f"{where}: cannot transcode the Basis Universal texture: {err}") from None
    rgb = rgba.reshape(texture.height, texture.width, 4)[..., :3]
    return np.ascontiguousarray(rgb[::-1] if texture.y_flipped else rgb)
