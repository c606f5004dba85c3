"""Small hand-built scenes with known geometry, for tests and examples."""
from __future__ import annotations

from sim.catalog import build_parts
from sim.scene import STRUCTURE_ID_BASE, Room, Scene, SceneObject, Wall


def room_scene(width: float = 4.0, depth: float = 3.0, door: bool = False, table: bool = False,
               thickness: float = 0.1, height: float = 2.5, door_width: float = 1.0) -> Scene:
    """One closed room with interior floor `width` x `depth` m centred at the origin (floor z = 0).

    door: a `door_width` opening in the middle of the +x wall into a 3 m deep second room (a hallway).
    table: a 0.9 x 1.4 x 0.75 m table (top and four legs) at the room centre.
    """
    hw, hd, ht = width / 2.0, depth / 2.0, thickness / 2.0
    rooms = [Room(0, "living room", [(-hw, -hd), (hw, -hd), (hw, hd), (-hw, hd)], STRUCTURE_ID_BASE, STRUCTURE_ID_BASE + 1)]
    xw, yw = hw + ht, hd + ht  # wall centre lines
    far = xw + 3.0 + thickness  # far wall of the second room
    walls = [
        Wall(STRUCTURE_ID_BASE + 1000, (-xw, -yw), (-xw, yw), thickness, height),
        Wall(STRUCTURE_ID_BASE + 1001, (-xw, -yw), (xw if not door else far, -yw), thickness, height),
        Wall(STRUCTURE_ID_BASE + 1002, (-xw, yw), (xw if not door else far, yw), thickness, height),
        Wall(STRUCTURE_ID_BASE + 1003, (xw, -yw), (xw, yw), thickness, height,
             openings=[(yw - door_width / 2, yw + door_width / 2)] if door else []),
    ]
    if door:
        walls.append(Wall(STRUCTURE_ID_BASE + 1004, (far, -yw), (far, yw), thickness, height))
        rooms.append(Room(1, "hallway", [(xw + ht, -hd), (far - ht, -hd), (far - ht, hd), (xw + ht, hd)],
                          STRUCTURE_ID_BASE + 2, STRUCTURE_ID_BASE + 3))
    objects = []
    if table:
        size = (0.9, 1.4, 0.75)
        obj = SceneObject(instance_id=1, category="dining table", room_id=0, position=(0.0, 0.0, 0.0), yaw=0.0,
                          size=size, color="brown", parts=build_parts("dining table", size, "brown", None))
        obj.update_bbox()
        objects.append(obj)
    return Scene(seed=-1, rooms=rooms, walls=walls, objects=objects, wall_height=height)
