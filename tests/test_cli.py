import json

import pytest

from mqar_theory.cli import main


def test_train_command_prints_metrics(capsys):
    assert main(["train", "--epochs", "1", "--num-train", "256", "--num-test", "64", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 4 and 0.0 <= out["test_accuracy"] <= 1.0
    assert out["config"]["model"]["mixer"] == "attention"


def test_check_notebooks_command_passes_on_the_committed_notebooks():
    assert main(["check-notebooks"]) == 0


def test_unknown_mixer_is_a_value_error():
    with pytest.raises(ValueError, match="mixer"):
        main(["train", "--mixer", "hyena", "--epochs", "1", "--num-train", "64", "--device", "cpu"])
