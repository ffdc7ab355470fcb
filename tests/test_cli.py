"""The command line: metrics as JSON, one-line user errors with exit status 2 (checked before any work), the
same defaults as the library, and no notebook output written into figures/ by a smoke run."""

import inspect
import json
import subprocess
import sys

import pytest

from mqar_theory import notebooks as nbs
from mqar_theory.cli import TRAIN_DEFAULTS, main
from mqar_theory.plotting import REPO_ROOT, SMOKE_DIR


def test_train_command_prints_metrics(capsys):
    assert main(["train", "--epochs", "1", "--num-train", "256", "--num-test", "64", "--vocab-size", "64",
                 "--seq-len", "32", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 4 and 0.0 <= out["test_accuracy"] <= 1.0 and out["status"] == "finished"
    assert out["config"]["model"]["mixer"] == "attention"


def test_check_notebooks_command_passes_on_the_committed_notebooks():
    assert main(["check-notebooks"]) == 0


def test_train_defaults_are_run_mqars():
    from mqar_theory.train import run_mqar

    sig = inspect.signature(run_mqar).parameters
    for flag, typ, default in TRAIN_DEFAULTS:
        name = flag[2:].replace("-", "_")
        assert sig[name].default == default and isinstance(default, typ), name
    assert sig["mixer"].default == "attention" and sig["device"].default == "auto"


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "(default: 8192)" in out and "(default: attention)" in out and "(default: 0.02)" in out


USER_ERRORS = [
    (["train", "--mixer", "hyena_xl", "--device", "cpu"], "mixer"),
    (["train", "--lr", "-1", "--device", "cpu", "--num-train", "64"], "lr"),
    (["train", "--seq-len", "33", "--device", "cpu"], "seq_len"),
    (["train", "--num-kv-pairs", "0", "--device", "cpu"], "num_kv_pairs"),
    (["train", "--device", "tpu"], "device"),
    (["notebooks", "no_such_notebook"], "no_such_notebook"),
    (["notebooks", "01", "no_such_notebook"], "no_such_notebook"),  # one good name does not hide a bad one
]


@pytest.mark.parametrize("argv,word", USER_ERRORS, ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_user_errors_print_one_line_and_exit_2(argv, word, capsys, monkeypatch):
    ran = []
    monkeypatch.setattr(nbs, "run_notebook", lambda *a, **k: ran.append(a))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and word in err
    assert not ran, "a notebook ran before the arguments were checked"


def test_a_missing_gpu_is_a_user_error(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ran = []
    monkeypatch.setattr(nbs, "run_notebook", lambda *a, **k: ran.append(a))
    for argv in (["train", "--device", "cuda"], ["notebooks", "--device", "cuda"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "CUDA is not available" in err
    assert not ran


def test_a_malformed_value_is_argparses_exit_2():
    with pytest.raises(SystemExit) as e:
        main(["train", "--epochs", "ten"])
    assert e.value.code == 2


def test_smoke_run_writes_under_build_smoke_never_figures(monkeypatch):
    import papermill

    calls = []
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda src, out, parameters, **kw: calls.append((out, parameters)))
    assert main(["notebooks", "--smoke", "01"]) == 0
    (out, params), = calls
    assert params["SMOKE"] is True and params["FIG_DIR"] == str(SMOKE_DIR / "figures")
    assert str(out).startswith(str(SMOKE_DIR))
    calls.clear()
    nbs.run_notebooks(["01"], {"SMOKE": True, "FIG_DIR": "/tmp/explicit"})
    assert calls[0][1]["FIG_DIR"] == "/tmp/explicit"  # asked for explicitly
    calls.clear()
    nbs.run_notebooks(["01"])  # the full profile: the notebook's own default (figures/)
    assert "FIG_DIR" not in calls[0][1] and str(calls[0][0]).startswith(str(REPO_ROOT / "build" / "notebooks"))


def test_smoke_kernels_run_on_one_thread_and_the_environment_is_restored(monkeypatch):
    import os

    import papermill

    seen = []
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda *a, **k: seen.append(os.environ.get("OMP_NUM_THREADS")))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    nbs.run_notebooks(["01"], {"SMOKE": True, "FIG_DIR": "/tmp/x"})
    nbs.run_notebooks(["01"])
    nbs.run_notebook(nbs.select_notebooks(["01"])[0], "/tmp/x.ipynb", threads=3)
    assert seen == ["1", None, "3"] and "OMP_NUM_THREADS" not in os.environ
    with pytest.raises(ValueError, match="threads"):
        nbs.run_notebook(nbs.select_notebooks(["01"])[0], "/tmp/x.ipynb", threads=0)


def test_console_script_and_help_answer_without_heavy_imports():
    code = ("import sys; from mqar_theory.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "heavy = [m for m in ('torch', 'sympy', 'pandas', 'papermill', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "mqar-theory" in out.stdout and "check-bounds" in out.stdout


TINY_TRAIN = ["train", "--epochs", "2", "--num-train", "256", "--num-test", "64", "--vocab-size", "64", "--seq-len",
              "32", "--device", "cpu"]


def test_train_shows_progress_lines_on_stderr_and_keeps_stdout_json(capsys, monkeypatch):
    import mqar_theory.cli as cli

    monkeypatch.setattr(cli, "PROGRESS_LINE_SECONDS", 0.0)  # every redraw tqdm makes becomes a line
    assert main(TINY_TRAIN) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # stdout is the record alone
    assert out["steps"] == 8
    lines = captured.err.splitlines()
    assert "\r" not in captured.err, "a log gets whole lines, not carriage-return redraws"
    assert len(lines) >= 2 and all(ln.startswith("train:") for ln in lines), lines
    assert "0/8" in lines[0] and "8/8" in lines[-1] and "test_acc=" in lines[-1]


def test_train_progress_lines_are_throttled_and_other_text_passes(capsys, monkeypatch):
    import mqar_theory.cli as cli

    monkeypatch.setattr(cli, "PROGRESS_LINE_SECONDS", 3600.0)
    assert main(TINY_TRAIN) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "0/8" in lines[0] and "8/8" in lines[1], lines  # the first state and the last
    sink = cli._ProgressLines(sys.stderr)
    sink.write("a warning\n")
    sink.write("printed")
    sink.write("\n")
    assert capsys.readouterr().err == "a warning\nprinted\n"


def test_train_progress_on_a_terminal_is_a_tqdm_bar_and_can_be_turned_off(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(TINY_TRAIN) == 0
    captured = capsys.readouterr()
    assert "\r" in captured.err and "8/8" in captured.err and json.loads(captured.out)["steps"] == 8
    assert main([*TINY_TRAIN, "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["steps"] == 8
