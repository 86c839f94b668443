#!/usr/bin/env bash
# One-time, idempotent set-up of the project's Python side:
#   .venv/ with torch==2.11.0 (libtorch for tch 0.24) and onnxruntime==1.31.1 (for ort load-dynamic),
#   .venv/libtorch      -> the torch package folder (LIBTORCH for the build, see .cargo/config.toml),
#   .venv/onnxruntime.so -> libonnxruntime.so.1.31.1 from the onnxruntime wheel,
#   onnx==1.23.2 for onnx.checker in the exporter tests,
#   openai==3.57.0 and tritonclient[http]==2.73.0, the third-party clients albert-serve is tested with;
#   .venv-checks/ with schemathesis and openapi-spec-validator for albert-serve's OpenAPI document.
# Only the package registries are used. Fast (a stamp check) when already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
REQUIREMENTS="torch==2.11.0 onnxruntime==1.31.1 onnx==1.23.2 openai==3.57.0 tritonclient[http]==2.73.0"
CHECKS_REQUIREMENTS="schemathesis==4.32.5 openapi-spec-validator==0.9.0"
STAMP="$VENV/.albert-setup"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$REQUIREMENTS $CHECKS_REQUIREMENTS" && -e "$VENV/libtorch/lib/libtorch.so" && -e "$VENV/onnxruntime.so" && -x "$ROOT/.venv-checks/bin/schemathesis" ]]; then
    exit 0
fi

echo "setup: creating $VENV with $REQUIREMENTS (about 2.7 GB to download the first time)" >&2
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $REQUIREMENTS

SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
ln -sfn "$SITE/torch" "$VENV/libtorch"
ORT_LIB="$(ls "$SITE"/onnxruntime/capi/libonnxruntime.so.* | head -n 1)"
ln -sfn "$ORT_LIB" "$VENV/onnxruntime.so"

# The checkers of albert-serve's OpenAPI document, in a venv of their own (their pins are theirs).
CHECKS_VENV="$ROOT/.venv-checks"
if [[ ! -x "$CHECKS_VENV/bin/schemathesis" ]]; then
    "$PYTHON" -m venv "$CHECKS_VENV"
    # shellcheck disable=SC2086
    "$CHECKS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check $CHECKS_REQUIREMENTS
fi

echo "$REQUIREMENTS $CHECKS_REQUIREMENTS" > "$STAMP"
echo "setup: done (libtorch: $VENV/libtorch, onnxruntime: $ORT_LIB)" >&2
