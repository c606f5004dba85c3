"""Grid path planning: A* against brute-force shortest paths, distance fields, path truncation."""
import math

import numpy as np
import pytest
from scipy.sparse import lil_matrix
from scipy.sparse.csgraph import dijkstra

from nav.planning import astar, distance_field, path_length, truncate_path


def brute_force(nav: np.ndarray, start, goal) -> float:
    """Shortest 8-connected path (octile costs, no corner cutting) with scipy's Dijkstra."""
    h, w = nav.shape
    graph = lil_matrix((h * w, h * w))
    for r in range(h):
        for c in range(w):
            if not nav[r, c]:
                continue
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    nr, nc = r + dr, c + dc
                    if (dr or dc) and 0 <= nr < h and 0 <= nc < w and nav[nr, nc]:
                        if dr and dc and not (nav[r + dr, c] and nav[r, c + dc]):
                            continue
                        graph[r * w + c, nr * w + nc] = math.sqrt(2) if dr and dc else 1.0
    d = dijkstra(graph.tocsr(), indices=start[0] * w + start[1])
    return float(d[goal[0] * w + goal[1]])


@pytest.mark.parametrize("seed", range(12))
def test_astar_matches_brute_force_on_random_grids(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(5, 16, size=2)
    nav = rng.uniform(size=(h, w)) > rng.uniform(0.1, 0.4)
    free = np.argwhere(nav)
    start, goal = free[rng.integers(len(free))], free[rng.integers(len(free))]
    expected = brute_force(nav, start, goal)
    cost, cells = astar(nav, start, goal)
    if math.isinf(expected):
        assert math.isinf(cost) and cells is None
        return
    assert cost == pytest.approx(expected)
    assert tuple(cells[0]) == tuple(start) and tuple(cells[-1]) == tuple(goal)
    assert path_length(cells) == pytest.approx(cost)
    assert nav[cells[:, 0], cells[:, 1]].all()
    steps = np.abs(np.diff(cells, axis=0))
    assert steps.max() <= 1
    field = distance_field(nav, start)
    assert field[goal[0], goal[1]] == pytest.approx(expected)


def test_no_corner_cutting_and_blocked_endpoints():
    nav = np.array([[1, 0], [0, 1]], dtype=bool)
    assert astar(nav, (0, 0), (1, 1)) == (math.inf, None)
    nav = np.ones((3, 3), dtype=bool)
    nav[1, 1] = False
    assert astar(nav, (0, 0), (1, 1)) == (math.inf, None)
    cost, _ = astar(nav, (0, 0), (2, 2))
    assert cost == pytest.approx(4.0)  # around the blocked centre, no diagonal through it
    with pytest.raises(ValueError, match="outside"):
        astar(nav, (0, 0), (5, 5))


def test_large_open_grid_is_octile_distance():
    nav = np.ones((300, 400), dtype=bool)
    cost, cells = astar(nav, (10, 10), (250, 390))
    assert cost == pytest.approx(380 - 240 + 240 * math.sqrt(2))
    field = distance_field(nav, (0, 0))
    assert field[299, 399] == pytest.approx(100 + 299 * math.sqrt(2))


def test_truncate_path():
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    out = truncate_path(pts, 2.0)
    assert out[-1] == pytest.approx([1.0, 1.0])
    assert np.allclose(truncate_path(pts, 5.0), pts)
