"""Package data: the builtin VLM weights file and its model card (see README.md for the contract)."""
