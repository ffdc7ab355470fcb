"""README.md carries exactly ``bounds.constructions_markdown()`` between its constructions markers."""

from pathlib import Path

from mqar_theory.bounds import REFERENCE_SIZE, constructions_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- constructions:begin -->\n", "<!-- constructions:end -->"


def test_readme_holds_the_measured_constructions_table():
    text = README.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    inner = text.split(BEGIN, 1)[1].split(END, 1)[0]
    table = constructions_markdown()
    assert f"c = {REFERENCE_SIZE['c']}, N = {REFERENCE_SIZE['N']}" in table
    assert inner == table, "README.md is stale: paste bounds.constructions_markdown() between the markers"
