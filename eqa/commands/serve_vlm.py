"""`eqa serve-vlm`: serve a local VLM backend (hf, builtin) as an OpenAI-compatible server with logprobs."""
from __future__ import annotations

import argparse
import errno
import sys

from eqa.config import apply_overrides, find_config, from_dict, parse_yaml


def register(subparsers) -> None:
    p = subparsers.add_parser("serve-vlm", help="serve a local VLM over an OpenAI-compatible API with logprobs",
                              description=__doc__ + " Server settings (vlm.server.ServerConfig: limits on "
                              "connections, images and bodies) come from the config's `server:` section and "
                              "server.KEY=VALUE overrides; the flags below win over both.")
    p.add_argument("--config", help="YAML file: a VLM config, or a config with `vlm:` and `server:` sections")
    p.add_argument("--backend", help="override vlm.backend (a backend that serves tokens: hf, builtin)")
    p.add_argument("--model-path", help="override hf.model_path (a local checkpoint directory)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000; 0: any free port)")
    p.add_argument("--model-name", help="served model id (default: the backend's model id)")
    p.add_argument("--max-top-logprobs", type=int, help="largest top_logprobs accepted (default 20)")
    p.add_argument("--max-batch-size", type=int, help="requests scored together (default 8)")
    p.add_argument("--api-key-env", help="NAME of an environment variable holding the key clients must send")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. hf.device=cuda or server.read_timeout_s=10")
    p.set_defaults(func=run)


def _config_file(args: argparse.Namespace) -> tuple[dict, dict]:
    """The (vlm, server) sections of --config (empty without one)."""
    if not args.config:
        return {}, {}
    found = find_config(args.config)
    data = parse_yaml(found.read_bytes(), str(found)) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{found}: a VLM config must be a mapping")
    server = data.pop("server", None) or {}
    if not isinstance(server, dict):
        raise ValueError(f"{found}: `server:` must be a mapping")
    return (data["vlm"] if isinstance(data.get("vlm"), dict) else data), server


def load_configs(args: argparse.Namespace):
    """(VLMConfig, ServerConfig) from --config, KEY=VALUE overrides and flags, in that order."""
    from vlm.config import VLMConfig
    from vlm.server import ServerConfig

    vlm_data, server_data = _config_file(args)
    vlm_overrides = [o for o in args.overrides if not o.startswith("server.")]
    server_overrides = [o[len("server."):] for o in args.overrides if o.startswith("server.")]
    if args.backend:
        vlm_overrides.append(f"backend={args.backend}")
    if args.model_path:
        vlm_overrides.append(f"hf.model_path={args.model_path}")
    apply_overrides(vlm_data, vlm_overrides)
    apply_overrides(server_data, server_overrides)
    flags = {"host": args.host, "port": args.port, "model_name": args.model_name,
             "max_top_logprobs": args.max_top_logprobs, "max_batch_size": args.max_batch_size,
             "api_key_env": args.api_key_env}
    server_data.update({k: v for k, v in flags.items() if v is not None})
    return from_dict(VLMConfig, vlm_data, "vlm"), from_dict(ServerConfig, server_data, "server")


def build_server(args: argparse.Namespace):
    """The (not yet started) VLMServer described by the arguments."""
    from vlm.registry import backend
    from vlm.server import VLMServer

    config, server_config = load_configs(args)
    serve = backend(config.backend).serve
    if serve is None:
        raise ValueError(f"serve-vlm serves a local token-scoring backend, not {config.backend!r} (a backend module "
                         "declares what it serves: vlm/backends/<name>.py, Backend.serve)")
    scorer = serve(config.settings)
    try:
        return VLMServer(scorer, server_config)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise ValueError(f"port {server_config.port} on {server_config.host} is already in use; choose another "
                             "--port") from None
        raise


def run(args: argparse.Namespace) -> int:
    server = build_server(args)
    print(f"eqa serve-vlm: serving {server.model_name!r} at {server.base_url} (Ctrl-C to stop)", file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("eqa serve-vlm: stopped", file=sys.stderr)
    return 0
