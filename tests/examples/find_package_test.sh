#!/usr/bin/env bash
# cmake --install, then examples/cpp built as a project of its own with find_package(moecast): its
# output must be the moecast command's for the same inputs.
# Usage: find_package_test.sh BUILD_DIR SOURCE_DIR OUT MOECAST
set -euo pipefail
build=$1
src=$2
out=$3
moecast=$4
rm -rf "$out"
mkdir -p "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$out/prefix" --component dev > "$out/install.log"
test -f "$out/prefix/lib/cmake/moecast/moecastConfig.cmake" || fail "no moecastConfig.cmake"
test -f "$out/prefix/include/moecast/sim/report/report.h" || fail "no headers"
test -f "$out/prefix/share/moecast/configs/models/mixtral-8x7b.toml" || fail "no bundled models"
cmake -S "$src/examples/cpp" -B "$out/build" -DCMAKE_PREFIX_PATH="$out/prefix" -DCMAKE_BUILD_TYPE=Release \
    > "$out/configure.log" || { cat "$out/configure.log"; fail "configure"; }
cmake --build "$out/build" -j2 > "$out/build.log" || { cat "$out/build.log"; fail "build"; }
MOECAST_HOME="$out/prefix/share/moecast" "$out/build/moecast_example" mixtral-8x7b h100-sxm > "$out/example.json"
MOECAST_HOME="$out/prefix/share/moecast" "$moecast" predict mixtral-8x7b --hardware h100-sxm --gpus 8 \
    --parallel ep=8 --json > "$out/command.json"
diff "$out/example.json" "$out/command.json" > /dev/null || fail "the example's output differs from the command's"
grep -q '"step_s"' "$out/example.json" || fail "no step time"
echo "find_package example OK"
