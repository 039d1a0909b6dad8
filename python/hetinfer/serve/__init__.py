"""hetinfer.serve: an OpenAI-compatible HTTP server (``python -m hetinfer.serve --help``)."""

from __future__ import annotations

import sys

from .app import create_app
from .metrics import ServerMetrics
from .options import ServerOptions, parse_options
from .registry import Registry

__all__ = ["build_app", "create_app", "main", "parse_options"]


def build_app(options: ServerOptions):
    """The ASGI app for options; models start loading when the app starts."""
    from ..cli import default_model_path

    if options.threads is not None:
        from .. import quants
        quants.set_num_threads(options.threads)
    paths = [m.path or default_model_path() for m in options.models]
    metrics = ServerMetrics()
    return create_app(Registry(options, paths, metrics), metrics, options.api_keys)


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_options(argv)
        app = build_app(options)
    except ValueError as e:
        print(f"hetinfer.serve: error: {e}", file=sys.stderr)
        return 2
    import uvicorn

    print(f"hetinfer: serving on http://{options.host}:{options.port}/v1 (models load in the background; "
          f"GET /health says when they are ready)", file=sys.stderr)
    uvicorn.run(app, host=options.host, port=options.port, log_level="info")
    return 0
