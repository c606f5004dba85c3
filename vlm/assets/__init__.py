"""Package data for vlm/: the label font (DejaVu Sans Bold, Bitstream Vera license)."""
