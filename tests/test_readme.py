"""The README starts a newcomer: short, the two commands first, its Python example runs as printed, its links exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _python_example() -> dict:
    """The README's Python example, run as printed; its namespace."""
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    assert len(blocks[0].strip().splitlines()) <= 12
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    return namespace


def test_readme_python_example_runs_and_the_shell_example_trains_the_same_model():
    """The Python example runs as printed and solves its cell; the shell block after it, run from the repository
    root as printed (``.venv/bin/`` replaced by this environment's scripts folder), prints the same record."""
    import json
    import shlex
    import subprocess
    import sys

    record = _python_example()["record"]
    assert record["test_accuracy"] >= 0.9
    shell = next(b for b in re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S) if "mqar-theory train" in b)
    argv = shlex.split(shell.replace("\\\n", " "))
    assert argv[0] == ".venv/bin/mqar-theory", "the example names the command as installed by make"
    argv[0] = str(Path(sys.executable).parent / "mqar-theory")
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    cli = json.loads(out.stdout)
    assert cli["config"] == record["config"], "the two examples train different models"
    assert cli["test_accuracy"] == record["test_accuracy"] and cli["steps"] == record["steps"]


def test_readme_is_short_and_starts_with_the_two_commands():
    data = README.read_bytes()
    assert len(data) <= 8 * 1024, f"README.md is {len(data)} bytes; keep it under 8 KB and move details to docs/"
    text = data.decode()
    first_block = re.search(r"```(\w*)\n(.*?)```", text, flags=re.S)
    assert first_block and first_block.group(1) == "sh", "the first code block must be the shell commands"
    commands = [ln.split("#")[0].strip() for ln in first_block.group(2).splitlines()]
    assert commands == ["make figures", "make test"]
    assert "arxiv.org/abs/2312.04927" in text and "ICLR 2024" in text


def test_readme_lists_the_notebooks_in_teaching_order():
    text = README.read_text()
    names = ["00_exercises", "01_mqar_task", "02_constructions", "03_circuits", "04_figure2", "05_input_dependence",
             "06_hybrids", "07_explore", "08_state_frontier"]
    positions = [text.find(f"`{n}`") for n in names]
    assert all(p >= 0 for p in positions), dict(zip(names, positions))
    assert positions == sorted(positions)
    for path in sorted(ROOT.glob("notebooks/*.ipynb")):  # every notebook that exists is on the path
        assert f"`{path.stem}`" in text, path.name


def test_readme_links_exist_and_results_page_is_generated():
    text = README.read_text()
    links = re.findall(r"\]\(((?!https?:)[^)#]+)\)", text)
    assert "docs/results.md" in links and "docs/install.md" in links and "docs/decisions.md" in links
    for link in set(links) - {"docs/results.md"}:  # results.md is written by `make figures`, not by hand
        assert (ROOT / link).is_file(), link
    for doc in sorted(ROOT.glob("docs/*.md")):  # and the docs' own relative links
        for link in re.findall(r"\]\(((?!https?:)[^)#]+)\)", doc.read_text()):
            if link != "results.md":
                assert (doc.parent / link).is_file(), f"{doc.name}: {link}"


def test_readme_constructions_table_sits_between_its_markers():
    text = README.read_text()
    assert text.count("<!-- constructions:begin -->") == 1 and text.count("<!-- constructions:end -->") == 1
    inner = text.split("<!-- constructions:begin -->\n", 1)[1].split("<!-- constructions:end -->", 1)[0]
    rows = [ln for ln in inner.splitlines() if ln.startswith("|")]
    assert len(rows) >= 3 and rows[1].startswith("|---")

