#!/usr/bin/env bash
# Regenerate the Open Inference Protocol gRPC modules from seaway/protocol/grpc/inference.proto.
#
# Needs grpcio-tools (PYTHON defaults to the project's .venv). Two fixes are applied to protoc's
# output, and the script fails loudly if protoc's output ever stops matching them:
#   1. inference_pb2.py registers its descriptors in a private DescriptorPool instead of the
#      process-wide default one. Our messages keep Triton's full names (inference.ModelInferRequest,
#      ...) so the file stays a faithful copy of the protocol; tritonclient registers the same names
#      in the default pool, and two files defining one symbol there fail with "duplicate symbol".
#   2. inference_pb2_grpc.py imports its _pb2 by top-level name; make it package-relative.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="$root/seaway/protocol/grpc"
python="${PYTHON:-$root/.venv/bin/python}"
[[ -x "$python" ]] || python="python3"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$python" -m grpc_tools.protoc -I "$pkg" \
  --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" \
  "$pkg/inference.proto"

replace() {  # replace FILE OLD NEW: literal, exactly once, or fail
  "$python" - "$@" <<'PY'
import sys
path, old, new = sys.argv[1:4]
text = open(path, encoding="utf-8").read()
if text.count(old) != 1:
    sys.exit(f"generate_grpc.sh: expected exactly one {old!r} in {path}; protoc output changed")
open(path, "w", encoding="utf-8").write(text.replace(old, new))
PY
}

replace "$tmp/inference_pb2.py" \
  "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile(" \
  "# Seaway: a private pool, so tritonclient's identical 'inference.*' names cannot collide.
_POOL = _descriptor_pool.DescriptorPool()
DESCRIPTOR = _POOL.AddSerializedFile("
replace "$tmp/inference_pb2_grpc.py" \
  "import inference_pb2 as inference__pb2" \
  "from . import inference_pb2 as inference__pb2"

cp "$tmp/inference_pb2.py" "$tmp/inference_pb2.pyi" "$tmp/inference_pb2_grpc.py" "$pkg/"
echo "regenerated: $(cd "$root" && ls seaway/protocol/grpc/inference_pb2*)"
