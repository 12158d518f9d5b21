#!/usr/bin/env bash
# The CUDA backend module (kernels/profile/cuda_backend.h) is found next to the executable and at
# the installed location, and a missing or broken module is an environment failure (exit 4) whose
# message names the path tried and dlerror's reason. On a machine without a GPU a loaded module
# reports the device (exit 2); with one, a short profile runs (exit 0).
# The copies live in a temporary folder: a program inside the build tree would find the build's module.
# Usage: cuda_backend_test.sh HAVE_CUDA MOECAST MODULE BUILD_DIR
set -euo pipefail
have_cuda=$1
moecast=$2
module=$3
build=$4
if [ "$have_cuda" != ON ]; then
    echo "skip: moecast is built without CUDA (MOECAST_CUDA=OFF or no nvcc): there is no module to load"
    exit 77
fi
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
out=$(mktemp -d "${TMPDIR:-/tmp}/moecast-cuda-backend.XXXXXX")
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/copy"
cp "$moecast" "$out/copy/moecast"
file="$(basename "$module")"

# Runs the command, leaving its exit code in rc and its stdout and stderr in text.
run() {
    set +e
    text=$("$@" 2>&1)
    rc=$?
    set -e
}
expect_loaded() {  # $1: what was run
    case $rc in
        0) echo "ok: $1: the module loaded and a GPU profiled" ;;
        2) grep -q "no usable cuda device" <<< "$text" || fail "$1: exit 2 without the device message: $text"
           echo "ok: $1: the module loaded; no GPU here: $text" ;;
        *) fail "$1: exit $rc, expected 0 (a GPU) or 2 (none): $text" ;;
    esac
}
profile=(profile --device cuda -q --reps 3 --max-seconds 1)

# A copy of the program outside the build tree, without the module: exit 4, the path and the reason.
run "$out/copy/moecast" "${profile[@]}" -o "$out/never.toml"
[ "$rc" -eq 4 ] || fail "without the module: exit $rc, expected 4: $text"
grep -qF "$out/copy/$file: cannot open shared object file" <<< "$text" ||
    fail "without the module: the message does not name $out/copy/$file and dlerror's reason: $text"
echo "ok: without the module: $text"

# A file of that name that is no shared object: exit 4, that path and the loader's reason.
echo "not a shared object" > "$out/copy/$file"
run "$out/copy/moecast" "${profile[@]}" -o "$out/never.toml"
[ "$rc" -eq 4 ] || fail "with a broken module: exit $rc, expected 4: $text"
grep -qF "$out/copy/$file: " <<< "$text" || fail "with a broken module: the message does not name it: $text"
echo "ok: with a broken module: $text"

# The module next to the program.
cp "$module" "$out/copy/$file"
run "$out/copy/moecast" "${profile[@]}" -o "$out/copy.toml"
expect_loaded "module next to the program"

# The installed program finds the installed module (<prefix>/<libdir>/moecast).
cmake --install "$build" --prefix "$out/prefix" --component cli > "$out/install.log" ||
    fail "cmake --install --component cli: $(cat "$out/install.log")"
installed=$(find "$out/prefix" -path "*/moecast/$file" | head -n 1)
[ -n "$installed" ] || fail "cmake --install put no $file under a moecast folder: $(cat "$out/install.log")"
[ -x "$out/prefix/bin/moecast" ] || fail "cmake --install put no bin/moecast: $(cat "$out/install.log")"
echo "ok: installed $installed"
run "$out/prefix/bin/moecast" "${profile[@]}" -o "$out/installed.toml"
expect_loaded "installed program"
