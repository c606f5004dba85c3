"""Training of the builtin VLM (`eqa train-vlm`): views and labels generated in the built-in simulator
(`data`), the training loop and checkpoints (`train`), held-out evaluation (`evaluate`). Not on the
inference path: the runtime imports nothing from here."""
