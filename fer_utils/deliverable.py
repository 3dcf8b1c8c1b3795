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

    Every row of ``codecs`` (``measure.read_table``) is a candidate, whether or not its file is on
    this machine: its folder (weights + ``predict.pyz``) measures the file's bytes plus what the
    code and the folder add (``code_bytes``). Within each budget (``{name: config.ByteBudget}``)
    the file with the best **PublicTest** accuracy wins (ties: the smaller folder); PrivateTest
    only reports. Each winner is then assembled from its file and measured as the assignment
    measured it (``du --apparent-size --bytes``), which must equal the predicted size. Its file is
    the run folder's codec file, or, on a machine without it (a fresh clone), the committed
    ``<results_dir>/weights/best-<name>.<codec>`` when the committed table chose the same file.
    The winner is copied to that name (replacing the budget's previous file) and the table goes to
    ``<results_dir>/deliverables.csv``.
    """
    import pandas as pd

    table = Path(results_dir) / "deliverables.csv"
    previous = pd.read_csv(table) if table.exists() else pd.DataFrame(columns=list(CHOICE_COLUMNS))
    build_dir = Path(build_dir or paths.BUILD_DIR / "deliverables")
    if codecs.empty:
        return previous
    folders = codecs[["model", "codec", "public_acc", "private_acc", "run_id", "bytes"]].copy()
    folders["file_sha256"] = codecs["file_sha256"] if "file_sha256" in codecs else None
    folders["folder_bytes"] = folders["bytes"].astype(int) + code_bytes(build_dir / "code-only")
    weights_dir = Path(results_dir) / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    chosen = []
    for name, budget in budgets.items():
        fit = folders[folders.folder_bytes <= budget.limit]
        if fit.empty:
            continue
        best = fit.sort_values(["public_acc", "folder_bytes"], ascending=[False, True]).iloc[0]
        src = _winner_file(best, name, previous, weights_dir, runs_root)
        folder = build_dir / f"{best.run_id}-{best.codec}"
        measured = assemble(src, folder)
        if measured != best.folder_bytes:
            raise ValueError(f"{src}: its deliverable folder measures {measured} B, not the {best.folder_bytes} B "
                             f"its codec row ({best.bytes} B) predicts")
        for old in weights_dir.glob(f"best-{name}.*"):
            old.unlink()
        shutil.copyfile(next(folder.glob("weights*")), weights_dir / f"best-{name}.{best.codec}")
        chosen.append({"budget": name, "limit_bytes": budget.limit, **best.drop(["bytes", "file_sha256"]).to_dict(),
                       "target_private": budget.target,
                       "target_met": bool(budget.target is not None and best.private_acc >= budget.target)})
    out = pd.DataFrame(chosen, columns=list(CHOICE_COLUMNS))
    out.to_csv(table, index=False)
    return out


def code_bytes(folder: Path) -> int:
    """What a deliverable folder measures besides its weights file: ``predict.pyz`` and the folder
    itself (built in ``folder``, without weights)."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write_zipapp(folder / "predict.pyz")
    return folder_bytes(folder)


def _winner_file(best, name: str, previous, weights_dir: Path, runs_root: Path | None) -> Path:
    """The file of a chosen (run, codec): the run folder's, else the committed copy of the same choice."""
    from .measure import codec_path, is_measured_file

    src = codec_path(best.run_id, best.codec, runs_root)
    if src.exists() and is_measured_file(src, best):
        return src
    committed = weights_dir / f"best-{name}.{best.codec}"
    same = previous[(previous.budget == name) & (previous.run_id == best.run_id) & (previous.codec == best.codec)]
    if not same.empty and committed.exists() and is_measured_file(committed, best):
        return committed
    raise FileNotFoundError(f"{src}: the {name} budget's best file ({best.model}, {best.codec}) is measured in the "
                            f"codec table but not on this machine, nor committed as {committed}; measure its run's "
                            "codecs again here (delete its rows from codecs.csv) to rebuild it")


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
