"""VLM backends, one module each (`vlm/backends/<name>.py` declares `BACKEND`; see vlm.registry). Heavy
dependencies (torch, transformers, open_clip) load only with the backend module that needs them."""
