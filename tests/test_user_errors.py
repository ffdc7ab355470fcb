"""Bad input gets a ValueError naming the argument and the rule, at the call, never a deep torch/numpy error or a
silent wrong answer. One test per class of mistake: mixer inputs, constructor arguments (numpy scalars accepted
everywhere, bools nowhere), MQAR configurations, the generator's and the oracle's arguments, devices that are not
there, and training that diverges."""

import math
import warnings

import numpy as np
import pytest
import torch

from mqar_theory.data import MQARConfig, MQARData, make_ar, make_mqar, mqar_oracle, query_slot_probabilities
from mqar_theory.mixers import MIXERS, Attention, BaseConv, LinearBiasAttention, Mixer
from mqar_theory.model import LanguageModel
from mqar_theory.train import run_mqar, train
from mqar_theory.utils import resolve_device

OWN_MIXERS = [Attention, BaseConv, LinearBiasAttention]


def test_every_registered_mixer_is_a_validating_mixer():
    assert all(issubclass(cls, Mixer) for cls in MIXERS.values())


@pytest.mark.parametrize("cls", OWN_MIXERS, ids=lambda c: c.__name__)
def test_mixer_inputs_of_the_wrong_shape_dtype_or_length(cls):
    m = cls(8, 6)
    good = torch.randn(2, 6, 8)
    assert m(good).shape == (2, 6, 8) and m(good[:, :1]).shape == (2, 1, 8)
    cases = [
        (torch.randn(6, 8), "rank 3"),  # rank
        (torch.randn(2, 6, 7), "d_model=8"),  # width
        (torch.randn(2, 7, 8), "seq_len=6"),  # longer than seq_len
        (torch.randn(2, 0, 8), "1 <= n"),  # empty
        (torch.ones(2, 6, 8, dtype=torch.long), "floating-point"),  # token ids fed to a mixer
        (torch.randn(2, 6, 8, dtype=torch.float64), "dtype"),  # float64 input, float32 weights
        (np.zeros((2, 6, 8), dtype=np.float32), "torch.Tensor"),
    ]
    for u, words in cases:
        with pytest.raises(ValueError, match=words):
            m(u)


@pytest.mark.parametrize("cls", OWN_MIXERS, ids=lambda c: c.__name__)
def test_mixer_constructor_arguments(cls):
    for d, n, name in [(8, -1, "seq_len"), (8, 0, "seq_len"), (0, 6, "d_model"), (8.0, 6, "d_model"),
                       (True, 6, "d_model"), (8, 6.5, "seq_len")]:
        with pytest.raises(ValueError, match=name):
            cls(d, n)
    m = cls(np.int64(8), np.int32(6))  # numpy integers are integers everywhere
    assert m.d_model == 8 and type(m.d_model) is int and m(torch.randn(1, 6, 8)).shape == (1, 6, 8)


def test_numpy_scalars_are_accepted_everywhere_and_bools_nowhere():
    assert Attention(8, 6, num_heads=np.int64(2)).num_heads == 2
    assert BaseConv(8, 6, kernel_size=np.int64(3)).kernel_size == 3
    with pytest.raises(ValueError, match="num_heads"):
        Attention(8, 6, num_heads=True)
    with pytest.raises(ValueError, match="kernel_size"):
        BaseConv(8, 6, kernel_size=2.0)
    model = LanguageModel(np.int64(16), np.int64(8), np.int64(8), n_layers=np.int64(1), init_std=np.float32(0.1),
                          dropout=np.float64(0.0))
    assert model.vocab_size == 16 and model.n_layers == 1
    cfg = MQARConfig(vocab_size=np.int64(16), seq_len=np.int64(8), num_kv_pairs=np.int64(2),
                     power_a=np.float32(0.5), num_examples=np.int64(3), seed=np.int64(1))
    assert make_mqar(cfg).inputs.shape == (3, 8)
    assert make_ar(vocab_size=np.int64(8), seq_len=np.int64(7), num_examples=np.int64(2)).inputs.shape == (2, 7)
    with pytest.raises(ValueError, match="vocab_size"):
        MQARConfig(vocab_size=True)
    with pytest.raises(ValueError, match="init_std"):
        LanguageModel(16, 8, 8, init_std=float("nan"))


@pytest.mark.parametrize("kw,field", [
    (dict(power_a=1.5), "power_a"),  # a > 1 would favour the latest slots: outside the paper's law
    (dict(power_a=math.inf), "power_a"),
    (dict(power_a=True), "power_a"),
    (dict(vocab_size=2**40), "vocab_size"),
    (dict(vocab_size=10**30), "vocab_size"),
    (dict(num_examples=10**12), "num_examples"),  # a typo, not a MemoryError deep in numpy
    (dict(seq_len=np.float64(64)), "seq_len"),
])
def test_mqar_config_rejects_values_outside_their_meaning(kw, field):
    with pytest.raises(ValueError, match=field):
        MQARConfig(**kw)


def test_power_a_range_ends():
    assert make_mqar(power_a=1.0, num_examples=2).inputs.shape == (2, 64)  # uniform
    assert make_mqar(power_a=1e-9, num_examples=2).inputs.shape == (2, 64)
    with pytest.raises(ValueError, match="power_a"):
        query_slot_probabilities(4, 2.0)
    with pytest.raises(ValueError, match="num_slots"):
        query_slot_probabilities(0, 0.5)


def test_make_mqar_arguments():
    x = make_mqar(num_examples=2).inputs
    for bad in (x, {"seq_len": 32}, 64):
        with pytest.raises(ValueError, match="config: must be an MQARConfig"):
            make_mqar(bad)
    with pytest.raises(ValueError, match="seqlen"):
        make_mqar(seqlen=32)  # a misspelt field is named, not a TypeError from the dataclass
    with pytest.raises(ValueError, match="vocab_size"):
        make_ar(vocab_size=2**20)


def test_mqar_oracle_arguments():
    assert mqar_oracle([1, 2, 1]).tolist() == [-1, -1, 2]
    assert mqar_oracle(np.array([[1, 2, 1]], dtype=np.int32)).shape == (1, 3)
    cases = [(torch.tensor(3), "shape"), (torch.tensor([1.0, 2.0, 1.0]), "integer"),
             (torch.tensor([True, False]), "integer"), (torch.zeros(2, 2, 2, dtype=torch.long), "shape"),
             (torch.zeros(2, 0, dtype=torch.long), "N >= 1"), ([[1, 2], [3]], "tokens"), ("abc", "tokens")]
    for tokens, words in cases:
        with pytest.raises(ValueError, match=words):
            mqar_oracle(tokens)


def test_devices_that_are_not_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    for dev in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device(dev)
    for dev in ("tpu", "gpu", 3):
        with pytest.raises(ValueError, match="device"):
            resolve_device(dev)
    data = make_mqar(vocab_size=16, seq_len=8, num_kv_pairs=2, num_examples=4)
    model = LanguageModel(16, 8, 8, n_layers=1)
    for call in (lambda: model.to("cuda"), lambda: model.to(device="cuda"), lambda: model.cuda(),
                 lambda: Attention(8, 6).to("cuda"), lambda: data.to("cuda"),
                 lambda: train(model, data, data, device="cuda", progress=False),
                 lambda: run_mqar(vocab_size=16, seq_len=8, num_kv_pairs=2, num_train=8, num_test=4,
                                  device="cuda", progress=False)):
        with pytest.raises(ValueError, match="device"):
            call()
    assert model.to(torch.float64).embedding.weight.dtype == torch.float64  # other .to forms still work
    assert isinstance(data.to("cpu"), MQARData)


def test_a_diverging_run_is_recorded_as_diverged_and_stops():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = run_mqar(vocab_size=16, seq_len=8, num_kv_pairs=2, num_train=64, num_test=16, batch_size=8,
                     d_model=8, lr=1e6, epochs=20, device="cpu", progress=False)
    assert r["status"] == "diverged" and r["diverged_at_step"] >= 1
    assert r["steps"] < 20 * 8  # stopped at the first evaluation after the loss went non-finite
    assert not math.isfinite(r["loss_history"][r["diverged_at_step"] - 1])
    assert any(issubclass(w.category, RuntimeWarning) and "diverged" in str(w.message) for w in caught)
    ok = run_mqar(vocab_size=16, seq_len=8, num_kv_pairs=2, num_train=16, num_test=8, d_model=8, epochs=1,
                  device="cpu", progress=False)
    assert ok["status"] == "finished" and ok["diverged_at_step"] is None
