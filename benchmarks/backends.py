"""Benchmark: Keras 3 training and inference speed of the seed models on each backend (prints a table).

    python benchmarks/backends.py [--rounds 2] [--images 1024]

Runs one child process per backend (TensorFlow, JAX, PyTorch) one after another, ``--rounds``
times, each timing ``model.fit`` (batch 64, after a warm-up epoch that compiles / traces) and
``model.predict`` (batch 256) of ``seed_mobilenet`` and ``seed_cnn`` on random 48x48 images.
TensorFlow runs in this project's interpreter; JAX and PyTorch in interpreters named by
``FER_JAX_PYTHON`` / ``FER_TORCH_PYTHON`` (make them with
``python3 -m venv /tmp/venv-jax && /tmp/venv-jax/bin/pip install jax keras==3.15.1 numpy==2.1.3`` and
``python3 -m venv /tmp/venv-torch && /tmp/venv-torch/bin/pip install torch==2.13.0 keras==3.15.1 numpy==2.1.3``).
Achieved GFLOP/s count 2 FLOPs per multiply-add, and 3x the forward pass for a training step.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHONS = {
    "tensorflow": sys.executable,
    "jax": os.environ.get("FER_JAX_PYTHON", "/tmp/venv-jax/bin/python"),
    "torch": os.environ.get("FER_TORCH_PYTHON", "/tmp/venv-torch/bin/python"),
}


def child(n_images: int) -> None:
    import numpy as np
    import keras

    from fer_utils import models

    rng = np.random.default_rng(0)
    for name, factory in (("seed_mobilenet", models.seed_mobilenet), ("seed_cnn", models.seed_cnn)):
        n = n_images if name == "seed_mobilenet" else n_images // 2
        x = rng.random((n, 48, 48, 1), dtype=np.float32)
        y = rng.integers(0, 7, n)
        keras.utils.set_random_seed(0)
        model = factory()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0)  # compile / trace
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        train = n / (time.perf_counter() - t0)
        model.predict(x[:256], batch_size=256, verbose=0)
        t0 = time.perf_counter()
        model.predict(x, batch_size=256, verbose=0)
        infer = n / (time.perf_counter() - t0)
        macs = models.flops(model)
        print(json.dumps({"backend": keras.backend.backend(), "model": name, "train_img_s": train,
                          "infer_img_s": infer, "train_gflops": train * macs * 6 / 1e9,
                          "infer_gflops": infer * macs * 2 / 1e9}), flush=True)


def cpu_peak_gflops() -> tuple[float, str]:
    cores = os.cpu_count() or 1
    mhz = 0.0
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz") and not mhz:
            mhz = float(line.split(":")[1])
        if line.startswith("flags") and not flags:
            flags = line
    per_cycle = 64 if "avx512f" in flags else 32 if "avx2" in flags else 8
    peak = cores * mhz / 1000 * per_cycle
    return peak, f"{cores} cores x {mhz / 1000:.2f} GHz x {per_cycle} fp32 FLOP/cycle (2 FMA units)"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.images)
        return 0
    rows = []
    for r in range(1, args.rounds + 1):
        for backend, python in PYTHONS.items():
            if not Path(python).exists():
                print(f"round {r}: {backend}: no interpreter at {python}; skipped", flush=True)
                continue
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2",
                       PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            out = subprocess.run([python, __file__, "--child", "--images", str(args.images)], env=env,
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"round {r}: {backend} failed:\n{out.stderr[-1500:]}", flush=True)
                continue
            for line in out.stdout.splitlines():
                if line.startswith("{"):
                    row = json.loads(line)
                    row["round"] = r
                    rows.append(row)
                    print(f"round {r}: {backend:10s} {row['model']:15s} train {row['train_img_s']:7.1f} img/s "
                          f"({row['train_gflops']:5.1f} GFLOP/s)  inference {row['infer_img_s']:7.1f} img/s "
                          f"({row['infer_gflops']:5.1f} GFLOP/s)", flush=True)
    peak, how = cpu_peak_gflops()
    print(f"\nCPU peak ≈ {peak:.0f} GFLOP/s fp32 ({how})\n")
    print("| backend | model | training img/s (round 1 / 2 …) | inference img/s | training GFLOP/s | inference GFLOP/s |")
    print("|---|---|---|---|---|---|")
    for backend in PYTHONS:
        for model in ("seed_mobilenet", "seed_cnn"):
            sel = [r for r in rows if r["backend"] == backend and r["model"] == model]
            if not sel:
                continue
            tr = " / ".join(f"{r['train_img_s']:.0f}" for r in sel)
            inf = " / ".join(f"{r['infer_img_s']:.0f}" for r in sel)
            print(f"| {backend} | {model} | {tr} | {inf} | {max(r['train_gflops'] for r in sel):.1f} | "
                  f"{max(r['infer_gflops'] for r in sel):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
