"""``graphrec-serve`` / ``python -m recsys.serving.cli``: run the bandit scoring service with uvicorn.

    graphrec-serve --params PARAMS_DIR --store sqlite:///PATH|redis://127.0.0.1:PORT \\
                   --host 127.0.0.1 --port N

The bearer token for writes comes from ``--token-file`` or the ``GRAPHREC_SERVE_TOKEN``
environment variable; without one the service refuses to start unless
``--allow-unauthenticated`` is given.  ``sqlite:///rel/path.db`` is relative to the working
directory, ``sqlite:////abs/path.db`` absolute (SQLAlchemy's convention).  ``--port 0`` binds an
ephemeral port; ``--port-file`` receives the bound port.  The fast stack (uvloop event loop,
httptools HTTP parser, orjson bodies, hiredis for Redis; all in ``requirements.txt``) is used when
importable; ``--http-stack plain`` forces asyncio + h11 (for comparison).

>>> cfg = parse_args(["--params", "p", "--store", "sqlite:///log.db", "--allow-unauthenticated"])
>>> cfg.port, cfg.store
(8000, 'sqlite:///log.db')
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from graphs.flags import arg, config_from
from graphs.flags import build_parser as flags_parser
from recsys.serving.service import ServiceConfig
from recsys.serving.store_base import EventStore

TOKEN_ENV = "GRAPHREC_SERVE_TOKEN"


@dataclass(frozen=True)
class ServeConfig:
    """Command-line configuration of the service process (its fields are the flags)."""

    params: str = arg(help="PARAMS_DIR with v=<n>/ and CURRENT")
    store: str = arg(help="sqlite:///PATH or redis://HOST:PORT[/DB]")
    host: str = arg("127.0.0.1", "address to bind")
    port: int = arg(8000, "0: an ephemeral port (see --port-file)")
    token_file: str | None = arg(None, f"file holding the bearer token (default: ${TOKEN_ENV})")
    allow_unauthenticated: bool = arg(False, "accept writes without a token")
    max_body_bytes: int = arg(ServiceConfig.max_body_bytes, "larger request bodies get 413")
    max_events: int = arg(ServiceConfig.max_events, "most events per feedback batch")
    snapshot_every: int = arg(ServiceConfig.snapshot_every, "events between snapshots (sqlite; 0: off)")
    port_file: str | None = arg(None, "write the bound port here once listening")
    log_level: str = arg("info", "logging level (debug, info, warning, ...)")
    http_stack: str = arg("auto", "auto: uvloop + httptools when installed; plain: asyncio + h11",
                          choices=("auto", "plain"))

    def __post_init__(self) -> None:
        if not (self.store.startswith("sqlite:///") or self.store.startswith(("redis://", "rediss://"))):
            raise ValueError(f"--store must be sqlite:///PATH or redis://HOST:PORT, got {self.store!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must be in [0, 65535], got {self.port}")
        if self.http_stack not in ("auto", "plain"):
            raise ValueError(f"--http-stack must be auto or plain, got {self.http_stack!r}")


def build_parser() -> argparse.ArgumentParser:
    return flags_parser(ServeConfig, "graphrec-serve", __doc__.split("\n\n")[0])


def parse_args(argv: list[str] | None = None) -> ServeConfig:
    return config_from(ServeConfig, build_parser().parse_args(argv))


def open_store(url: str) -> EventStore:
    """A store from its URL (``sqlite:///PATH`` or ``redis://HOST:PORT``)."""
    if url.startswith("sqlite:///"):
        from recsys.serving.store_sqlite import SqliteStore

        return SqliteStore(url[len("sqlite:///"):])
    from recsys.serving.store_redis import RedisStore

    return RedisStore(url)


def http_stack(choice: str = "auto") -> tuple[str, str]:
    """uvicorn ``(loop, http)``: uvloop/httptools when importable (``auto``), else asyncio/h11."""
    if choice == "plain":
        return "asyncio", "h11"
    has = lambda m: importlib.util.find_spec(m) is not None  # noqa: E731
    return ("uvloop" if has("uvloop") else "asyncio"), ("httptools" if has("httptools") else "h11")


def _token(cfg: ServeConfig) -> str | None:
    if cfg.token_file:
        tok = Path(cfg.token_file).read_text().strip()
    else:
        tok = os.environ.get(TOKEN_ENV, "").strip()
    if not tok and not cfg.allow_unauthenticated:
        raise SystemExit(f"graphrec-serve: no bearer token (set ${TOKEN_ENV} or --token-file), "
                         "or pass --allow-unauthenticated")
    return tok or None


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    sys.setswitchinterval(0.001)  # the SQLite writer thread must not hold the event loop up for 5 ms
    gc.set_threshold(50_000, 50, 100)  # fewer collections over the impression cache and dedup set (tail latency)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from recsys.bandits.params import current_version
    from recsys.serving.app import create_app

    if current_version(cfg.params) is None:
        raise SystemExit(f"graphrec-serve: {cfg.params}: no CURRENT parameter version (publish one first)")

    app = create_app(cfg.params, open_store(cfg.store),
                     ServiceConfig(token=_token(cfg), max_body_bytes=cfg.max_body_bytes, max_events=cfg.max_events,
                                   snapshot_every=cfg.snapshot_every))
    # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((cfg.host, cfg.port))
    port = sock.getsockname()[1]
    if cfg.port_file:
        tmp = Path(cfg.port_file).with_suffix(".tmp")
        tmp.write_text(str(port))
        os.replace(tmp, cfg.port_file)
    loop, http = http_stack(cfg.http_stack)
    server = uvicorn.Server(uvicorn.Config(
        app, loop=loop, http=http, log_level=cfg.log_level.lower(), access_log=False, lifespan="on",
        proxy_headers=False, timeout_graceful_shutdown=10))
    logging.getLogger(__name__).info("listening on %s:%d (loop %s, http %s)", cfg.host, port, loop, http)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(1)


if __name__ == "__main__":
    main()
