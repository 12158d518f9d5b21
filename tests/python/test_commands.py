# moecast.optimize / fit / backtest against `moecast optimize|fit|backtest --json` for the same
# inputs, and their errors.
import csv

import pytest

import moecast


def test_optimize_default_is_the_commands_json(cli):
    assert moecast.optimize() == cli("optimize", "--json")


def test_optimize_gpu_hours_with_plot(cli, tmp_path):
    py = moecast.optimize(budget=1e4, budget_unit="gpu-hours", hardware="h100-sxm", gpus=64,
                          max_params=2e10, plot=tmp_path / "py.svg")
    cmd = cli("optimize", "--budget", "1e4", "--budget-unit", "gpu-hours", "--hardware", "h100-sxm", "--gpus",
              "64", "--max-params", "2e10", "--plot", str(tmp_path / "cmd.svg"), "--json")
    assert py == cmd
    assert py["optimum"]["cost"]["gpu_hours"] <= 1e4 * (1 + 1e-9)
    assert (tmp_path / "py.svg").read_text() == (tmp_path / "cmd.svg").read_text()


def test_fit_csv_path_rows_and_output(cli, source_dir, tmp_path):
    data = source_dir / "tests/data/chinchilla-epoch.csv"
    args = ["--law", "chinchilla", "--drop-highest", "5", "--bootstrap", "0"]
    cmd = cli("fit", str(data), *args, "-o", str(tmp_path / "cmd.toml"), "--json")
    py = moecast.fit(data, law="chinchilla", drop_highest=5, bootstrap=0, output=tmp_path / "py.toml")
    assert py == cmd
    assert (tmp_path / "py.toml").read_text() == (tmp_path / "cmd.toml").read_text()
    # The same runs as Python rows: the same fit (the source and name say where they came from).
    with open(data, newline="") as f:
        rows = list(csv.DictReader(f))
    from_rows = moecast.fit(rows, law="chinchilla", drop_highest=5, bootstrap=0)
    assert from_rows["coefficients"] == cmd["coefficients"]
    assert from_rows["objective"] == cmd["objective"]
    assert from_rows["data"]["source"] == "<rows>"
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    assert moecast.fit(columns, law="chinchilla", drop_highest=5, bootstrap=0)["coefficients"] == cmd["coefficients"]


def test_backtest_is_the_commands_json(cli):
    assert moecast.backtest() == cli("backtest", "--json")


def test_errors():
    with pytest.raises(moecast.InputError) as e:
        moecast.optimize(budget_unit="hours")
    assert e.value.key == "budget_unit"
    with pytest.raises(moecast.InputError) as e:
        moecast.optimize(budget=-1.0)
    assert e.value.key == "budget"
    with pytest.raises(moecast.InputError) as e:
        moecast.fit([{"N": 1e9, "D": 2e10}], law="chinchilla")
    assert e.value.key == "loss" and str(e.value).startswith("<rows>")
    with pytest.raises(moecast.InputError) as e:
        moecast.fit([{"N": 1e9, "D": 2e10, "loss": -1}], law="chinchilla")
    assert str(e.value).startswith("<rows>:2:") and e.value.key == "loss"
    with pytest.raises(moecast.InputError):
        moecast.fit([{"N": 1e9, "D": 2e10, "loss": 3.0}], law="no-such-form")
    with pytest.raises(moecast.InputError):
        moecast.backtest(["no-such-file.csv"])
