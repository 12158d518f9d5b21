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
            dispatcher: str | None = None, ep_overlap: bool | None = None, tp_overlap: bool | None = None,
            routing: str | None = None, capacity_factor: float | None = None,
            overlap: Mapping[str, float] | str | None = None, tokens: float | None = None,
            set: Mapping[str, Value] | None = None, **overrides: Value) -> dict[str, Any]:
    """The dict ``moecast predict MODEL [--hardware ...] --json`` prints.

    Without ``hardware`` it holds parameters and FLOPs; with it also memory per GPU,
    communication, the step time's breakdown, throughput, MFU and the cost of ``tokens``.
    ``parallel`` is ``{"tp": 2, "ep": 8}`` or ``"tp=2,ep=8"``.
    """
    path, ov = _model_args(model, set, overrides, seq_len)
    opts = _options({
        "hardware": hardware, "gpus": gpus, "parallel": parallel, "micro_batch": micro_batch,
        "global_batch": global_batch, "precision": precision, "recompute": recompute,
        "recompute_modules": recompute_modules, "cuda_graphs": cuda_graphs, "framework": framework,
        "states": states, "fused_cross_entropy": fused_cross_entropy,
        "offload_modules": offload_modules, "dispatcher": dispatcher, "ep_overlap": ep_overlap,
        "tp_overlap": tp_overlap, "routing": routing, "capacity_factor": capacity_factor,
        "overlap": overlap, "tokens": tokens,
    })
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
          dispatcher: str | None = None, ep_overlap: bool | None = None, tp_overlap: bool | None = None,
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
    opts = _options({
        "hardware": hardware, "gpus": gpus, "parallel": parallel, "micro_batch": micro_batch,
        "global_batch": global_batch, "precision": precision, "recompute": recompute,
        "recompute_modules": recompute_modules, "cuda_graphs": cuda_graphs, "framework": framework,
        "states": states, "fused_cross_entropy": fused_cross_entropy,
        "offload_modules": offload_modules, "dispatcher": dispatcher, "ep_overlap": ep_overlap,
        "tp_overlap": tp_overlap, "routing": routing, "capacity_factor": capacity_factor,
        "overlap": overlap, "tokens": tokens,
    })
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
