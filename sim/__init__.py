"""Built-in procedural house simulator, Habitat adapter, question generation."""
