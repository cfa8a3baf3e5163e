#!/usr/bin/env bash
# Creates the project venv (.venv) from the pinned lock on a fresh machine. Idempotent:
# a venv whose lock stamp matches is reused. TFX 1.16 and ml-pipelines-sdk declare
# `Requires-Python <3.11` but are pure Python and run on 3.11 (BUILD.md §9), so
# those two (requirements/lock-ignore-python.txt) go in with --no-deps --ignore-requires-python;
# everything else is pinned exactly in requirements/lock.txt and keeps its marker checks (a
# global --ignore-requires-python would let pip pick sdists that need Python 3.12).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
LOCK=requirements/lock.txt
LOCK_TFX=requirements/lock-ignore-python.txt
stamp="$VENV/.lock-$(cat "$LOCK" "$LOCK_TFX" setup.py | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi
if ! command -v "$PY" >/dev/null; then
  echo "install.sh: $PY not found; csp-tf needs Python 3.11 (set PYTHON=...)" >&2; exit 1
fi
echo "[install] creating $VENV with $($PY --version) from $LOCK (a few minutes on first run)"
"$PY" -m venv "$VENV"
# pip, quietly: this machine's pip.conf names index folders that may not exist (harmless noise).
pipq() { "$VENV/bin/pip" "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }; return "${PIPESTATUS[0]}"; }
pipq install -q --no-deps --ignore-requires-python -r "$LOCK_TFX"
pipq install -q -r "$LOCK"
pipq install -q --no-deps --no-build-isolation -e .
# the import check's TF start-up lines and Google FutureWarnings are shown only if it fails
check_log="$VENV/.import-check.log"
TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -c "import tensorflow, keras, tfx, apache_beam, tensorflow_serving.apis, csp_tf" \
  >"$check_log" 2>&1 || { cat "$check_log" >&2; echo "install.sh: import check failed" >&2; exit 1; }
rm -f "$VENV"/.lock-*; touch "$stamp"
echo "[install] done: $VENV"
