# Shared fixtures: the moecast command of the same build (MOECAST_CLI, set by ctest), run with
# --json, so every binding is checked against the command's output for the same inputs.
import json
import os
import pathlib
import subprocess

import pytest


def _cli_path() -> str:
    path = os.environ.get("MOECAST_CLI")
    if not path or not pathlib.Path(path).is_file():
        pytest.fail("MOECAST_CLI must name the built moecast command (ctest sets it)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def cli():
    """cli(*args) -> the JSON the command prints; cli.fail(*args) -> (exit code, stderr)."""
    path = _cli_path()

    class Cli:
        def __call__(self, *args):
            out = subprocess.run([path, *args], capture_output=True, text=True, check=False)
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout)

        def fail(self, *args):
            out = subprocess.run([path, *args], capture_output=True, text=True, check=False)
            return out.returncode, out.stderr

        path_ = path

    return Cli()


@pytest.fixture(scope="session")
def source_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("MOECAST_SOURCE", pathlib.Path(__file__).resolve().parents[2]))
