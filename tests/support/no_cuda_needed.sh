#!/usr/bin/env bash
# Fails when a program's or module's dynamic section NEEDs a CUDA library (libcudart, libcublas,
# libcublasLt, libcupti): those belong to the CUDA backend module (kernels/profile/cuda_backend.h),
# opened only when a command asks for the CUDA device. CONTROL, the module itself, must NEED one
# of them, so that a change in the tools' output cannot make the check pass vacuously.
# Usage: no_cuda_needed.sh HAVE_CUDA CONTROL FILE...   (skips, exit 77, without CUDA or binutils)
set -uo pipefail
have_cuda=$1
control=$2
shift 2
if [ "$have_cuda" != ON ]; then
    echo "skip: moecast is built without CUDA (MOECAST_CUDA=OFF or no nvcc): nothing links a CUDA library"
    exit 77
fi
if command -v readelf > /dev/null; then
    needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
elif command -v objdump > /dev/null; then
    needed() { objdump -p "$1" | awk '$1 == "NEEDED" { print $2 }'; }
else
    echo "skip: neither readelf nor objdump found (binutils)"
    exit 77
fi
cuda_libs='^lib(cudart|cublas|cublasLt|cupti)\.so'

control_needed=$(needed "$control") || { echo "FAIL: cannot read $control"; exit 1; }
if ! grep -qE "$cuda_libs" <<< "$control_needed"; then
    echo "FAIL: the control $control needs no CUDA library, so the check cannot see one: $control_needed"
    exit 1
fi
status=0
for f in "$@"; do
    list=$(needed "$f") || { echo "FAIL: cannot read $f"; status=1; continue; }
    if [ -z "$list" ]; then
        echo "FAIL: no NEEDED entries read from $f"
        status=1
    elif bad=$(grep -E "$cuda_libs" <<< "$list"); then
        echo "FAIL: $f needs $(echo $bad) (only the CUDA backend module may)"
        status=1
    else
        echo "ok: $f needs $(echo $list)"
    fi
done
exit $status
