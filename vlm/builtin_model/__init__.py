"""The builtin VLM: network (`model`), vocabulary (`vocab`), simulator training data (`data`), training and
evaluation (`train`) and the loaded runtime (`runtime`). Requires torch; imported only by the builtin backend
and `eqa train-vlm`."""
