# Type stubs of the extension moecast._core (python/src/module.cpp). Use the functions of the
# moecast package; these are the calls they make into sim/.
from typing import Any

class InputError(ValueError):
    source: str
    line: int
    key: str

def predict_json(model: str, overrides: list[str], options: list[tuple[str, str]]) -> str: ...
def load_model(model: str, overrides: list[str]) -> dict[str, str]: ...
def sweep(
    model: str,
    overrides: list[str],
    options: list[tuple[str, str]],
    axes: list[tuple[str, list[str]]],
    threads: int,
    skip_invalid: bool,
) -> dict[str, Any]: ...
def cost_option_keys() -> list[str]: ...
def configs_dir() -> str: ...
def profiles_dir() -> str: ...
