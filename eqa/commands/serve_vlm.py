"""`eqa serve-vlm`: serve a local VLM backend (hf, builtin) as an OpenAI-compatible server with logprobs."""
from __future__ import annotations

import argparse
import sys

import yaml

from eqa.config import apply_overrides, find_config, from_dict


def register(subparsers) -> None:
    p = subparsers.add_parser("serve-vlm", help="serve a local VLM over an OpenAI-compatible API with logprobs",
                              description=__doc__)
    p.add_argument("--config", help="YAML file: a VLM config, or a config with a `vlm:` section")
    p.add_argument("--backend", help="override vlm.backend (a backend that serves tokens: hf, builtin)")
    p.add_argument("--model-path", help="override hf.model_path (a local checkpoint directory)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    p.add_argument("--model-name", help="served model id (default: the backend's model id)")
    p.add_argument("--max-top-logprobs", type=int, default=20, help="largest top_logprobs accepted")
    p.add_argument("--max-batch-size", type=int, default=8, help="requests scored together")
    p.add_argument("--api-key-env", help="NAME of an environment variable holding the key clients must send")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. hf.device=cuda")
    p.set_defaults(func=run)


def load_vlm_config(args: argparse.Namespace):
    """VLMConfig from --config, flags and KEY=VALUE overrides."""
    from vlm.config import VLMConfig

    data: dict = {}
    if args.config:
        with open(find_config(args.config)) as f:
            data = yaml.safe_load(f) or {}
        if isinstance(data.get("vlm"), dict):
            data = data["vlm"]
    overrides = list(args.overrides)
    if args.backend:
        overrides.append(f"backend={args.backend}")
    if args.model_path:
        overrides.append(f"hf.model_path={args.model_path}")
    apply_overrides(data, overrides)
    return from_dict(VLMConfig, data, "vlm")


def build_server(args: argparse.Namespace):
    """The (not yet started) VLMServer described by the arguments."""
    from vlm.registry import backend
    from vlm.server import ServerConfig, VLMServer

    config = load_vlm_config(args)
    serve = backend(config.backend).serve
    if serve is None:
        raise ValueError(f"serve-vlm serves a local token-scoring backend, not {config.backend!r} (a backend module "
                         "declares what it serves: vlm/backends/<name>.py, Backend.serve)")
    server_config = ServerConfig(host=args.host, port=args.port, model_name=args.model_name,
                                 max_top_logprobs=args.max_top_logprobs, max_batch_size=args.max_batch_size,
                                 api_key_env=args.api_key_env)
    return VLMServer(serve(config.settings), server_config)


def run(args: argparse.Namespace) -> int:
    server = build_server(args)
    print(f"eqa serve-vlm: serving {server.model_name!r} at {server.base_url} (Ctrl-C to stop)", file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("eqa serve-vlm: stopped", file=sys.stderr)
    return 0
