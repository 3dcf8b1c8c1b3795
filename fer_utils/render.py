"""Execute the numbered notebooks in order and render the report with nbconvert.

    python -m fer_utils.render notebooks/01_data.ipynb ... notebooks/06_report.ipynb

Each notebook is executed with ``jupyter nbconvert --execute`` (kernel
``python3``, an explicit per-cell timeout, a whole-notebook time limit) into
``build/executed/``; when the last one is the report notebook it is then converted to
markdown without its code cells, without cells tagged ``notebook-only`` and without
anything the cells wrote to stderr (library log lines are not part of the report). The full profile on real FER2013 writes the
committed ``report.md``; anything else writes ``build/report.md``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from . import config, paths

#: the notebook the report is rendered from; a run that does not end with it only executes
REPORT_NOTEBOOK = "06_report.ipynb"
CELL_TIMEOUT_S = 3600
NOTEBOOK_TIMEOUT_S = 4 * 3600


def nbconvert(*args: str, timeout: float) -> None:
    cmd = [sys.executable, "-m", "jupyter", "nbconvert", *args]
    subprocess.run(cmd, check=True, timeout=timeout, cwd=paths.ROOT)


def execute(notebook: Path, out_dir: Path, cell_timeout: int = CELL_TIMEOUT_S,
            notebook_timeout: int = NOTEBOOK_TIMEOUT_S) -> Path:
    nbconvert("--to", "notebook", "--execute", "--ExecutePreprocessor.kernel_name=python3",
              f"--ExecutePreprocessor.timeout={cell_timeout}", "--ExecutePreprocessor.record_timing=False",
              "--output-dir", str(out_dir), str(notebook), timeout=notebook_timeout)
    return out_dir / notebook.name


def strip_stderr(notebook: Path) -> int:
    """Drop every stderr stream output of an executed notebook in place; returns how many."""
    nb = json.loads(Path(notebook).read_text())
    dropped = 0
    for cell in nb.get("cells", []):
        outputs = cell.get("outputs", [])
        keep = [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        dropped += len(outputs) - len(keep)
        if "outputs" in cell:
            cell["outputs"] = keep
    Path(notebook).write_text(json.dumps(nb, indent=1))
    return dropped


def to_markdown(executed: Path, report: Path) -> Path:
    """The report: ``executed`` as markdown, without code, notebook-only cells or stderr."""
    strip_stderr(executed)
    report.parent.mkdir(parents=True, exist_ok=True)
    nbconvert("--to", "markdown", "--no-input", "--TagRemovePreprocessor.enabled=True",
              "--TagRemovePreprocessor.remove_cell_tags=notebook-only", "--output-dir", str(report.parent),
              "--output", report.stem, str(executed), timeout=600)
    return report


def render(notebooks: list[Path], cell_timeout: int = CELL_TIMEOUT_S,
           notebook_timeout: int = NOTEBOOK_TIMEOUT_S) -> Path | None:
    setup = config.setup()
    out_dir = paths.BUILD_DIR / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"profile {setup.profile.name}, {setup.data_label}: report -> {setup.report}", flush=True)
    executed = None
    for nb in notebooks:
        t0 = time.perf_counter()
        executed = execute(Path(nb), out_dir, cell_timeout, notebook_timeout)
        print(f"executed {nb} in {time.perf_counter() - t0:.0f} s", flush=True)
    if Path(notebooks[-1]).name != REPORT_NOTEBOOK:
        print(f"executed only: the report is rendered when {REPORT_NOTEBOOK} runs last", flush=True)
        return None
    to_markdown(executed, setup.report)
    print(f"report written to {setup.report}", flush=True)
    return setup.report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="in execution order; the last renders the report")
    parser.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT_S)
    parser.add_argument("--notebook-timeout", type=int, default=NOTEBOOK_TIMEOUT_S)
    args = parser.parse_args(argv)
    render(args.notebooks, args.cell_timeout, args.notebook_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
