"""`sam local` against `make run`'s embedded backend, on Docker Engine for Linux.

python -m tools.sam_local serve [--template T] [--port 3001] [--api-port 3000] [-- SAM OPTIONS]
    (what `make sam-local` runs after `make build`) starts `python -m local serve` with its
    embedded backend bound where containers reach it: the docker bridge's gateway address (not
    0.0.0.0, which would open it to the network), on HANGAR_BACKEND_PORT (default 8000). Then
    `sam local start-api` with samconfig.toml's local settings (JWT parameters, env-vars file,
    `--add-host host.docker.internal:host-gateway`), dummy AWS credentials (SAM hands the shell's
    credentials to the functions) and warm containers. Ctrl-C stops both.
python -m tools.sam_local x86-template OUT
    writes an x86_64 copy of template.yaml (code paths made absolute) for a machine that would
    otherwise run the arm64 functions under emulation.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
SAMCONFIG = ROOT / "samconfig.toml"
ENV_VARS_FILE = ROOT / "local" / "sam-env.json"
DEFAULT_SAM = ROOT / ".tools" / "sam" / "bin" / "sam"
DEFAULT_BACKEND_PORT = 8000
CONTAINER_HOST_NAME = "host.docker.internal"
"""How the functions name the machine that runs the backend (samconfig.toml maps it to the host gateway)."""

SAM_READY_RE = re.compile(r"Running on (http://\S+)")  # sam local start-api's ready line
LOCAL_READY_RE = re.compile(r"Hangar local API ready on (http://\S+)")

# --- where containers reach the host ---------------------------------------------------------------


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def docker_bridge_gateway(docker_host: str | None = None) -> str:
    """The default bridge network's gateway: the host's address on it (what `host-gateway` names)."""
    host = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        raise SystemExit(
            f"tools.sam_local: cannot ask {host} for the bridge address; set HANGAR_BACKEND_HOST to an"
            " address of this machine that containers reach"
        )
    connection = _UnixHTTPConnection(host.removeprefix("unix://"))
    try:
        connection.request("GET", "/networks/bridge")
        response = connection.getresponse()
        network = json.loads(response.read())
    except OSError as error:
        raise SystemExit(f"tools.sam_local: Docker is not reachable at {host}: {error}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise SystemExit(f"tools.sam_local: Docker answered {response.status} for the bridge network")
    for config in (network.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
    # Docker Engine leaves the default bridge's gateway out of IPAM: it is the bridge interface's address.
    interface = (network.get("Options") or {}).get("com.docker.network.bridge.name") or "docker0"
    return interface_ipv4(interface)


def interface_ipv4(name: str) -> str:
    """The IPv4 address of a network interface of this machine (Linux: SIOCGIFADDR)."""
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            answer = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
        except OSError as error:
            raise SystemExit(f"tools.sam_local: no IPv4 address on {name}: {error}") from None
    return socket.inet_ntoa(answer[20:24])


def env_vars_for_port(port: int, source: Path = ENV_VARS_FILE) -> dict[str, dict[str, str]]:
    """local/sam-env.json with AWS_ENDPOINT_URL naming the backend's port."""
    document = json.loads(source.read_text())
    document["Parameters"]["AWS_ENDPOINT_URL"] = f"http://{CONTAINER_HOST_NAME}:{port}"
    return dict(document)


def sam_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """SAM's environment: none of the shell's AWS identity or endpoints (SAM hands credentials on to
    the functions), make run's dummy credentials instead, no telemetry."""
    from local.server import AWS_VARIABLES_TO_CLEAR, aws_environment

    environ = os.environ if environ is None else environ
    env = {
        name: value
        for name, value in environ.items()
        if name not in AWS_VARIABLES_TO_CLEAR and not name.startswith("AWS_ENDPOINT_URL")
    }
    env.update(aws_environment("", None))  # an empty endpoint is none: botocore's own (SAM calls nothing)
    env["SAM_CLI_TELEMETRY"] = "0"
    return env


# --- x86_64 copy of the template -------------------------------------------------------------------

_ARCHITECTURES_RE = re.compile(r"(Architectures: \[)arm64(\])")
_BUILD_ARCHITECTURE_RE = re.compile(r"(BuildArchitecture: )arm64\b")
_CODE_PATH_RE = re.compile(r"^(\s*(?:CodeUri|ContentUri): )(?!/)(\S+)$", re.MULTILINE)


def absolute_code_paths(template: str, base: Path) -> tuple[str, int]:
    """A template's relative CodeUri/ContentUri made absolute from `base`, so a copy works anywhere."""
    return _CODE_PATH_RE.subn(lambda match: f"{match.group(1)}{(base / match.group(2)).as_posix()}", template)


def x86_64_template(source: str, root: Path = ROOT) -> str:
    """template.yaml for x86_64: the same stack, other wheels and base images; code paths absolute."""
    text, architectures = _ARCHITECTURES_RE.subn(r"\1x86_64\2", source)
    text, builds = _BUILD_ARCHITECTURE_RE.subn(r"\1x86_64", text)
    text, paths = absolute_code_paths(text, root)
    if not (architectures and builds and paths):
        raise ValueError("template.yaml no longer has the arm64 settings this copy rewrites")
    leftover = [line for line in text.splitlines() if "arm64" in line and not line.lstrip().startswith("#")]
    if leftover:
        raise ValueError(f"arm64 left in the x86_64 copy: {leftover}")
    return text


# --- serve -----------------------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def stop_process(process: subprocess.Popen[bytes] | None, signum: int = signal.SIGINT, timeout: float = 20) -> None:
    """Signal a child (SIGINT: SAM removes its containers on Ctrl-C, local stops cleanly), then kill it."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _relay(process: subprocess.Popen[bytes], prefix: str, ready: threading.Event | None = None) -> None:
    """Print a child's output with a prefix; set `ready` at local's ready line (or when it ends)."""
    assert process.stdout is not None
    for raw in iter(process.stdout.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        print(f"{prefix}{line}", flush=True)
        if ready is not None and LOCAL_READY_RE.search(line):
            ready.set()
    if ready is not None:
        ready.set()


def serve(arguments: argparse.Namespace, sam_arguments: Sequence[str]) -> int:
    backend_host = os.environ.get("HANGAR_BACKEND_HOST") or docker_bridge_gateway()
    backend_port = int(os.environ.get("HANGAR_BACKEND_PORT") or DEFAULT_BACKEND_PORT)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    local: subprocess.Popen[bytes] | None = None
    sam: subprocess.Popen[bytes] | None = None
    env_file = tempfile.NamedTemporaryFile("w", prefix="hangar-sam-env-", suffix=".json", delete=False)  # noqa: SIM115
    try:
        json.dump(env_vars_for_port(backend_port), env_file, indent=2)
        env_file.close()
        local_command = [
            sys.executable,
            "-m",
            "local",
            "serve",
            "--port",
            str(arguments.api_port),
            "--backend-host",
            backend_host,
            "--backend-port",
            str(backend_port),
            *(["--no-schedules"] if arguments.no_schedules else []),
        ]
        local = subprocess.Popen(
            local_command,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        local_ready = threading.Event()
        threading.Thread(target=_relay, args=(local, "[make run] ", local_ready), daemon=True).start()
        local_ready.wait(120)
        if local.poll() is not None:
            print("tools.sam_local: python -m local stopped before it was ready", file=sys.stderr)
            return 1
        sam_command = [
            str(arguments.sam),
            "local",
            "start-api",
            "--template",
            str(arguments.template),
            "--config-file",
            str(SAMCONFIG),
            "--env-vars",
            env_file.name,
            "--host",
            "127.0.0.1",
            "--port",
            str(arguments.port),
            "--warm-containers",
            "LAZY",
            *sam_arguments,
        ]
        print(
            f"tools.sam_local: backend on http://{backend_host}:{backend_port} (functions: "
            f"http://{CONTAINER_HOST_NAME}:{backend_port}); sam local start-api on http://127.0.0.1:{arguments.port}",
            flush=True,
        )
        sam = subprocess.Popen(
            sam_command,
            cwd=ROOT,
            env=sam_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=_relay, args=(sam, "[sam] "), daemon=True).start()
        while sam.poll() is None and local.poll() is None:  # one without the other is of no use
            time.sleep(0.5)
        if local.poll() is not None:
            print("tools.sam_local: python -m local stopped; stopping sam local", file=sys.stderr)
            return 1
        return sam.returncode
    except (_Stop, KeyboardInterrupt):
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_process(sam)
        stop_process(local)
        Path(env_file.name).unlink(missing_ok=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.sam_local", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="the embedded backend, make run's API and sam local start-api")
    serve_parser.add_argument("--template", type=Path, default=ROOT / ".aws-sam" / "build" / "template.yaml")
    serve_parser.add_argument("--port", type=int, default=int(os.environ.get("SAM_PORT") or 3001))
    serve_parser.add_argument("--api-port", type=int, default=int(os.environ.get("PORT") or 3000))
    serve_parser.add_argument("--sam", type=Path, default=DEFAULT_SAM)
    serve_parser.add_argument("--no-schedules", action="store_true", help="make run's schedules off")
    x86 = commands.add_parser("x86-template", help="write an x86_64 copy of template.yaml")
    x86.add_argument("output", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    sam_arguments: list[str] = []
    if "--" in args_list:
        split = args_list.index("--")
        args_list, sam_arguments = args_list[:split], args_list[split + 1 :]
    arguments = _parser().parse_args(args_list)
    if arguments.command == "x86-template":
        arguments.output.parent.mkdir(parents=True, exist_ok=True)
        arguments.output.write_text(x86_64_template((ROOT / "template.yaml").read_text()))
        print(f"wrote {arguments.output}")
        return 0
    return serve(arguments, sam_arguments)


if __name__ == "__main__":
    sys.exit(main())
