"""train / evaluate / run_mqar: learning, determinism, early stopping, schedule, records, errors."""

from __future__ import annotations

import math

import pytest
import torch

from mqar_theory.data import IGNORE_INDEX, MQARData, make_mqar
from mqar_theory.model import BASECONV_FIG2_KWARGS, LanguageModel
from mqar_theory.train import TEST_SEED_OFFSET, cosine_lr_factor, evaluate, run_mqar, train
from mqar_theory.utils import resolve_device

TINY = dict(vocab_size=16, seq_len=16, num_kv_pairs=2)


@pytest.fixture(scope="module")
def tiny_data():
    return make_mqar(**TINY, num_examples=256, seed=0), make_mqar(**TINY, num_examples=128, seed=1)


def tiny_model(seed=0, **kw):
    torch.manual_seed(seed)
    return LanguageModel(TINY["vocab_size"], kw.pop("d_model", 16), TINY["seq_len"], **kw)


def strip_times(record):
    out = {k: v for k, v in record.items() if k != "seconds"}
    out["history"] = [{k: v for k, v in h.items() if k != "seconds"} for h in record["history"]]
    return out


def test_attention_learns_mqar_on_cpu():
    """Calibrated CPU config: a 2-layer attention model (d=64, init_std=0.1) on (c, N, K) = (64, 32, 4) with a
    fixed 4,000-row training set leaves the 1/K plateau within a few epochs. Seeds 0-9 all passed 0.99
    within 252 of the 504 scheduled steps (about 4-8 s on one loaded core)."""
    rec = run_mqar(
        "attention", d_model=64, n_layers=2, vocab_size=64, seq_len=32, num_kv_pairs=4, num_train=4000,
        num_test=500, init_std=0.1, lr=3e-3, batch_size=64, epochs=8, target_accuracy=0.99, seed=0,
        data_seed=0, device="cpu", progress=False,
    )  # fmt: skip
    assert rec["test_accuracy"] >= 0.9
    assert rec["train_accuracy"] >= 0.9
    assert rec["history"][0]["test_accuracy"] < 0.5  # it started on the plateau: this was learned
    assert rec["stopped_early"] and rec["steps"] < 8 * 63
    losses = rec["loss_history"]
    assert sum(losses[-10:]) / 10 < 0.25 * sum(losses[:10]) / 10


@pytest.mark.parametrize(
    "mixer, kw", [("attention", {}), ("baseconv", {"mixer_kwargs": list(BASECONV_FIG2_KWARGS)})]
)
def test_loss_decreases(tiny_data, mixer, kw):
    rec = train(tiny_model(mixer=mixer, **kw), *tiny_data, lr=3e-3, epochs=4, batch_size=32,
                target_accuracy=None, progress=False, device="cpu")
    losses = rec["loss_history"]
    assert len(losses) == rec["steps"] == 4 * 8
    assert all(math.isfinite(x) for x in losses)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1


def test_record_contents(tiny_data):
    train_data, test_data = tiny_data
    rec = train(tiny_model(), train_data, test_data, lr=1e-3, epochs=2, batch_size=100,
                target_accuracy=None, progress=False, device="cpu")
    keys = {"test_accuracy", "test_loss", "best_test_accuracy", "train_accuracy", "train_loss", "steps",
            "epochs", "stopped_early", "seconds", "device", "num_parameters", "loss_history", "history",
            "config"}
    assert keys <= set(rec)
    assert rec["steps"] == 2 * 3 and rec["epochs"] == 2.0  # 256 rows, batch 100: 3 steps/epoch (last one 56)
    assert rec["stopped_early"] is False
    assert [h["step"] for h in rec["history"]] == [3, 6]  # default: evaluate once per epoch
    assert [h["epoch"] for h in rec["history"]] == [1.0, 2.0]
    assert rec["test_accuracy"] == rec["history"][-1]["test_accuracy"]
    assert rec["best_test_accuracy"] == max(h["test_accuracy"] for h in rec["history"])
    assert rec["device"] == "cpu" and rec["seconds"] > 0
    assert rec["num_parameters"] == tiny_model().num_parameters()
    assert rec["config"]["train"]["lr"] == 1e-3
    assert rec["config"]["model"]["vocab_size"] == 16
    assert rec["config"]["train_data"]["seed"] == 0 and rec["config"]["test_data"]["seed"] == 1
    for h in rec["history"]:
        assert {"step", "epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy"} <= set(h)
        assert 0 <= h["train_accuracy"] <= 1 and 0 <= h["test_accuracy"] <= 1


def test_deterministic_on_cpu(tiny_data):
    """Same seed and data: bitwise-identical losses, metrics and weights (dropout included)."""
    runs, models = [], []
    for _ in range(2):
        model = tiny_model(dropout=0.1)
        runs.append(train(model, *tiny_data, lr=3e-3, epochs=2, batch_size=32, seed=5, progress=False,
                          target_accuracy=None, device="cpu"))
        models.append(model)
    assert strip_times(runs[0]) == strip_times(runs[1])
    for (n1, p1), (_, p2) in zip(models[0].state_dict().items(), models[1].state_dict().items(), strict=True):
        assert torch.equal(p1, p2), n1
    other = train(tiny_model(dropout=0.1), *tiny_data, lr=3e-3, epochs=2, batch_size=32, seed=6,
                  progress=False, target_accuracy=None, device="cpu")
    assert other["loss_history"] != runs[0]["loss_history"]  # the seed does matter (shuffling, dropout)


def test_dict_config_is_built_after_seeding(tiny_data):
    cfg = dict(vocab_size=16, d_model=16, seq_len=16, mixer="baseconv")
    a = train(cfg, *tiny_data, epochs=1, batch_size=64, seed=3, progress=False, device="cpu")
    b = train(cfg, *tiny_data, epochs=1, batch_size=64, seed=3, progress=False, device="cpu")
    assert strip_times(a) == strip_times(b)


def test_early_stop_at_first_evaluation_reaching_target(tiny_data):
    kw = dict(lr=3e-3, epochs=3, batch_size=32, eval_every=2, progress=False, device="cpu")
    full = train(tiny_model(), *tiny_data, target_accuracy=None, **kw)
    accs = [h["test_accuracy"] for h in full["history"]]
    assert full["steps"] == 24 and len(accs) == 12
    # a target first reached after the first evaluation and before the end
    i = next(i for i in range(1, len(accs) - 1) if accs[i] > max(accs[:i]))
    target = accs[i]
    stopped = train(tiny_model(), *tiny_data, target_accuracy=target, **kw)
    assert stopped["stopped_early"] is True
    assert stopped["steps"] == 2 * (i + 1) < full["steps"]
    assert stopped["test_accuracy"] == target >= max(accs[:i])
    assert stopped["loss_history"] == full["loss_history"][: stopped["steps"]]
    assert len(stopped["history"]) == i + 1


def test_max_steps_and_per_step_cosine_schedule(tiny_data):
    rec = train(tiny_model(), *tiny_data, lr=2e-3, epochs=10, max_steps=7, warmup_steps=2, eval_every=1,
                target_accuracy=None, progress=False, device="cpu")
    assert rec["steps"] == len(rec["loss_history"]) == 7
    lrs = [h["lr"] for h in rec["history"]]
    assert lrs == pytest.approx([2e-3 * cosine_lr_factor(s, 7, 2) for s in range(7)], rel=1e-12)
    assert lrs[0] == pytest.approx(1e-3) and lrs[1] == pytest.approx(2e-3)  # warmup, then the peak


def test_cosine_lr_factor():
    assert cosine_lr_factor(0, 100) == 1.0
    assert cosine_lr_factor(50, 100) == pytest.approx(0.5)
    assert cosine_lr_factor(99, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.99)))
    assert cosine_lr_factor(100, 100, min_lr_ratio=0.1) == pytest.approx(0.1)
    warm = [cosine_lr_factor(s, 20, warmup_steps=4) for s in range(5)]
    assert warm == pytest.approx([0.25, 0.5, 0.75, 1, 1])
    values = [cosine_lr_factor(s, 30, 5) for s in range(5, 30)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))  # decreasing after warmup


def test_evaluate_against_full_logits(tiny_data):
    model = tiny_model()
    train(model, *tiny_data, lr=3e-3, epochs=2, batch_size=32, progress=False, device="cpu")
    data = tiny_data[1]
    res = evaluate(model, data, batch_size=50)
    model.eval()
    with torch.no_grad():
        pred = model(data.inputs).argmax(-1)  # (n, N) from the full head
    mask = data.labels != IGNORE_INDEX
    assert res["num_queries"] == int(mask.sum()) == 128 * 2
    assert res["num_correct"] == int((pred[mask] == data.labels[mask]).sum())
    assert res["accuracy"] == res["num_correct"] / res["num_queries"]
    with torch.no_grad():
        ref = torch.nn.functional.cross_entropy(model(data.inputs).reshape(-1, 16), data.labels.reshape(-1))
    assert res["loss"] == pytest.approx(float(ref), rel=1e-5)
    model.train()
    evaluate(model, data)
    assert model.training  # mode restored


def test_train_eval_examples_limits_the_final_train_evaluation(tiny_data):
    train_data, test_data = tiny_data
    rec = train(tiny_model(), train_data, test_data, epochs=1, batch_size=64, train_eval_examples=10,
                progress=False, device="cpu")
    model = tiny_model()
    train(model, train_data, test_data, epochs=1, batch_size=64, progress=False, device="cpu")
    first10 = evaluate(model, MQARData(train_data.inputs[:10], train_data.labels[:10]))
    assert rec["train_accuracy"] == first10["accuracy"]


def test_run_mqar_record_and_seeds():
    rec = run_mqar("baseconv", d_model=8, n_layers=2, vocab_size=16, seq_len=16, num_kv_pairs=2, num_train=64,
                   num_test=32, epochs=1, batch_size=32, data_seed=4, mixer_kwargs=list(BASECONV_FIG2_KWARGS),
                   progress=False, device="auto")
    assert rec["device"] == str(resolve_device("auto"))
    assert rec["data_seconds"] >= 0 and rec["steps"] == 2
    assert rec["config"]["train_data"]["seed"] == 4
    assert rec["config"]["test_data"]["seed"] == 4 + TEST_SEED_OFFSET
    assert rec["config"]["train_data"]["num_examples"] == 64
    assert rec["config"]["test_data"]["num_examples"] == 32
    assert rec["config"]["model"]["mixer_kwargs"] == [{"kernel_size": 3}, {"kernel_size": None}]


def test_progress_bar_runs(tiny_data, capsys):
    train(tiny_model(), *tiny_data, epochs=1, batch_size=128, progress=True, device="cpu")


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(lr=0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(epochs=0), "epochs"),
        (dict(epochs=1.5), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(weight_decay=-0.1), "weight_decay"),
        (dict(warmup_steps=-1), "warmup_steps"),
        (dict(min_lr_ratio=2.0), "min_lr_ratio"),
        (dict(max_steps=0), "max_steps"),
        (dict(target_accuracy=1.5), "target_accuracy"),
        (dict(target_accuracy=0), "target_accuracy"),
        (dict(eval_every=0), "eval_every"),
        (dict(eval_batch_size=0), "eval_batch_size"),
        (dict(train_eval_examples=0), "train_eval_examples"),
        (dict(grad_clip=0), "grad_clip"),
        (dict(seed=-1), "seed"),
        (dict(device="tpu"), "device"),
    ],
)
def test_train_errors_name_the_argument(tiny_data, kw, name):
    with pytest.raises(ValueError, match=name):
        train(tiny_model(), *tiny_data, progress=False, **kw)


def test_train_data_errors(tiny_data):
    train_data, test_data = tiny_data
    with pytest.raises(ValueError, match="model"):
        train(torch.nn.Linear(2, 2), train_data, test_data)
    with pytest.raises(ValueError, match="train_data"):
        train(tiny_model(), (train_data.inputs, train_data.labels), test_data)
    long = make_mqar(vocab_size=16, seq_len=20, num_kv_pairs=2, num_examples=8)
    with pytest.raises(ValueError, match="test_data.*seq_len"):
        train(tiny_model(), train_data, long)
    big_vocab = make_mqar(vocab_size=32, seq_len=16, num_kv_pairs=2, num_examples=8)
    with pytest.raises(ValueError, match="train_data.*vocab_size"):
        train(tiny_model(), big_vocab, test_data)
    unlabelled = MQARData(test_data.inputs, torch.full_like(test_data.labels, IGNORE_INDEX))
    with pytest.raises(ValueError, match="test_data"):
        train(tiny_model(), train_data, unlabelled)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(tiny_model(), test_data, batch_size=0)


def test_negative_token_ids_are_rejected_once_for_all_the_data(tiny_data):
    train_data, test_data = tiny_data
    bad = MQARData(train_data.inputs.clone(), train_data.labels.clone())
    bad.inputs[3, 0] = -1
    with pytest.raises(ValueError, match="train_data.*>= 0"):
        train(tiny_model(), bad, test_data, progress=False)
    bad = MQARData(train_data.inputs.clone(), train_data.labels.clone())
    bad.labels[3, -1] = -5
    with pytest.raises(ValueError, match="train_data.*-100"):
        train(tiny_model(), bad, test_data, progress=False)


def test_forward_labelled_is_forward_with_labels(tiny_data):
    """The trainer's path (positions located on the host) gives forward's numbers bit for bit."""
    from mqar_theory.train import labelled_positions

    model = tiny_model(mixer="baseconv", mixer_kwargs=list(BASECONV_FIG2_KWARGS))
    x, y = tiny_data[0].inputs[:20], tiny_data[0].labels[:20]
    y = y.clone()
    y[0, :] = IGNORE_INDEX  # a row with no label
    positions, targets = labelled_positions(y)
    a, b = model(x, y), model.forward_labelled(x, positions, targets)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.targets, b.targets) and torch.equal(a.loss, b.loss)


class _ScalarReads(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts the operations that read a tensor back to the host (``.item()``, ``int()``, ``bool()``: all
    ``_local_scalar_dense``) or whose output size depends on values (``nonzero``, a boolean-mask index), outside
    the optimizer's own bookkeeping (its step counters live on the host by design) and while ``counting``."""

    def __init__(self):
        super().__init__()
        self.reads, self.counting = 0, True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if self.counting and (name in ("_local_scalar_dense", "nonzero", "masked_select")
                              or (name == "index" and any(getattr(t, "dtype", None) == torch.bool
                                                          for t in args[1] if t is not None))):
            self.reads += 1
        return func(*args, **(kwargs or {}))


def _reads_during_training(tiny_data, steps: int, monkeypatch) -> int:
    """Host reads issued while ``train`` runs ``steps`` steps with one evaluation at the end, not counting the
    location of the labels (its ``nonzero`` runs on the CPU copy of the labels, never on the model's device)."""
    import mqar_theory.train as train_module

    mode = _ScalarReads()
    real_positions, real_step = train_module.labelled_positions, torch.optim.AdamW.step

    def positions_uncounted(labels):
        mode.counting = False
        try:
            return real_positions(labels)
        finally:
            mode.counting = True

    def step_uncounted(self, *a, **k):
        mode.counting = False
        try:
            return real_step(self, *a, **k)
        finally:
            mode.counting = True

    monkeypatch.setattr(train_module, "labelled_positions", positions_uncounted)
    monkeypatch.setattr(torch.optim.AdamW, "step", step_uncounted)
    train_data, test_data = tiny_data
    with mode:
        train(tiny_model(), train_data, test_data, epochs=steps, batch_size=len(train_data), eval_every=steps,
              progress=False, device="cpu")
    return mode.reads


def test_training_steps_read_nothing_back_to_the_host(tiny_data, monkeypatch):
    """The host reads of a run do not grow with its number of steps: the losses and accuracies of the steps stay
    on the device until an evaluation, and a step checks and masks nothing on the device. (Counted on the CPU;
    on a GPU each of these reads would be a synchronisation.) The count would grow by several per step with
    forward's per-batch checks and boolean mask."""
    few, more = _reads_during_training(tiny_data, 2, monkeypatch), _reads_during_training(tiny_data, 6, monkeypatch)
    assert few == more, (few, more)


def test_plateau_rule_on_fake_accuracies():
    from mqar_theory.train import PLATEAU_MIN_EVALUATIONS, plateaued

    assert not plateaued([0.3] * (PLATEAU_MIN_EVALUATIONS - 1), 0.01)  # too few evaluations to judge
    assert plateaued([0.3] * PLATEAU_MIN_EVALUATIONS, 0.01)
    rising = [0.1 * i for i in range(1, 9)]  # the last quarter (2 of 8) is 0.2 above the best before it
    assert not plateaued(rising, 0.01) and plateaued(rising, 0.25)
    late = [0.3] * 9 + [0.305, 0.4, 0.3]  # 12 evaluations: the last 3 hold 0.4 > 0.3 + 0.01
    assert not plateaued(late, 0.01)
    assert plateaued([0.3] * 9 + [0.305, 0.309, 0.3], 0.01)  # 0.009 above: converged


def test_training_stops_at_a_plateau_and_says_why(tiny_data):
    """A learning rate too small to move the model: the test accuracy stays flat, so the plateau rule ends the run
    after PLATEAU_MIN_EVALUATIONS epochs of a 40-epoch cap; without the rule it runs the whole budget."""
    from mqar_theory.train import PLATEAU_MIN_EVALUATIONS

    train_data, test_data = tiny_data
    kw = dict(lr=1e-7, epochs=40, batch_size=128, progress=False, device="cpu")
    rec = train(tiny_model(), train_data, test_data, plateau_delta=0.01, **kw)
    assert rec["stop_reason"] == "plateau" and rec["stopped_early"]
    assert rec["epochs"] == PLATEAU_MIN_EVALUATIONS and rec["config"]["train"]["plateau_delta"] == 0.01
    full = train(tiny_model(), train_data, test_data, epochs=12, **{k: v for k, v in kw.items() if k != "epochs"})
    assert full["stop_reason"] == "budget" and full["epochs"] == 12 and "plateau_delta" not in full["config"]["train"]
    with pytest.raises(ValueError, match="plateau_delta"):
        train(tiny_model(), train_data, test_data, plateau_delta=0, **kw)
