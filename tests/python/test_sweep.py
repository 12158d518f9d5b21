# moecast.sweep: every row is what predict gives for the same combination (and so what the command
# prints), columns line up for a DataFrame, and bad combinations raise or are skipped by choice.
import warnings

import pytest

import moecast


def _path(d, dotted):
    for part in dotted.split("."):
        d = d[part]
    return d


def test_counts_sweep_matches_count_row_by_row():
    grid = {"moe.experts": [8, 16, 64], "moe.top_k": [1, 2]}
    s = moecast.sweep("mixtral-8x7b", grid)
    assert s["moe.experts"] == [8, 8, 16, 16, 64, 64]  # the last key varies fastest
    assert s["moe.top_k"] == [1, 2, 1, 2, 1, 2]
    assert len({len(c) for c in s.values()}) == 1
    assert "time.step_s" not in s  # no hardware: counts only
    for i in range(6):
        one = moecast.count("mixtral-8x7b", moe__experts=s["moe.experts"][i], moe__top_k=s["moe.top_k"][i])
        for name in ("params.total", "params.active", "params.non_embedding", "params.active_non_embedding",
                     "sparsity", "granularity", "flops_per_token.forward", "flops_per_token.training",
                     "flops_per_token.six_n_active"):
            assert s[name][i] == _path(one, name), name
    assert all(isinstance(v, int) for v in s["params.total"])
    assert s["sparsity"][0] == (8 - 1) / 8


def test_cost_sweep_matches_predict_and_the_command(cli):
    grid = {"gpus": [8, 16], "parallel": [{"ep": 8}, "tp=2,ep=4"], "seq_len": [2048, 4096]}
    s = moecast.sweep("mixtral-8x7b", grid, hardware="h100-sxm", global_batch=256, tokens=1e11, threads=2)
    assert len(s["gpus"]) == 8
    for i in range(8):
        one = moecast.predict("mixtral-8x7b", "h100-sxm", s["gpus"][i], s["parallel"][i],
                              seq_len=s["seq_len"][i], global_batch=256, tokens=1e11)
        for name in ("params.total", "layout.dp", "layout.global_batch", "memory.per_gpu_bytes", "memory.fits",
                     "comm.total_bytes", "time.step_s", "time.forward_s", "time.backward_s",
                     "throughput.tokens_per_s_per_gpu", "throughput.model_tflops_per_gpu", "mfu",
                     "training.time_s", "training.gpu_hours", "training.usd"):
            assert s[name][i] == _path(one, name), (name, i)
    cmd = cli("predict", "mixtral-8x7b", "--hardware", "h100-sxm", "--gpus", "16", "--parallel", "tp=2,ep=4",
              "--seq-len", "4096", "--global-batch", "256", "--tokens", "1e11", "--json")
    assert s["time.step_s"][7] == cmd["time"]["step_s"]
    assert s["training.gpu_hours"][7] == cmd["training"]["gpu_hours"]
    assert s["memory.fits"][7] is cmd["memory"]["fits"]


def test_hardware_axis():
    s = moecast.sweep("mixtral-8x7b", {"hardware": ["h100-sxm", "h200"]}, gpus=8, parallel="ep=8")
    assert s["hardware"] == ["h100-sxm", "h200"]
    for i, hw in enumerate(s["hardware"]):
        assert s["time.step_s"][i] == moecast.predict("mixtral-8x7b", hw, 8, "ep=8")["time"]["step_s"]


def test_threads_give_the_same_rows():
    grid = {"moe.experts": [8, 16, 32, 64], "gpus": [8, 16, 32], "micro_batch": [1, 2]}
    one = moecast.sweep("mixtral-8x7b", grid, hardware="h200", parallel="ep=8", threads=1)
    many = moecast.sweep("mixtral-8x7b", grid, hardware="h200", parallel="ep=8", threads=3)
    assert one == many


def test_invalid_row_raises_naming_the_row_and_key():
    with pytest.raises(moecast.InputError) as e:
        moecast.sweep("mixtral-8x7b", {"gpus": [8, 12]}, hardware="h100-sxm", parallel="ep=8")
    assert "gpus=12" in str(e.value)
    with pytest.raises(moecast.InputError) as e:
        moecast.sweep("mixtral-8x7b", {"moe.top_k": [2, 9]})
    assert "moe.top_k=9" in str(e.value) and e.value.key


def test_skip_invalid_leaves_rows_out_with_a_warning():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = moecast.sweep("mixtral-8x7b", {"gpus": [8, 12, 16]}, hardware="h100-sxm", parallel="ep=8",
                          skip_invalid=True)
    assert s["gpus"] == [8, 16]
    assert len(w) == 1 and "1 combinations left out" in str(w[0].message) and "gpus=12" in str(w[0].message)


def test_bad_axes():
    with pytest.raises(moecast.InputError) as e:
        moecast.sweep("mixtral-8x7b", {"gpus": [8]})  # a cost option without hardware
    assert e.value.key == "gpus"
    with pytest.raises(moecast.InputError):
        moecast.sweep("mixtral-8x7b", {"moe.experts": 8})  # not a list
    with pytest.raises(moecast.InputError) as e:
        moecast.sweep("mixtral-8x7b", {"gpus": ["eight"]}, hardware="h200")
    assert e.value.key == "gpus" and "expected an integer" in str(e.value)
    with pytest.raises(moecast.InputError):
        moecast.sweep("mixtral-8x7b", {"moe.experts": []})


def test_dataframe_ready():
    pd = pytest.importorskip("pandas", reason="pandas is not installed; the columns are plain lists")
    df = pd.DataFrame(moecast.sweep("mixtral-8x7b", {"moe.experts": [8, 16]}, hardware="h200", gpus=8))
    assert list(df["moe.experts"]) == [8, 16]
