"""Shared plumbing of the benchmarks: machine description, timing, writing docs/results/."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latcomp.fileio import atomic_write_text

RESULTS_DIR = Path(__file__).resolve().parents[2] / "docs" / "results"


def machine_info() -> dict[str, Any]:
    """CPU model, core count, load, and the versions of what was measured."""
    import numpy

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "numpy": numpy.__version__}
    for module, dist in (("torch", "torch"), ("constriction", "constriction"), ("PIL", "pillow")):
        if module in sys.modules:  # report what this process measured with
            versions[dist] = importlib.metadata.version(dist)
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "versions": versions,
            "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}


def git_commit() -> str | None:
    """The short hash of the checkout's commit (``+`` if it has uncommitted changes), None outside a git checkout."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+" if dirty else "")


def pyplot() -> Any:
    """matplotlib.pyplot with the file-only Agg backend (matplotlib is the optional extra of plots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[Any, float]:
    """The result of ``fn`` and the median wall time in seconds of ``repeats`` calls."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def write_results(name: str, res: dict[str, Any], markdown: str, command: str,
                  out_dir: str | os.PathLike = RESULTS_DIR) -> tuple[Path, Path]:
    """Write ``name.json`` (results + command + machine) and ``name.md`` atomically; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{name}.md"
    js = write_json(out_dir / f"{name}.json", res, command)
    atomic_write_text(md, markdown)
    return js, md


def write_report_files(res: dict[str, Any], command: str, json_path: str | os.PathLike | None,
                       markdown_path: str | os.PathLike | None, plot_path: str | os.PathLike | None,
                       plot: Callable[[Path], Path], markdown: Callable[[str | None, str | None], str]) -> list[Path]:
    """Write any of the JSON (``res`` and the command), the plot (``plot(path)``) and the Markdown
    (``markdown(plot link, JSON link)``: the paths relative to the Markdown file, None for those not written),
    atomically; return the paths written."""
    written = []
    if json_path is not None:
        written.append(write_json(json_path, res, command))
    if plot_path is not None:
        written.append(plot(Path(plot_path)))
    if markdown_path is not None:
        md = Path(markdown_path)

        def link(p: str | os.PathLike | None) -> str | None:
            return None if p is None else Path(os.path.relpath(Path(p).absolute(), md.absolute().parent)).as_posix()

        atomic_write_text(md, markdown(link(plot_path), link(json_path)))
        written.append(md)
    return written


def write_json(path: str | os.PathLike, res: dict[str, Any], command: str) -> Path:
    """Write ``res`` and the command that made it as indented JSON, atomically; return the path."""
    path = Path(path)
    atomic_write_text(path, json.dumps({**res, "command": command}, indent=2, default=float) + "\n")
    return path
