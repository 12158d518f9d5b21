#!/usr/bin/env bash
# Fails when a C++ or CUDA source differs from what clang-format makes of it (.clang-format at the
# repository root). Run by ctest as format.check; skips (77) without clang-format or outside git.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v clang-format > /dev/null || { echo "format: clang-format not found (scripts/setup installs it)"; exit 77; }
files=$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' 2> /dev/null) || { echo "format: not a git checkout"; exit 77; }
[ -n "$files" ] || { echo "format: no sources listed by git"; exit 77; }
if ! echo "$files" | xargs clang-format --style=file --dry-run --Werror; then
    echo "format: run  git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' | xargs clang-format -i"
    exit 1
fi
echo "format: $(echo "$files" | wc -l) files formatted"
