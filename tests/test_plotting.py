import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mqar_theory.plotting import savefig  # noqa: E402


def test_savefig_writes_png_and_pdf_with_identical_bytes_each_time(tmp_path):
    def draw():
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3], [1, 4, 9])
        return fig

    a = savefig(draw(), "curve", tmp_path / "a")
    b = savefig(draw(), "curve", tmp_path / "b")
    assert [p.suffix for p in a] == [".png", ".pdf"]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
    with pytest.raises(ValueError, match="name"):
        savefig(draw(), "curve.png", tmp_path)
    plt.close("all")
