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

from . import paths

#: the modules prediction imports (predict → compress → models → data → paths)
MODULES = ("__init__", "paths", "data", "models", "compress", "predict")
MAIN = "import sys\nfrom fer_utils.predict import main\nsys.exit(main())\n"
#: budgets of the original assignment, in bytes, for the whole folder
STRONG_LIMIT, SIMPLE_LIMIT = 225_000, 650_000


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
    verdict = ("within the strong limit" if size <= STRONG_LIMIT else
               "within the simple limit" if size <= SIMPLE_LIMIT else "over both limits")
    print(f"{args.out}: {size:,} bytes (du --apparent-size --bytes), {verdict} "
          f"({STRONG_LIMIT:,} strong / {SIMPLE_LIMIT:,} simple)")
    for f in sorted(args.out.iterdir()):
        print(f"  {f.name}: {f.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
