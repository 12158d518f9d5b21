"""moecast from Python: the simulator's libraries (sim/) without a process per call.

Every function returns what the matching command prints with ``--json`` (the same C++ functions
build it), and bad input raises :class:`InputError` (a ``ValueError``) with the command's message,
naming the file, line and key. Keyword arguments mirror the command-line flags with ``-`` written
``_``; model keys are set as with ``--set``: ``set={"moe.experts": 64}`` or ``moe__experts=64``.
"""

from __future__ import annotations

import json
import os
import pathlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence, Union

# A wheel carries the bundled configs and profiles in moecast/data; a build tree finds them in the
# source tree it was built from. MOECAST_HOME set by the user wins.
_DATA = pathlib.Path(__file__).with_name("data")
if _DATA.is_dir():
    os.environ.setdefault("MOECAST_HOME", str(_DATA))

from . import _core  # noqa: E402
from ._core import InputError  # noqa: E402

__all__ = [
    "InputError",
    "Model",
    "load_model",
    "count",
    "predict",
    "sweep",
    "optimize",
    "fit",
    "backtest",
    "configs_dir",
    "profiles_dir",
]

Value = Union[bool, int, float, str, Sequence[Any], Mapping[str, Any]]


@dataclass(frozen=True)
class Model:
    """A model as loaded: its name, file, format, the overrides applied and its full config."""

    name: str
    source: str
    format: str
    overrides: tuple[str, ...]
    config: dict[str, Any] = field(repr=False)


def configs_dir() -> str:
    """The folder of bundled configs (models, families, laws, validation)."""
    return _core.configs_dir()


def profiles_dir() -> str:
    """The folder of bundled hardware profiles."""
    return _core.profiles_dir()


def _toml(value: Value) -> str:
    """A Python value as the text after ``--set key=``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _option(value: Value) -> str:
    """A Python value as the text of a command-line option (``parallel={"tp": 2}`` -> ``tp=2``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={_option(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(_option(v) for v in value)
    return str(value)


def _model_args(model: Union[str, os.PathLike, Model], set: Mapping[str, Value] | None,
                overrides: Mapping[str, Value], seq_len: int | None = None) -> tuple[str, list[str]]:
    if isinstance(model, Model):
        path, out = model.source, list(model.overrides)
    else:
        path, out = os.fspath(model), []
    out += [f"{k}={_toml(v)}" for k, v in (set or {}).items()]
    out += [f"{k.replace('__', '.')}={_toml(v)}" for k, v in overrides.items()]
    if seq_len is not None:
        out.append(f"seq_len={_toml(seq_len)}")
    return path, out


def _options(given: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(k, _option(v)) for k, v in given.items() if v is not None]


def _cost_options(args: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The cost options among a function's arguments (``locals()``), named and ordered as the one
    C++ table of them lists them (``_core.cost_option_keys()``); unset ones left out."""
    return _options({k: args[k] for k in _core.cost_option_keys()})


def load_model(model: Union[str, os.PathLike], *, set: Mapping[str, Value] | None = None,
               **overrides: Value) -> Model:
    """Load a bundled model by name, a moecast TOML or a HuggingFace config.json, with overrides."""
    path, ov = _model_args(model, set, overrides)
    d = _core.load_model(path, ov)
    return Model(d["name"], d["source"], d["format"], tuple(ov), json.loads(d["config_json"]))


def count(model: Union[str, os.PathLike, Model] = "mixtral-8x7b", *, seq_len: int | None = None,
          set: Mapping[str, Value] | None = None, **overrides: Value) -> dict[str, Any]:
    """Parameters and FLOPs per token: ``moecast predict MODEL --json`` without hardware."""
    path, ov = _model_args(model, set, overrides, seq_len)
    return json.loads(_core.predict_json(path, ov, []))


def predict(model: Union[str, os.PathLike, Model] = "mixtral-8x7b", hardware: str | None = None,
            gpus: int | None = None, parallel: Mapping[str, Any] | str | None = None, *,
            seq_len: int | None = None, micro_batch: int | None = None, global_batch: int | None = None,
            precision: str | None = None, recompute: str | None = None,
            recompute_modules: Sequence[str] | str | None = None, cuda_graphs: bool | None = None,
            framework: str | None = None, states: Mapping[str, str] | str | None = None,
            fused_cross_entropy: bool | None = None, offload_modules: Sequence[str] | str | None = None,
            dispatcher: str | None = None, grouped_gemm: str | None = None,
            ep_overlap: bool | None = None, tp_overlap: bool | None = None,
            routing: str | None = None, capacity_factor: float | None = None,
            overlap: Mapping[str, float] | str | None = None, tokens: float | None = None,
            set: Mapping[str, Value] | None = None, **overrides: Value) -> dict[str, Any]:
    """The dict ``moecast predict MODEL [--hardware ...] --json`` prints.

    Without ``hardware`` it holds parameters and FLOPs; with it also memory per GPU,
    communication, the step time's breakdown, throughput, MFU and the cost of ``tokens``.
    ``parallel`` is ``{"tp": 2, "ep": 8}`` or ``"tp=2,ep=8"``.
    """
    args = dict(locals())
    path, ov = _model_args(model, set, overrides, seq_len)
    opts = _cost_options(args)
    # The profile first, so that an option without one is named as the command names it.
    opts.sort(key=lambda kv: kv[0] != "hardware")
    return json.loads(_core.predict_json(path, ov, opts))


def sweep(model: Union[str, os.PathLike, Model], grid: Mapping[str, Sequence[Value]], *,
          hardware: str | None = None, gpus: int | None = None,
          parallel: Mapping[str, Any] | str | None = None, micro_batch: int | None = None,
          global_batch: int | None = None, precision: str | None = None, recompute: str | None = None,
          recompute_modules: Sequence[str] | str | None = None, cuda_graphs: bool | None = None,
          framework: str | None = None, states: Mapping[str, str] | str | None = None,
          fused_cross_entropy: bool | None = None, offload_modules: Sequence[str] | str | None = None,
          dispatcher: str | None = None, grouped_gemm: str | None = None,
          ep_overlap: bool | None = None, tp_overlap: bool | None = None,
          routing: str | None = None, capacity_factor: float | None = None,
          overlap: Mapping[str, float] | str | None = None, tokens: float | None = None,
          threads: int = 0, skip_invalid: bool = False, set: Mapping[str, Value] | None = None,
          **overrides: Value) -> dict[str, list[Any]]:
    """Predict every combination of ``grid`` in one call; columns for ``pandas.DataFrame``.

    ``grid`` maps a model key (``"moe.experts"``, ``"seq_len"``, as ``--set`` writes it) or a
    cost option (``"gpus"``, ``"parallel"``, ``"hardware"``, ``"tokens"``, ... as in
    :func:`predict`) to its values; rows are their product, the last key varying fastest. The
    result has one column per grid key and one per predicted quantity, named by its path in
    :func:`predict`'s dict (``"params.total"``, ``"time.step_s"``, ``"training.gpu_hours"``).
    ``threads=0`` uses every hardware thread. A combination the model or the layout rejects
    raises :class:`InputError`, or with ``skip_invalid=True`` is left out with a warning.
    """
    args = dict(locals())
    path, ov = _model_args(model, set, overrides)
    cost_keys = _core.cost_option_keys()
    axes = []
    for key, values in grid.items():
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
            err = InputError(f"sweep: key '{key}': expected a list of values, got {values!r}")
            err.source, err.line, err.key = "sweep", 0, key
            raise err
        text = _option if key in cost_keys else _toml
        axes.append((key, [text(v) for v in values]))
    opts = _cost_options(args)
    r = _core.sweep(path, ov, opts, axes, threads, skip_invalid)
    out: dict[str, list[Any]] = {}
    for (key, values), index in zip(grid.items(), r["axis_index"]):
        out[key] = [values[i] for i in index]
    for name, column in r["columns"]:
        out[name] = column
    if r["skipped"]:
        warnings.warn(f"moecast.sweep: {r['skipped']} combinations left out (skip_invalid); the first: "
                      f"{r['first_skip_reason']}", stacklevel=2)
    return out


def _set_given(request: Any, given: Mapping[str, Any]) -> Any:
    for key, value in given.items():
        if value is not None:
            setattr(request, key, value)
    return request


def optimize(law: str | os.PathLike | None = None, budget: float | None = None,
             budget_unit: str | None = None, *, hardware: str | None = None, gpus: int | None = None,
             family: str | os.PathLike | None = None, max_params: float | None = None,
             max_inference_flops: float | None = None, max_memory_gb: float | None = None,
             plot: str | os.PathLike | None = None) -> dict[str, Any]:
    """The dict ``moecast optimize --json`` prints: the loss-optimal sparsity, size and tokens.

    Defaults are the command's (``abnar2025``, ``1e21`` FLOPs, the ``paper`` family, 8 GPUs);
    ``plot`` writes the command's SVG to that path.
    """
    r = _set_given(_core.OptimizeRequest(), {
        "law": os.fspath(law) if law is not None else None, "budget": budget, "budget_unit": budget_unit,
        "hardware": hardware, "gpus": gpus, "family": os.fspath(family) if family is not None else None,
        "max_params": max_params, "max_inference_flops": max_inference_flops, "max_memory_gb": max_memory_gb,
        "plot": plot is not None,
    })
    text, svg = _core.optimize(r)
    if plot is not None and svg:
        pathlib.Path(plot).write_text(svg)
    return json.loads(text)


def _csv_text(rows: Any) -> str:
    """Runs as CSV text: a mapping of columns (a DataFrame's ``to_dict("list")``) or a list of rows."""
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict("list")
    if isinstance(rows, Mapping):
        columns = list(rows)
        n = len(rows[columns[0]]) if columns else 0
        records = [[rows[c][i] for c in columns] for i in range(n)]
    else:
        records_in = list(rows)
        columns = list(records_in[0]) if records_in else []
        records = [[r[c] for c in columns] for r in records_in]
    lines = [",".join(columns)] + [",".join(repr(v) if isinstance(v, float) else str(v) for v in r)
                                   for r in records]
    return "\n".join(lines) + "\n"


def fit(data: Union[str, os.PathLike, Mapping[str, Sequence[Any]], Sequence[Mapping[str, Any]]],
        law: str | None = None, *, bootstrap: int | None = None, holdout: str | None = None,
        drop_highest: int | None = None, threads: int | None = None, huber_delta: float | None = None,
        seed: int | None = None, isoflop: bool | None = None,
        output: str | os.PathLike | None = None) -> dict[str, Any]:
    """The dict ``moecast fit DATA --json`` prints: a law fitted the Chinchilla way.

    ``data`` is a CSV path or the runs themselves (columns N, N_a, D or C, S, loss, with the
    command's aliases): a dict of columns, a list of dicts or a DataFrame. ``output`` writes the
    fitted law as TOML (the command's ``-o``), usable as ``optimize(law=output)``.
    """
    r = _set_given(_core.FitRequest(), {
        "law": law, "bootstrap": bootstrap, "holdout": holdout, "drop_highest": drop_highest,
        "threads": threads, "huber_delta": huber_delta, "seed": seed, "isoflop": isoflop,
    })
    if isinstance(data, (str, os.PathLike)):
        text, toml = _core.fit(os.fspath(data), "", r)
    else:
        text, toml = _core.fit("<rows>", _csv_text(data), r)
    if output is not None:
        pathlib.Path(output).write_text(toml)
    return json.loads(text)


def backtest(files: Sequence[Union[str, os.PathLike]] = (), *, fit: bool = False) -> dict[str, Any]:
    """The dict ``moecast backtest [FILES] [--fit] --json`` prints: published runs priced.

    Without files, the bundled ``configs/validation/*.csv``.
    """
    return json.loads(_core.backtest([os.fspath(f) for f in files], fit))
