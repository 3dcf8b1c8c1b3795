# Keep what travels to a lent GPU under the device tool's 64 MiB (the packed data is 54 MB of it):
#   bash tools/device/travel.sh stash     before the device call: every committed float16 copy but the
#                                         teachers' that jobs.txt names, the soft-target files and the
#                                         figures leave the working tree (and the index) for the call
#   bash tools/device/travel.sh restore   after it: all of them back from HEAD
set -e
cd "$(dirname "$0")/../.."
PATHS="results/weights results/teachers figures"
PY=${PY:-.venv/bin/python}
case "$1" in
stash)
  [ -z "$(git status --porcelain $PATHS)" ] || { echo "uncommitted changes under $PATHS: commit them first"; exit 1; }
  KEEP=$($PY - <<'PY'
import re
from fer_utils import data, results
fp = data.load().fingerprint()
for spec in sorted(set(re.findall(r"--teacher (\S+)", open("tools/device/jobs.txt").read()))):
    row = results.find_run(spec, "results/runs.csv", "full", fp)
    if row is not None:
        print(f"results/weights/{row['run_id']}.fp16")
PY
)
  echo "keeping: $KEEP"
  for f in $(git ls-files $PATHS); do
    case " $KEEP " in *" $f "*) continue;; esac
    git rm -q --cached "$f"; rm "$f"
  done
  echo "tracked now: $(git ls-files -z | du -cb --files0-from=- | tail -1)";;
restore)
  git reset -q HEAD -- $PATHS && git checkout -- $PATHS && echo "restored: $(git ls-files $PATHS | wc -l) files";;
*) echo "usage: $0 stash|restore"; exit 2;;
esac
