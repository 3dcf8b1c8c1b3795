"""Assemble the size-limited deliverable: the weights file(s) plus the minimal code to predict.

    python -m fer_utils.deliverable --weights FILE [FILE ...] [--out deliverable/]

The folder holds the weights file (``weights.<codec>``; an ensemble's files ``weights-<i>.<codec>``)
and ``predict.pyz``, a zip application (run by ``python predict.pyz --weights <folder or files>
--input test.csv --output submission.csv``) holding the few modules prediction needs, without the
functions prediction never reaches (:func:`shake`), stripped of docstrings and deflated. Its size
is measured as the assignment measured it: ``du --apparent-size --bytes``.
"""
from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

from . import config, paths

#: the modules prediction imports (predict → compress → models → constants; predict → data → paths)
MODULES = ("__init__", "constants", "paths", "data", "models", "compress", "predict")
MAIN = "import sys\nfrom fer_utils.predict import main\nsys.exit(main())\n"


def _aliases(tree: ast.Module) -> tuple[dict, dict]:
    """A module's package-relative imports anywhere in it: ``{alias: module}`` (``from . import data``) and
    ``{alias: (module, name)}`` (``from .constants import CLASSES``)."""
    modules, names = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for a in node.names:
                if node.module is None:
                    modules[a.asname or a.name] = a.name
                else:
                    names[a.asname or a.name] = (node.module, a.name)
    return modules, names


def _references(node, module: str, aliases: tuple[dict, dict]) -> set:
    """The (module, name) pairs a piece of code names: its own module's names, names imported from
    sibling modules, and ``sibling.name`` attributes."""
    modules, names = aliases
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(names.get(n.id, (module, n.id)))
        elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in modules:
            out.add((modules[n.value.id], n.attr))
    return out


def shake(sources: dict, root: tuple = ("predict", "main")) -> dict:
    """The modules ``{name: source}`` as ``ast`` trees without the top-level functions nothing reaches
    from ``root`` (a (module, function) pair) or from the modules' other top-level statements (imports,
    constants, classes: all kept). Names are followed through ``from . import m`` / ``m.name`` and
    ``from .m import name``; the package's modules call nothing by a computed name, so what is not
    reached is never called by prediction."""
    trees = {m: ast.parse(src) for m, src in sources.items()}
    aliases = {m: _aliases(t) for m, t in trees.items()}
    functions = {(m, n.name): n for m, t in trees.items() for n in t.body
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    todo = [root] + [ref for m, t in trees.items() for n in t.body
                     if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                     for ref in _references(n, m, aliases[m])]
    reached = set()
    while todo:
        key = todo.pop()
        if key in reached or key not in functions:
            continue
        reached.add(key)
        todo += _references(functions[key], key[0], aliases[key[0]])
    for m, t in trees.items():
        t.body = [n for n in t.body if (m, getattr(n, "name", None)) in reached
                  or not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return trees


def minify(source) -> str:
    """The same code without docstrings and comments (``ast`` round trip); ``source``: text or a parsed module."""
    tree = ast.parse(source) if isinstance(source, str) else source
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
    trees = shake({m: (pkg / f"{m}.py").read_text() for m in MODULES})  # only what prediction reaches
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        entries = [("__main__.py", MAIN)]
        entries += [(f"fer_utils/{m}.py", minify(trees[m])) for m in MODULES]
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


def member_name(path: Path, index: int | None = None) -> str:
    """A weights file's name in a deliverable folder: ``weights.<codec>``, or an ensemble's
    ``weights-<index>.<codec>`` (1-based, the order its outputs are summed in)."""
    suffix = "".join(Path(path).suffixes) or ".bin"
    return f"weights{suffix}" if index is None else f"weights-{index}{suffix}"


def assemble(weights, out_dir: Path | None = None) -> int:
    """Build the folder of a weights file, or of several (an ensemble, in that order); its ``du`` bytes."""
    files = [Path(w) for w in (weights if isinstance(weights, (list, tuple)) else [weights])]
    for w in files:
        if not w.is_file():
            raise FileNotFoundError(f"{w}: weights file not found")
    out_dir = Path(out_dir or paths.DELIVERABLE_DIR)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for i, w in enumerate(files, 1):
        shutil.copyfile(w, out_dir / member_name(w, i if len(files) > 1 else None))
    write_zipapp(out_dir / "predict.pyz")
    return folder_bytes(out_dir)


#: joins an ensemble's members' run ids, codecs, digests and names in one table cell
SEP = "; "

CHOICE_COLUMNS = ("budget", "limit_bytes", "members", "model", "codec", "public_acc", "private_acc",
                  "public_tta_acc", "private_tta_acc", "run_id", "folder_bytes", "target_private", "target_met")
TTA_COLUMNS = ("public_tta_acc", "private_tta_acc")


def scored(files, prepared: dict) -> dict:
    """A folder's files (one, or an ensemble's in order) decoded and scored on the test splits with and
    without mirror TTA: the plain and ``_tta`` accuracies, by the deliverable's own code path
    (``predict.probabilities`` and ``mean_probabilities``, through ``runs.evaluate``)."""
    from . import compress
    from .runs import evaluate

    acc = evaluate([compress.decode(f) for f in files], prepared, mirror=True, val=False)
    return {f"{k}{tta}_acc": round(acc[s + tta], 4)
            for k, s in (("public", "PublicTest"), ("private", "PrivateTest")) for tta in ("", "_tta")}


def shipped_private(row) -> float:
    """The PrivateTest accuracy of what the folder's ``predict.pyz`` outputs with its defaults (mirror TTA
    if ``predict.MIRROR_TTA``), which the budget's target judges; the plain files' where the folder was
    not scored with TTA (no test data at the choice, and another choice before)."""
    from .predict import MIRROR_TTA

    tta = row.get("private_tta_acc", float("nan"))
    return float(tta) if MIRROR_TTA and tta == tta else float(row["private_acc"])


def choose(codecs, budgets: dict, results_dir: Path, runs_root: Path | None = None, build_dir: Path | None = None,
           ensembles=None, prepared: dict | None = None):
    """The deliverable of each byte budget, chosen among the folders the search found (``ensembles``)
    or, where it found none that fits, among every measured (run, codec) file.

    A row of ``ensembles`` (``fer_utils.ensemble.search``: one file or several, their bytes summed,
    members joined by :data:`SEP`) was scored as it ships (mirror TTA with ``predict.MIRROR_TTA``);
    those that fit a budget (``{name: config.ByteBudget}``) compete on that **PublicTest** accuracy.
    Without one, every row of ``codecs`` (``measure.read_table``) is a candidate on its plain
    PublicTest accuracy, whether or not its file is on this machine. A folder (weights +
    ``predict.pyz``) measures its files' bytes plus what the code and the folder add
    (``code_bytes``). The best PublicTest accuracy wins (ties: the smaller folder); PrivateTest only
    reports. Runs on the original's protocol (``vpub``, their epoch picked on PublicTest) compete too,
    as in the original study: PublicTest flatters them a little, PrivateTest stays unseen. Each
    winner is then assembled from its files and measured as the assignment measured it
    (``du --apparent-size --bytes``), which must equal the predicted size. A file is the run
    folder's codec file, or, on a machine without it (a fresh clone), the committed
    ``<results_dir>/weights/best-<name>.<codec>`` (an ensemble's ``best-<name>-<i>.<codec>``) when
    the committed table chose the same files. The winner's files are copied to those names
    (replacing the budget's previous ones) and the table goes to ``<results_dir>/deliverables.csv``.

    The TTA columns (``public_tta_acc``, ``private_tta_acc``) of a search row are the search's own,
    scored from these very files; a codec row's folder is scored here with mirror TTA when
    ``prepared`` (the test splits) is given (:func:`scored`), else it keeps those of the same choice
    in the previous table. The target judges what the folder outputs with ``predict``'s defaults
    (:func:`shipped_private`).
    """
    import pandas as pd

    from .predict import MIRROR_TTA

    table = Path(results_dir) / "deliverables.csv"
    previous = pd.read_csv(table) if table.exists() else pd.DataFrame(columns=list(CHOICE_COLUMNS))
    if "members" not in previous:  # a table from before ensembles: single files
        previous["members"] = 1
    for col in TTA_COLUMNS:  # a table from before the TTA columns: not scored with TTA
        if col not in previous:
            previous[col] = float("nan")
    build_dir = Path(build_dir or paths.BUILD_DIR / "deliverables")
    if codecs.empty:
        return previous
    cols = ["model", "codec", "public_acc", "private_acc", "run_id", "bytes", "file_sha256"]
    singles = codecs.assign(file_sha256=codecs["file_sha256"] if "file_sha256" in codecs else None,
                            members=1)[cols + ["members"]]
    singles = singles.assign(searched=False, **{col: float("nan") for col in TTA_COLUMNS})
    many = (ensembles.reindex(columns=cols + ["members", *TTA_COLUMNS]).assign(searched=True)
            if ensembles is not None and len(ensembles) else None)
    folders = pd.concat([singles, many], ignore_index=True) if many is not None else singles.copy()
    folders["folder_bytes"] = folders["bytes"].astype(int) + code_bytes(build_dir / "code-only")
    score = "public_tta_acc" if MIRROR_TTA else "public_acc"
    weights_dir = Path(results_dir) / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    chosen = []
    for name, budget in budgets.items():
        fit = folders[folders.folder_bytes <= budget.limit]
        searched = fit[fit.searched & fit[score].notna()]
        fit, key = (searched, score) if not searched.empty else (fit[~fit.searched], "public_acc")
        if fit.empty:
            continue
        best = fit.sort_values([key, "folder_bytes"], ascending=[False, True], kind="stable").iloc[0]
        n = int(best.members)
        digests = str(best.file_sha256).split(SEP) if n > 1 else [best.file_sha256]
        members = list(zip(str(best.run_id).split(SEP), str(best.codec).split(SEP), digests)) if n > 1 else \
            [(best.run_id, best.codec, best.file_sha256)]
        names = [_committed_name(name, codec, i if n > 1 else None) for i, (_, codec, _) in enumerate(members, 1)]
        same = previous[(previous.budget == name) & (previous.run_id == best.run_id) & (previous.codec == best.codec)]
        copies = committed_files(weights_dir)  # again per budget: the one before may have rewritten them
        sizes = [int(best.bytes)] if n == 1 else [None] * n  # an older single row without a digest: its size
        srcs = [_winner_file(run_id, codec, SimpleNamespace(file_sha256=digest, bytes=size), weights_dir / committed,
                             not same.empty, best.model, name, runs_root, copies)
                for (run_id, codec, digest), size, committed in zip(members, sizes, names)]
        folder = build_dir / f"{name}-{n}"
        measured = assemble(srcs, folder)
        if measured != best.folder_bytes:
            raise ValueError(f"{folder}: the deliverable folder of {', '.join(map(str, srcs))} measures {measured} B, "
                             f"not the {best.folder_bytes} B its codec rows ({best.bytes} B of weights) predict")
        copies = [(src.read_bytes(), committed) for src, committed in zip(srcs, names)]  # a source may be a committed copy
        for old in [*weights_dir.glob(f"best-{name}.*"), *weights_dir.glob(f"best-{name}-*")]:
            old.unlink()
        for data, committed in copies:
            (weights_dir / committed).write_bytes(data)
        row = {"budget": name, "limit_bytes": budget.limit, **best.drop(["bytes", "file_sha256", "searched"]).to_dict(),
               "members": n, "target_private": budget.target}
        if not best.searched and prepared is not None:  # a codec row: TTA scored here, the plain columns its own
            acc = scored([folder / member_name(src, i if n > 1 else None) for i, src in enumerate(srcs, 1)], prepared)
            row.update({col: acc[col] for col in TTA_COLUMNS})
        elif not best.searched:  # unknown, unless this choice was scored before
            row.update({col: (same[col].iloc[-1] if not same.empty else float("nan")) for col in TTA_COLUMNS})
        row["target_met"] = bool(budget.target is not None and shipped_private(row) >= budget.target)
        chosen.append(row)
    out = pd.DataFrame(chosen, columns=list(CHOICE_COLUMNS))
    out.to_csv(table, index=False)
    return out


def committed_files(folder: Path) -> dict:
    """The committed deliverable files (``best-*`` in ``folder``, ``results/weights``) by sha256,
    ``{digest: path}``, each hashed once (the first by name where two hold the same bytes)."""
    from .measure import file_digest

    out = {}
    for p in sorted(Path(folder).glob("best-*")):
        if p.is_file():
            out.setdefault(file_digest(p), p)
    return out


def _committed_name(budget: str, codec: str, index: int | None) -> str:
    """The committed copy of a budget's chosen file: ``best-<budget>.<codec>``, an ensemble's ``best-<budget>-<i>.<codec>``."""
    return f"best-{budget}.{codec}" if index is None else f"best-{budget}-{index}.{codec}"


def code_bytes(folder: Path) -> int:
    """What a deliverable folder measures besides its weights file: ``predict.pyz`` and the folder
    itself (built in ``folder``, without weights)."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write_zipapp(folder / "predict.pyz")
    return folder_bytes(folder)


def _winner_file(run_id: str, codec: str, row, committed: Path, same_choice: bool, model: str, budget: str,
                 runs_root: Path | None, copies: dict) -> Path:
    """The file of a chosen (run, codec) whose codec row is ``row`` (its ``file_sha256``, its ``bytes``): the
    run folder's, else a committed ``best-*`` file with the row's sha256 (``copies``: :func:`committed_files`),
    else, for an older row without a digest, the committed copy of the same choice (``committed``)."""
    from .measure import codec_path, is_measured_file

    src = codec_path(run_id, codec, runs_root)
    if src.exists() and is_measured_file(src, row):
        return src
    digest = getattr(row, "file_sha256", None)
    if isinstance(digest, str) and digest:
        if digest in copies:
            return copies[digest]
    elif same_choice and committed.exists() and is_measured_file(committed, row):
        return committed
    raise FileNotFoundError(f"{src}: the {budget} budget's best file ({model}, {codec}) is measured in the "
                            f"codec table but not on this machine, nor committed in {committed.parent} (best-*, "
                            "by sha256); measure its run's codecs again here (delete its rows from codecs.csv) "
                            "to rebuild it")


def chosen_files(deliverables, results_dir: Path) -> dict:
    """``{budget: ([weights files], model label, codec)}`` of a ``choose`` table (``results/weights/best-*``;
    an ensemble's files in their order)."""
    out = {}
    for row in deliverables.itertuples(index=False):
        n = int(getattr(row, "members", 1) or 1)
        codecs = str(row.codec).split(SEP) if n > 1 else [row.codec]
        files = [Path(results_dir) / "weights" / _committed_name(row.budget, c, i if n > 1 else None)
                 for i, c in enumerate(codecs, 1)]
        out[row.budget] = (files, row.model, row.codec)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, type=Path, nargs="+", help="a weights file; several: an ensemble")
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
