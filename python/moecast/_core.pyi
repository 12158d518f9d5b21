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

class OptimizeRequest:
    law: str
    budget: float
    budget_unit: str
    hardware: str
    gpus: int
    family: str
    max_params: float
    max_inference_flops: float
    max_memory_gb: float
    plot: bool
    def __init__(self) -> None: ...

class FitRequest:
    law: str
    bootstrap: int
    holdout: str
    drop_highest: int
    threads: int
    huber_delta: float
    seed: int
    isoflop: bool
    law_name: str
    def __init__(self) -> None: ...

def optimize(request: OptimizeRequest) -> tuple[str, str]: ...
def fit(path: str, csv_text: str, request: FitRequest) -> tuple[str, str]: ...
def backtest(files: list[str], fit: bool) -> str: ...
