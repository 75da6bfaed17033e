"""Compile a `sam build` output to bytecode for the runtime's Python: `python3.13 -m tools.bytecode DIR`.

sam build extracts wheels and copies sources without compiling them, and Lambda's /opt and /var/task
are read-only: without shipped `.pyc` files every cold start compiles the whole layer from source.
The files are written whatever the environment says (PYTHONDONTWRITEBYTECODE only stops implicit
writes on import), and as unchecked hash-based pycs (PEP 552): a deployment zip keeps file times to
two seconds and without a time zone, so timestamp-checked pycs could all look stale in Lambda, while
a build's sources never change under its bytecode.
"""

from __future__ import annotations

import compileall
import py_compile
import sys
from pathlib import Path

RUNTIME = (3, 13)
"""The functions' runtime (template.yaml: python3.13); bytecode is specific to a minor version."""


def compile_tree(root: Path) -> bool:
    """Compile every .py under `root` for this interpreter, next to its source; False if any failed."""
    return bool(
        compileall.compile_dir(
            root,
            quiet=1,
            workers=0,
            force=True,  # a source may have changed under an unchecked pyc of an earlier build
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    )


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python3.13 -m tools.bytecode DIR [DIR ...]", file=sys.stderr)
        return 2
    if sys.version_info[:2] != RUNTIME:
        print(f"tools.bytecode: needs python{RUNTIME[0]}.{RUNTIME[1]} (the runtime's), not {sys.version.split()[0]}")
        return 2
    return 0 if all(compile_tree(Path(path)) for path in argv) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
