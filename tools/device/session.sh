# One device-tool call: probe the backend's speed, then train every pending run in parallel on the GPU.
#
# Workplace glue (the device tool lends a GPU machine with no TensorFlow and no network):
#   python3 tools/device/pack_fer.py pack ../shared/data/fer2013/fer2013.csv.gz .devdata/fer2013.med.xz  # 54 MB
#   pip download keras==3.15.1 namex optree (cp312, manylinux x86_64) into .whl/   (see the tool's README)
#   device run: LIMIT=550 JOBS=8 OUT=$OUT bash tools/device/session.sh    carry: [".devdata", ".whl"]
# Lessons from the first try (2026-11-30): with 13 JAX processes under MPS the first epoch cost 250-330 s
# (XLA compilation with conv autotuning, plus a recompile for the last partial batch and for evaluation),
# so nothing finished in 555 s. Hence: a single-process speed probe first, autotuning off, fewer jobs,
# a deadline checked after every batch, and the collection step run even when training overruns.
T0=$(date +%s); LIMIT=${LIMIT:-550}; OUT=${OUT:-/tmp/out}; mkdir -p $OUT
PY=${PY:-python3}
if [ -d .whl ]; then $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1; fi
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
export XLA_FLAGS="${XLA_FLAGS:---xla_gpu_autotune_level=0}" JAX_COMPILATION_CACHE_DIR=/tmp/jax-cache
nvidia-smi -L 2>/dev/null; nproc
[ -f data/fer2013.csv.gz ] || $PY tools/device/pack_fer.py unpack .devdata/fer2013.med.xz data/fer2013.csv.gz
export FER2013_PATH=$PWD/data/fer2013.csv.gz
if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d; then echo "MPS started"; fi
timeout 150 $PY benchmarks/recipe_speed.py --archs irnet:1.0 cnn:1.0 --precisions float32 --images 6400 2>&1 | tee $OUT/probe.log \
  || { export KERAS_BACKEND=torch; timeout 150 $PY benchmarks/recipe_speed.py --archs irnet:1.0 --precisions float32 --images 3200 2>&1 | tee -a $OUT/probe.log; }
echo "backend: $KERAS_BACKEND; setup took $(( $(date +%s) - T0 )) s"
DL=$(( LIMIT - ($(date +%s) - T0) - ${COLLECT_S:-40} ))
# the same entry point as everywhere: the Ray sweep, JOBS tasks sharing the GPU (needs ray's wheel in .whl/,
# 79 MB: over the device tool's 64 MiB carry on its own, so a device without ray cannot run this step yet)
GPU_SHARE=$($PY -c "print(1 / ${JOBS:-8})")
timeout $(( DL + 20 )) $PY -u -m fer_utils.sweep --profile ${PROFILE:-full} --jobs ${JOBS:-8} --gpus-per-task $GPU_SHARE \
  --retries 0 --deadline-s $DL ${EXTRA} 2>&1 | tee $OUT/sweep.log
$PY tools/device/collect.py $OUT
ls -la $OUT; echo "total $(( $(date +%s) - T0 )) s"
