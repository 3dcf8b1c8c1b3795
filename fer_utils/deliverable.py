"""Assemble the size-limited deliverable: the weights file plus the minimal code to predict.

    python -m fer_utils.deliverable --weights FILE [--out deliverable/]

The folder holds the weights file and ``predict.pyz``, a zip application (run by
``python predict.pyz --weights ... --input test.csv --output submission.csv``)
holding the few modules prediction needs, stripped of docstrings and deflated.
Its size is measured as the assignment measured it: ``du --apparent-size --bytes``.
"""
from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from . import config, paths

#: the modules prediction imports (predict → compress → models → constants; predict → data → paths)
MODULES = ("__init__", "constants", "paths", "data", "models", "compress", "predict")
MAIN = "import sys\nfrom fer_utils.predict import main\nsys.exit(main())\n"


def minify(source: str) -> str:
    """The same code without docstrings and comments (``ast`` round trip)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree) + "\n"


def write_zipapp(path: Path) -> None:
    """A deterministic zip application of the prediction modules."""
    pkg = Path(__file__).resolve().parent
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        entries = [("__main__.py", MAIN)]
        entries += [(f"fer_utils/{m}.py", minify((pkg / f"{m}.py").read_text())) for m in MODULES]
        for name, text in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, text, compresslevel=9)


def folder_bytes(folder: Path) -> int:
    """``du --apparent-size --bytes`` of the folder (what the assignment measured)."""
    out = subprocess.run(["du", "--apparent-size", "--bytes", "-s", str(folder)], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[0])


def assemble(weights: Path, out_dir: Path | None = None) -> int:
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: weights file not found")
    out_dir = Path(out_dir or paths.DELIVERABLE_DIR)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    shutil.copyfile(weights, out_dir / f"weights{''.join(weights.suffixes) or '.bin'}")
    write_zipapp(out_dir / "predict.pyz")
    return folder_bytes(out_dir)


CHOICE_COLUMNS = ("budget", "limit_bytes", "model", "codec", "public_acc", "private_acc", "run_id", "folder_bytes",
                  "target_private", "target_met")


def choose(codecs, budgets: dict, results_dir: Path, runs_root: Path | None = None, build_dir: Path | None = None):
    """The deliverable of each byte budget, chosen among every measured (run, codec) file.

    Each file whose codec row is in ``codecs`` (``measure.read_table``) and whose file is on this
    machine is assembled into a folder (weights + ``predict.pyz``) and measured as the assignment
    measured it. Within each budget (``{name: config.ByteBudget}``) the file with the best
    **PublicTest** accuracy wins (ties: the smaller folder); PrivateTest only reports. The winner is
    copied to ``<results_dir>/weights/best-<name>.<codec>`` (replacing the budget's previous file)
    and the table goes to ``<results_dir>/deliverables.csv``. With no file on this machine (a fresh
    clone) nothing is rewritten and the committed table is returned.
    """
    import pandas as pd

    from .measure import codec_path

    table = Path(results_dir) / "deliverables.csv"
    build_dir = Path(build_dir or paths.BUILD_DIR / "deliverables")
    rows = []
    for c in codecs.itertuples(index=False):
        src = codec_path(c.run_id, c.codec, runs_root)
        if src.exists():
            rows.append({"model": c.model, "codec": c.codec, "public_acc": c.public_acc, "private_acc": c.private_acc,
                         "run_id": c.run_id, "folder_bytes": assemble(src, build_dir / f"{c.run_id}-{c.codec}")})
    if not rows:
        return pd.read_csv(table) if table.exists() else pd.DataFrame(columns=list(CHOICE_COLUMNS))
    folders, chosen = pd.DataFrame(rows), []
    weights_dir = Path(results_dir) / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    for name, budget in budgets.items():
        fit = folders[folders.folder_bytes <= budget.limit]
        if fit.empty:
            continue
        best = fit.sort_values(["public_acc", "folder_bytes"], ascending=[False, True]).iloc[0]
        chosen.append({"budget": name, "limit_bytes": budget.limit, **best.to_dict(), "target_private": budget.target,
                       "target_met": bool(budget.target is not None and best.private_acc >= budget.target)})
        for old in weights_dir.glob(f"best-{name}.*"):
            old.unlink()
        shutil.copyfile(codec_path(best.run_id, best.codec, runs_root), weights_dir / f"best-{name}.{best.codec}")
    out = pd.DataFrame(chosen, columns=list(CHOICE_COLUMNS))
    out.to_csv(table, index=False)
    return out


def chosen_files(deliverables, results_dir: Path) -> dict:
    """``{budget: (weights file, model label, codec)}`` of a ``choose`` table (``results/weights/best-*``)."""
    return {row.budget: (Path(results_dir) / "weights" / f"best-{row.budget}.{row.codec}", row.model, row.codec)
            for row in deliverables.itertuples(index=False)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=paths.DELIVERABLE_DIR)
    args = parser.parse_args(argv)
    try:
        size = assemble(args.weights, args.out)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    strong, simple = config.ASSIGNMENT_LIMITS["strong"].limit, config.ASSIGNMENT_LIMITS["simple"].limit
    verdict = ("within the strong limit" if size <= strong else
               "within the simple limit" if size <= simple else "over both limits")
    print(f"{args.out}: {size:,} bytes (du --apparent-size --bytes), {verdict} "
          f"({strong:,} strong / {simple:,} simple)")
    for f in sorted(args.out.iterdir()):
        print(f"  {f.name}: {f.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
