"""Profile a Python program in every thread (cProfile sees only the calling thread).

    python -m benchmarks.profile OUT.prof -m tap_acumatica --config c.json > /dev/null

Worker threads (the tap fetches and transforms windows on them) are wrapped in their own
``cProfile.Profile``; all profiles are merged into ``OUT.prof`` at exit. Read it with
``python -m pstats OUT.prof`` (``sort tottime``, ``stats 30``).
"""

from __future__ import annotations

import atexit
import cProfile
import pstats
import runpy
import sys
import threading
from typing import Any

_PROFILES: list[cProfile.Profile] = []
_LOCK = threading.Lock()


def _patch_threads() -> None:
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        prof = cProfile.Profile()
        with _LOCK:
            _PROFILES.append(prof)
        prof.runcall(original, self)

    threading.Thread.run = run  # type: ignore[method-assign]


def _dump(out: str, main: cProfile.Profile) -> None:
    main.disable()
    stats = pstats.Stats(main)
    with _LOCK:
        for prof in _PROFILES:
            prof.disable()
            try:
                stats.add(prof)
            except (TypeError, ValueError):  # a thread that never ran anything
                continue
    stats.dump_stats(out)


def main(argv: list[str]) -> Any:
    """``OUT.prof -m module args...`` or ``OUT.prof script.py args...``."""
    if len(argv) < 2:
        sys.stderr.write(__doc__ or "")
        return 2
    out, rest = argv[0], argv[1:]
    _patch_threads()
    main_prof = cProfile.Profile()
    atexit.register(_dump, out, main_prof)
    if rest[0] == "-m":
        sys.argv = [rest[1], *rest[2:]]
        main_prof.enable()
        runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = rest
        main_prof.enable()
        runpy.run_path(rest[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
