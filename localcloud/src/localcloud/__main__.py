"""``localcloud serve [--host 127.0.0.1] [--port 4566] [--data-dir .localcloud]`` (or ``python -m localcloud serve``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from localcloud.core import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, credentials_from_env


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcloud", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the endpoint until SIGTERM/SIGINT")
    serve.add_argument("--host", default=DEFAULT_HOST, help="loopback address to bind (default %(default)s)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s)")
    serve.add_argument("--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR), help="state (default %(default)s)")
    serve.add_argument("--log-level", default="INFO")
    serve.add_argument(
        "--services",
        default=os.environ.get("LOCALCLOUD_SERVICES", ""),
        help="comma-separated subset of services to serve (default: all; env LOCALCLOUD_SERVICES)",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # SIGTERM (make down, kill -- -PGID) must unwind like Ctrl-C so SQLite closes cleanly.
    signal.signal(signal.SIGTERM, _interrupt)
    from localcloud.server import serve as run

    try:
        services = [s.strip() for s in args.services.split(",") if s.strip()] or None
        run(args.host, args.port, args.data_dir, credentials_from_env(), services)
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError) as exc:
        print(f"localcloud: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
