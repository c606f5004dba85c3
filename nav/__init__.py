"""Navigation: frontier scoring and selection, goals, grid path planning, stop policies."""
