"""Built-in procedural house simulator (`env.SimEnv`), question generation with ground-truth labels, and
Habitat's y-up frame convention (`habitat_frame`)."""
