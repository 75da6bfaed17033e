"""`python -m local [serve] [--port N] [--host H] [--backend-port N] [--backend-host H]` runs the stack;
`python -m local token --org ORG --scope "..."` prints a dev JWT for the local secret;
`python -m local openapi [--check]` writes docs/openapi.json."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType

from local.devtokens import ALL_SCOPES, mint_dev_jwt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local", description="Hangar on one machine, without Docker.")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="serve the API (the default command)")
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or 3000),
        help="port of the API (default $PORT or 3000; 0 picks a free port)",
    )
    serve.add_argument(
        "--host",
        default=os.environ.get("HANGAR_LOCAL_HOST") or "127.0.0.1",
        help="address of the API (default $HANGAR_LOCAL_HOST or 127.0.0.1; 0.0.0.0 for every interface)",
    )
    serve.add_argument(
        "--backend-host",
        default=os.environ.get("HANGAR_BACKEND_HOST") or "127.0.0.1",
        help="address of the embedded AWS backend (default $HANGAR_BACKEND_HOST or 127.0.0.1)",
    )
    serve.add_argument(
        "--backend-port",
        type=int,
        default=int(os.environ.get("HANGAR_BACKEND_PORT") or 8000),
        help="port of the embedded AWS backend, DynamoDB included (default $HANGAR_BACKEND_PORT or 8000; 0: free)",
    )
    serve.add_argument("--template", default=None, help="template file (default: the repository's template.yaml)")
    serve.add_argument("--no-schedules", action="store_true", help="do not run schedules on a timer")
    serve.add_argument("--quiet", action="store_true", help="no access log line per request")

    token = commands.add_parser("token", help="print a dev JWT signed with the local secret")
    token.add_argument("--org", default="demo", help="tenant (the `org` claim); default demo")
    token.add_argument("--scope", default=" ".join(ALL_SCOPES), help="space-separated scopes (default: every scope)")
    token.add_argument("--sub", default=None, help="subject (default dev@ORG)")
    token.add_argument("--ttl", type=int, default=86400, help="seconds until it expires (default 86400)")
    receiver = commands.add_parser("receiver", help="receive webhooks on 127.0.0.1 and print them")
    receiver.add_argument("--port", type=int, default=9000, help="port to listen on (default 9000)")
    receiver.add_argument("--secret", default=None, help="the webhook's whsec_ secret: check each signature")
    openapi = commands.add_parser("openapi", help="write docs/openapi.json from the handlers")
    openapi.add_argument("--check", action="store_true", help="exit 1 if docs/openapi.json is out of date")
    backend = commands.add_parser("backend", help="(internal) the embedded AWS backend, on an inherited socket")
    backend.add_argument("--fd", type=int, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, "serve")
    args = _parser().parse_args(args_list)
    if args.command == "token":
        print(mint_dev_jwt(args.org, args.scope, sub=args.sub, ttl=args.ttl))
        return 0

    if args.command == "receiver":
        from local.receiver import serve as receive

        return receive(args.port, args.secret)

    if args.command == "openapi":
        from local.openapi import OPENAPI_FILE, drift, write_openapi

        if args.check:
            stale = drift()
            print(f"{OPENAPI_FILE} is {'out of date: run python -m local openapi' if stale else 'up to date'}")
            return 1 if stale else 0
        print(f"wrote {write_openapi()}")
        return 0

    if args.command == "backend":
        from local.backend import run_child

        return run_child(args.fd)

    # Stopped while still starting up: exit quietly as well (serve() installs its own handlers).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from local.server import Options, serve
        from local.template import NotSupportedLocally

        options = Options(
            port=args.port,
            host=args.host,
            backend_host=args.backend_host,
            backend_port=args.backend_port,
            template_file=args.template,
            run_schedules=not args.no_schedules,
            access_log=not args.quiet,
        )
        return serve(options)
    except KeyboardInterrupt:
        return 0
    except (OSError, ValueError, NotSupportedLocally) as error:
        print(f"local: cannot start: {error}", file=sys.stderr)
        return 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
