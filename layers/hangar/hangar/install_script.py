"""The runner install script (GET /api/runners/{runnerId}/setup?token=...): a POSIX sh script.

Everything interpolated is shell-quoted (runner names are user input) and goes into variables at the top;
the body only ever expands those variables inside double quotes. The whole body is a function called on
the last line, so a download cut short (`curl ... | sh`) runs nothing.
"""

from __future__ import annotations

import json
import re
import shlex

# @@NAME@@ markers are replaced by shell-quoted values; nothing else in the text is substituted.
INSTALL_SCRIPT_TEMPLATE = r"""#!/bin/sh
# Hangar runner agent installer, generated for one runner by the Hangar API.
# It holds that runner's token: do not share it or keep it around.
#
#   Agent home: ${HANGAR_AGENT_HOME:-$HOME/.local/share/hangar-agent} (a Python venv under venv/)
#   Config:     ${HANGAR_AGENT_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/hangar/agent.json} (mode 600)
#   Python:     $HANGAR_PYTHON, else the first of python3, python3.13, python3.12, python3.11 that is 3.11+
set -eu

HANGAR_API_URL=@@API_URL@@
HANGAR_RUNNER_ID=@@RUNNER_ID@@
HANGAR_RUNNER_NAME=@@RUNNER_NAME@@
HANGAR_TOKEN_PREFIX=@@TOKEN_PREFIX@@
HANGAR_AGENT_PACKAGE=@@AGENT_PACKAGE@@
HANGAR_AGENT_CONFIG_JSON=@@CONFIG_JSON@@

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

main() {
    [ -n "${HOME:-}" ] || fail "HOME is not set"
    agent_home="${HANGAR_AGENT_HOME:-$HOME/.local/share/hangar-agent}"
    venv="$agent_home/venv"
    config="${HANGAR_AGENT_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/hangar/agent.json}"
    config_dir=$(dirname -- "$config")

    if ! python=$(find_python); then
        if command -v python3 >/dev/null 2>&1; then
            found=$(python3 -c 'import platform; print(platform.python_version())' 2>/dev/null || echo unknown)
            fail "python3 $found is too old: the Hangar agent needs Python 3.11 or newer (set HANGAR_PYTHON to one)"
        fi
        fail "python3 not found: install Python 3.11 or newer (with its venv module) and run this script again"
    fi

    say "installing the Hangar agent for runner $HANGAR_RUNNER_NAME ($HANGAR_RUNNER_ID)"
    say "using $python ($("$python" -c 'import platform; print(platform.python_version())'))"
    mkdir -p -- "$agent_home"
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv -- "$venv" ||
            fail "could not create a virtual environment in $venv (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade -- "$HANGAR_AGENT_PACKAGE" ||
        fail "could not install the agent package ($HANGAR_AGENT_PACKAGE)"

    # The config holds the runner token: readable by this user only, from the moment it exists.
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
    cat <<EOF

Start the agent (it runs your command once per job):
  $agent run --exec '<your command>'

To keep it running with systemd, save this as ~/.config/systemd/user/hangar-agent.service:
  [Unit]
  Description=Hangar runner agent
  After=network-online.target
  [Service]
  ExecStart=$agent run --exec '<your command>'
  Restart=on-failure
  # exit status 2: the token was regenerated or the runner deleted; restarting would not help
  RestartPreventExitStatus=2
  [Install]
  WantedBy=default.target
then run: systemctl --user daemon-reload && systemctl --user enable --now hangar-agent
EOF
}

main "$@"
"""

_MARKER_RE = re.compile(r"@@[A-Z_]+@@")


def render_install_script(
    api_url: str,
    runner_id: str,
    token: str,
    token_prefix: str,
    name: str,
    labels: list[str],
    configured_concurrency: int,
    agent_package: str,
) -> str:
    """The install script for one runner; the agent config it writes is exactly what `hangar-agent` reads."""
    config = {
        "apiUrl": api_url,
        "runnerId": runner_id,
        "token": token,
        "tokenPrefix": token_prefix,
        "name": name,
        "labels": labels,
        "configuredConcurrency": configured_concurrency,
    }
    replacements = {
        "@@API_URL@@": api_url,
        "@@RUNNER_ID@@": runner_id,
        "@@RUNNER_NAME@@": name,
        "@@TOKEN_PREFIX@@": token_prefix,
        "@@AGENT_PACKAGE@@": agent_package,
        # ASCII-only JSON (\\u escapes): the config file is the same bytes whatever the shell's locale.
        "@@CONFIG_JSON@@": json.dumps(config, indent=2, ensure_ascii=True),
    }
    # One pass, so a value that happens to contain a marker is never substituted into.
    return _MARKER_RE.sub(lambda match: shlex.quote(replacements[match.group(0)]), INSTALL_SCRIPT_TEMPLATE)
