"""Navigation: frontier scoring and selection, goals, grid path planning, semantic candidate points."""
