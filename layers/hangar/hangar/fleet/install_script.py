"""The runner install script (GET /api/runners/{runnerId}/setup?token=...): a POSIX sh script.

The stack hosts its own agent: `make build` (and `make run`) builds the agent wheel into `agent_wheel/`
next to this module, so it ships inside the layer, and the script carries it inline (base64, with its
SHA-256): one request installs it, with no package index, bucket or second URL, identically in AWS and
locally. The template parameter AgentPackageSpec, when set, makes the script pip-install that instead.

Everything interpolated is shell-quoted (runner names are user input) and goes into variables at the top;
the body only ever expands those variables inside double quotes. The whole body is a function called on
the last line, so a download cut short (`curl ... | sh`) runs nothing. A failed install removes what it
created (an existing install is left as it was).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

AGENT_WHEEL_DIR = Path(__file__).resolve().parent / "agent_wheel"
AGENT_WHEEL_GLOB = "hangar_agent-*-py3-none-any.whl"

# @@NAME@@ markers are replaced by shell-quoted values; nothing else in the text is substituted.
INSTALL_SCRIPT_TEMPLATE = r"""#!/bin/sh
# Hangar runner agent installer, generated for one runner by the Hangar API.
# It holds that runner's token: do not share it or keep it around.
#
#   curl -fsSL URL | sh                                   this user: ~/.local/share/hangar-agent, ~/.config/hangar
#   curl -fsSL URL | sh -s -- --exec 'COMMAND'            ... and run it as a systemd user service
#   curl -fsSL URL | sudo sh -s -- --system --exec 'COMMAND'
#                                                         the whole machine: /opt/hangar-agent, /etc/hangar, a
#                                                         system service running as user hangar
#
#   Python: $HANGAR_PYTHON, else the first of python3, python3.13, python3.12, python3.11 that is 3.11+.
#   HANGAR_AGENT_HOME (where the venv goes) and HANGAR_AGENT_CONFIG override the locations.
#   The service is installed by the agent itself (hangar-agent install-service), from its one unit file.
set -eu

HANGAR_API_URL=@@API_URL@@
HANGAR_RUNNER_ID=@@RUNNER_ID@@
HANGAR_RUNNER_NAME=@@RUNNER_NAME@@
HANGAR_TOKEN_PREFIX=@@TOKEN_PREFIX@@
HANGAR_AGENT_CONFIG_JSON=@@CONFIG_JSON@@
# The agent: a package for pip (AgentPackageSpec), or else the wheel built with this Hangar stack, below.
HANGAR_AGENT_PACKAGE=@@AGENT_PACKAGE@@
HANGAR_AGENT_WHEEL_NAME=@@WHEEL_NAME@@
HANGAR_AGENT_WHEEL_SHA256=@@WHEEL_SHA256@@
HANGAR_AGENT_WHEEL_BASE64=@@WHEEL_BASE64@@

say() { printf '%s\n' "hangar: $*"; }
fail() { printf '%s\n' "hangar: error: $*" >&2; exit 1; }

find_python() {
    for candidate in ${HANGAR_PYTHON:-} python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

# The outermost of $1 and its parents that does not exist yet (what `mkdir -p $1` would create), or nothing.
first_missing() {
    path=$1
    missing=
    while [ ! -e "$path" ] && [ ! -L "$path" ]; do
        missing=$path
        path=$(dirname -- "$path")
    done
    printf '%s' "$missing"
}

# What this run created, removed again if it fails; an existing install is never removed.
work_dir=
created_home=
created_venv=
created_config_dir=
created_config=
previous_config=
cleanup() {
    status=$?
    trap - EXIT INT TERM HUP
    [ -z "$work_dir" ] || rm -rf -- "$work_dir"
    if [ "$status" -ne 0 ]; then
        [ -z "$created_venv" ] || rm -rf -- "$created_venv"
        [ -z "$created_home" ] || rm -rf -- "$created_home"
        [ -z "$created_config" ] || rm -f -- "$created_config"
        [ -z "$previous_config" ] || mv -f -- "$previous_config" "$config"
        [ -z "$created_config_dir" ] || rm -rf -- "$created_config_dir"
        printf '%s\n' "hangar: the install failed; what it had created is removed" >&2
    else
        [ -z "$previous_config" ] || rm -f -- "$previous_config"
    fi
    exit "$status"
}

usage() {
    cat <<'EOF'
usage: sh install.sh [--system] [--exec COMMAND]
  --system        install for the whole machine (as root): /opt/hangar-agent, /etc/hangar/agent.json,
                  and with --exec a system service running as user hangar
  --exec COMMAND  also run the agent as a systemd service with this job command
EOF
}

main() {
    system=
    exec_command=
    while [ $# -gt 0 ]; do
        case $1 in
            --system) system=1 ;;
            --exec)
                [ $# -ge 2 ] || fail "--exec needs the job command"
                exec_command=$2
                shift
                ;;
            --exec=*) exec_command=${1#--exec=} ;;
            -h | --help)
                usage
                return 0
                ;;
            *) fail "unknown option $1 (see --help)" ;;
        esac
        shift
    done

    if [ -n "$system" ]; then
        [ "$(id -u)" -eq 0 ] ||
            fail "--system installs for the whole machine: run it as root (curl ... | sudo sh -s -- --system)"
        agent_home="${HANGAR_AGENT_HOME:-/opt/hangar-agent}"
        config="${HANGAR_AGENT_CONFIG:-/etc/hangar/agent.json}"
        service_mode=--system
    else
        [ -n "${HOME:-}" ] || fail "HOME is not set"
        agent_home="${HANGAR_AGENT_HOME:-$HOME/.local/share/hangar-agent}"
        config="${HANGAR_AGENT_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/hangar/agent.json}"
        service_mode=--user
    fi
    venv="$agent_home/venv"
    config_dir=$(dirname -- "$config")
    if [ -z "$HANGAR_AGENT_PACKAGE" ] && [ -z "$HANGAR_AGENT_WHEEL_BASE64" ]; then
        fail "this Hangar deployment was built without its agent: build it with 'make build' (or set AgentPackageSpec)"
    fi

    if ! python=$(find_python); then
        if command -v python3 >/dev/null 2>&1; then
            found=$(python3 -c 'import platform; print(platform.python_version())' 2>/dev/null || echo unknown)
            fail "python3 $found is too old: the Hangar agent needs Python 3.11 or newer (set HANGAR_PYTHON to one)"
        fi
        fail "python3 not found: install Python 3.11 or newer (with its venv module) and run this script again"
    fi

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP

    say "installing the Hangar agent for runner $HANGAR_RUNNER_NAME ($HANGAR_RUNNER_ID)"
    say "using $python ($("$python" -c 'import platform; print(platform.python_version())'))"
    created_home=$(first_missing "$agent_home")
    mkdir -p -- "$agent_home"
    if [ ! -x "$venv/bin/python" ]; then
        [ -n "$created_home" ] || created_venv=$venv
        "$python" -m venv -- "$venv" ||
            fail "could not create a virtual environment in $venv (on Debian/Ubuntu: apt-get install python3-venv)"
    fi

    if [ -n "$HANGAR_AGENT_PACKAGE" ]; then
        package=$HANGAR_AGENT_PACKAGE
    else
        work_dir=$(mktemp -d)
        package="$work_dir/$HANGAR_AGENT_WHEEL_NAME"
        printf '%s' "$HANGAR_AGENT_WHEEL_BASE64" | "$venv/bin/python" -c '
import base64, hashlib, sys
data = base64.b64decode(sys.stdin.read())
if hashlib.sha256(data).hexdigest() != sys.argv[2]:
    sys.exit("the agent package in this script is damaged (SHA-256 mismatch): download the script again")
with open(sys.argv[1], "wb") as out:
    out.write(data)
' "$package" "$HANGAR_AGENT_WHEEL_SHA256" || fail "could not unpack the agent package"
    fi
    if [ -n "$HANGAR_AGENT_PACKAGE" ]; then
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade -- "$package" ||
            fail "could not install the agent package ($package)"
    else
        # No dependencies, so no package index: it installs offline, replacing whatever agent was there.
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
            --force-reinstall -- "$package" || fail "could not install the agent package ($HANGAR_AGENT_WHEEL_NAME)"
    fi

    # The config holds the runner token: readable by this user only, from the moment it exists.
    created_config_dir=$(first_missing "$config_dir")
    if [ -e "$config" ]; then
        previous_config="$config.previous.$$"
        cp -p -- "$config" "$previous_config"
    else
        created_config=$config
    fi
    (
        umask 077
        mkdir -p -- "$config_dir"
        tmp="$config_dir/.agent.json.$$"
        printf '%s\n' "$HANGAR_AGENT_CONFIG_JSON" >"$tmp"
        chmod 600 -- "$tmp"
        mv -f -- "$tmp" "$config"
    ) || fail "could not write $config"

    agent="$venv/bin/hangar-agent"
    say "installed: $agent"
    say "config:    $config (mode 600; holds the token $HANGAR_TOKEN_PREFIX...)"
    say "API:       $HANGAR_API_URL"
    if [ -n "$exec_command" ]; then
        "$agent" install-service "$service_mode" --config "$config" --exec "$exec_command" ||
            fail "could not install the service (the agent itself is fine: run '$agent install-service --help')"
        return 0
    fi
    cat <<EOF

Run it now (it runs your command once per job; see '$agent run --help' for the contract):
  $agent run --exec '<your command>'
Or keep it running as a systemd service:
  $agent install-service $service_mode --exec '<your command>'
EOF
}

main "$@"
"""

_MARKER_RE = re.compile(r"@@[A-Z_0-9]+@@")
BASE64_LINE = 76


@dataclass(frozen=True)
class AgentWheel:
    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def base64(self) -> str:
        # Wrapped like MIME base64, so the script stays readable; the decoder ignores the newlines.
        return "\n".join(textwrap.wrap(base64.b64encode(self.data).decode(), BASE64_LINE))


def bundled_agent_wheel() -> AgentWheel | None:
    """The agent wheel built with this stack (the newest if there are several), or None."""
    wheels = sorted(AGENT_WHEEL_DIR.glob(AGENT_WHEEL_GLOB), key=lambda path: path.stat().st_mtime)
    if not wheels:
        return None
    return AgentWheel(name=wheels[-1].name, data=wheels[-1].read_bytes())


def render_install_script(
    api_url: str,
    runner_id: str,
    token: str,
    token_prefix: str,
    name: str,
    labels: list[str],
    configured_concurrency: int,
    agent_package: str,
    agent_wheel: AgentWheel | None = None,
) -> str:
    """The install script for one runner; the agent config it writes is exactly what `hangar-agent` reads.

    `agent_package` (AgentPackageSpec) is what pip installs; when empty the script carries `agent_wheel`
    (by default the one built with the stack) and installs that."""
    config = {
        "apiUrl": api_url,
        "runnerId": runner_id,
        "token": token,
        "tokenPrefix": token_prefix,
        "name": name,
        "labels": labels,
        "configuredConcurrency": configured_concurrency,
    }
    wheel = None if agent_package else (agent_wheel or bundled_agent_wheel())
    replacements = {
        "@@API_URL@@": api_url,
        "@@RUNNER_ID@@": runner_id,
        "@@RUNNER_NAME@@": name,
        "@@TOKEN_PREFIX@@": token_prefix,
        "@@AGENT_PACKAGE@@": agent_package,
        "@@WHEEL_NAME@@": wheel.name if wheel else "",
        "@@WHEEL_SHA256@@": wheel.sha256 if wheel else "",
        "@@WHEEL_BASE64@@": wheel.base64 if wheel else "",
        # ASCII-only JSON (\\u escapes): the config file is the same bytes whatever the shell's locale.
        "@@CONFIG_JSON@@": json.dumps(config, indent=2, ensure_ascii=True),
    }
    # One pass, so a value that happens to contain a marker is never substituted into.
    return _MARKER_RE.sub(lambda match: shlex.quote(replacements[match.group(0)]), INSTALL_SCRIPT_TEMPLATE)
