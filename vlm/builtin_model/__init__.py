"""The builtin VLM. Inference: the network (`model`), its input tensors (`tensors`), the vocabulary (`vocab`)
and the loaded runtime (`runtime`); none of them imports the simulator or the training code. Training and
evaluation on simulator data live in `training/` (`eqa train-vlm`). Requires torch; imported only by the
builtin backend and `eqa train-vlm`."""
