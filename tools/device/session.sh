# One device-tool call: train tools/device/jobs.txt side by side on the lent GPU, each on the longest WSD
# budget that fits before the deadline (tools/device/gpu_runs.py), then pack what came of it into $OUT.
#
# Workplace glue (the device tool lends a GPU machine with no TensorFlow and no network):
#   python3 tools/device/pack_fer.py pack data/fer2013.csv.gz .devdata/fer2013.med.xz   # 54 MB, lossless
#   pip download keras==3.15.1 namex optree (cp312, manylinux x86_64) into .whl/   (see the tool's README)
#   the tree that travels is limited to 64 MiB: bash tools/device/travel.sh stash before the call, restore after;
#   then python3 tools/device/merge.py <files_at> brings the rows, logs and weights back
#   device run: FER_GIT_COMMIT=<commit> LIMIT=520 bash tools/device/session.sh, timeout_s 570, carry [".devdata", ".whl"]
#   (a session has 900 s of device time, and the machine's start and the transfers count too)
# Lessons: the first try (2026-11-30, 13 JAX processes under MPS, conv autotuning on, a 150 s speed probe)
# finished nothing in 555 s. Now: no probe, autotuning off, 10 jobs, a deadline checked after every batch,
# budgets chosen from measured epoch times, and the collection step run whatever training did.
T0=$(date +%s); LIMIT=${LIMIT:-560}; OUT=${OUT:-/tmp/out}; mkdir -p $OUT
PY=${PY:-python3}
if [ -d .whl ]; then $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1; fi
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
export XLA_FLAGS="${XLA_FLAGS:---xla_gpu_autotune_level=0}" JAX_COMPILATION_CACHE_DIR=/tmp/jax-cache TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi -L 2>/dev/null; nproc
[ -f data/fer2013.csv.gz ] || { mkdir -p data; $PY tools/device/pack_fer.py unpack .devdata/fer2013.med.xz data/fer2013.csv.gz; }
export FER2013_PATH=$PWD/data/fer2013.csv.gz
echo "setup took $(( $(date +%s) - T0 )) s"
if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d; then echo "MPS started"; fi
DEADLINE=$(( T0 + LIMIT - ${COLLECT_S:-35} ))
$PY -u tools/device/gpu_runs.py tools/device/${JOBS_FILE:-jobs.txt} --deadline $DEADLINE --extra --profile full 2>&1 | tee $OUT/driver.log
if ! ls runs/*/log.csv >/dev/null 2>&1 && [ $(( DEADLINE - $(date +%s) )) -gt 150 ]; then
  echo "no epoch on $KERAS_BACKEND: retrying on torch"; grep -h -i -m3 error runs/_logs/*.log
  KERAS_BACKEND=torch $PY -u tools/device/gpu_runs.py tools/device/${JOBS_FILE:-jobs.txt} --deadline $DEADLINE --extra --profile full 2>&1 | tee -a $OUT/driver.log
fi
$PY tools/device/collect.py $OUT
ls -la $OUT; echo "total $(( $(date +%s) - T0 )) s"
