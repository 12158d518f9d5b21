# moecast.count / predict / load_model against `moecast predict --json` for the same inputs, and
# errors raised as moecast.InputError with the command's message.
import pathlib

import pytest

import moecast


def test_count_is_the_commands_json(cli):
    assert moecast.count("mixtral-8x7b") == cli("predict", "mixtral-8x7b", "--json")
    assert moecast.count("deepseek-v3", seq_len=8192) == cli("predict", "deepseek-v3", "--seq-len", "8192", "--json")


def test_predict_without_hardware_is_count():
    assert moecast.predict("qwen3-30b-a3b") == moecast.count("qwen3-30b-a3b")


def test_predict_with_hardware_is_the_commands_json(cli):
    py = moecast.predict(
        "deepseek-v3", hardware="h100-sxm", gpus=1024, parallel={"tp": 2, "pp": 8, "vp": 4, "ep": 64},
        micro_batch=1, global_batch=8192, seq_len=4096, precision="fp8", recompute="selective",
        framework="megatron-bridge", dispatcher="deepep", ep_overlap=True, tokens=1e12)
    cmd = cli("predict", "deepseek-v3", "--hardware", "h100-sxm", "--gpus", "1024", "--parallel",
              "tp=2,pp=8,vp=4,ep=64", "--micro-batch", "1", "--global-batch", "8192", "--seq-len", "4096",
              "--precision", "fp8", "--recompute", "selective", "--framework", "megatron-bridge",
              "--dispatcher", "deepep", "--ep-overlap", "--tokens", "1e12", "--json")
    assert py == cmd
    assert py["layout"]["dp"] == 1024 // (2 * 8)  # gpus / (tp * pp)
    assert py["training"]["tokens"] == 1e12


def test_predict_list_and_mapping_options(cli):
    py = moecast.predict("mixtral-8x7b", "h100-sxm", 8, "ep=8", recompute="selective",
                         recompute_modules=["layernorm", "moe"], states={"grads": "bf16"},
                         overlap={"dp": 0.5}, routing="balanced")
    cmd = cli("predict", "mixtral-8x7b", "--hardware", "h100-sxm", "--gpus", "8", "--parallel", "ep=8",
              "--recompute", "selective", "--recompute-modules", "layernorm,moe", "--states", "grads=bf16",
              "--overlap", "dp=0.5", "--routing", "balanced", "--json")
    assert py == cmd


def test_overrides_as_set_or_keywords(cli):
    cmd = cli("predict", "qwen3-30b-a3b", "--set", "moe.experts=256", "--set", "moe.top_k=16", "--json")
    assert moecast.count("qwen3-30b-a3b", set={"moe.experts": 256, "moe.top_k": 16}) == cmd
    assert moecast.count("qwen3-30b-a3b", moe__experts=256, moe__top_k=16) == cmd
    assert cmd["model"]["moe"]["experts"] == 256
    assert cmd["sparsity"] == (256 - 16) / 256


def test_load_model_finds_bundled_models(source_dir):
    m = moecast.load_model("mixtral-8x7b")
    assert m.name == "mixtral-8x7b"
    assert pathlib.Path(m.source).resolve() == (source_dir / "configs/models/mixtral-8x7b.toml").resolve()
    assert m.format == "toml"
    assert m.config["moe"]["experts"] == 8 and m.config["moe"]["top_k"] == 2
    assert m.overrides == ()


def test_load_model_with_overrides_then_predict(cli):
    m = moecast.load_model("mixtral-8x7b", moe__experts=16)
    assert m.config["moe"]["experts"] == 16
    assert m.overrides == ("moe.experts=16",)
    cmd = cli("predict", "mixtral-8x7b", "--set", "moe.experts=16", "--set", "moe.top_k=4", "--hardware",
              "h200", "--gpus", "16", "--parallel", "ep=16", "--json")
    assert moecast.predict(m, "h200", 16, "ep=16", moe__top_k=4) == cmd


def test_hf_config_json(cli, source_dir):
    hf = source_dir / "tests/data/hf/deepseek-v3.json"
    assert moecast.count(str(hf)) == cli("predict", str(hf), "--json")
    assert moecast.load_model(hf).format == "hf:deepseek_v3"
    cmd = cli("predict", str(hf), "--set", "moe.experts=64", "--json")
    assert moecast.count(hf, moe__experts=64) == cmd


def _cli_message(stderr: str) -> str:
    prefix = "moecast: error: "
    assert stderr.startswith(prefix), stderr
    return stderr[len(prefix):].strip()


@pytest.mark.parametrize("args, call", [
    (["predict", "no-such-model"], lambda: moecast.count("no-such-model")),
    (["predict", "mixtral-8x7b", "--set", "moe.expertz=4"], lambda: moecast.count("mixtral-8x7b", moe__expertz=4)),
    (["predict", "mixtral-8x7b", "--set", "moe.top_k=9"], lambda: moecast.count("mixtral-8x7b", moe__top_k=9)),
    (["predict", "mixtral-8x7b", "--hardware", "h100-sxm", "--gpus", "8", "--parallel", "ep=3"],
     lambda: moecast.predict("mixtral-8x7b", "h100-sxm", 8, {"ep": 3})),
    (["predict", "mixtral-8x7b", "--hardware", "no-such-gpu"], lambda: moecast.predict("mixtral-8x7b", "no-such-gpu")),
    (["predict", "mixtral-8x7b", "--hardware", "h100-sxm", "--precision", "fp9"],
     lambda: moecast.predict("mixtral-8x7b", "h100-sxm", precision="fp9")),
])
def test_errors_carry_the_commands_message(cli, args, call):
    code, stderr = cli.fail(*args)
    assert code == 2
    with pytest.raises(moecast.InputError) as e:
        call()
    assert isinstance(e.value, ValueError)
    assert str(e.value) == _cli_message(stderr)
    assert e.value.key in str(e.value)


def test_error_names_the_key():
    with pytest.raises(moecast.InputError) as e:
        moecast.count("mixtral-8x7b", moe__expertz=4)
    assert e.value.key == "moe.expertz"
    assert e.value.source.endswith("mixtral-8x7b.toml (with --set)")
    with pytest.raises(ValueError) as e:
        moecast.predict("mixtral-8x7b", gpus=8)
    assert e.value.key == "hardware" and "gpus needs hardware" in str(e.value)
