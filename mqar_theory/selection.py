"""What a sparse-attention layer selects (Zoology, arXiv 2312.04927, §5, eq. (2)), against what MQAR needs.

On MQAR the rows that need recall are the query positions: the label (the key's value) sits at the query, so the
labelled positions of ``MQARData.labels`` are exactly the queries. For each ``SparseAttention`` layer of a model
and a data set, ``selection_stats`` runs the model in evaluation mode, takes the (B, N) mask the layer computed
attention for (``SparseAttention.selected`` on the layer's own input, as its forward does) and reports

* ``rows_per_sequence``: selected rows per sequence (mean), beside ``k``, the layer's budget;
* ``precision``: the fraction of selected rows that are queries (None when nothing was selected);
* ``recall``: the fraction of queries that were selected;
* ``queries_per_sequence``: labelled rows per sequence (mean; K on MQAR).

``random`` layers are left out (their draw is not the forward's and would move the global generator). A selected
row's output is 0 unless the layer selected it, so recall bounds what the layer can recall: a query it skips is
answered from the residual stream alone.
"""

from __future__ import annotations

import torch

from .data import IGNORE_INDEX, MQARData
from .mixers.sparse_attention import SparseAttention
from .model import LanguageModel
from .utils import is_int

__all__ = ["selection_stats", "measured_layers"]


def measured_layers(model: LanguageModel) -> list[tuple[int, SparseAttention]]:
    """(block index, layer) of every non-random ``SparseAttention`` of ``model``, in depth order."""
    return [(i, block.mixer) for i, block in enumerate(model.blocks)
            if isinstance(block.mixer, SparseAttention) and block.mixer.selection != "random"]


def selection_stats(model: LanguageModel, data: MQARData, *, batch_size: int = 256) -> list[dict]:
    """One dict per measured sparse layer (``measured_layers``; module docstring): ``layer, selection, budget,
    k, rows_per_sequence, queries_per_sequence, precision, recall`` over ``data``. [] when the model has none.
    Restores the model's train/eval mode and leaves the global random generator untouched."""
    if not isinstance(model, LanguageModel):
        raise ValueError(f"model: must be a LanguageModel, got {type(model).__name__}")
    if not isinstance(data, MQARData):
        raise ValueError(f"data: must be MQARData, got {type(data).__name__}")
    if not (is_int(batch_size) and batch_size >= 1):
        raise ValueError(f"batch_size={batch_size!r}: must be an integer >= 1")
    layers = measured_layers(model)
    if not layers:
        return []
    masks: dict[int, torch.Tensor] = {}

    def capture(index):
        def hook(module, args, kwargs):
            u = args[0] if args else kwargs["u"]  # (B, N, d)
            masks[index] = module.selected(u, kwargs.get("tokens", args[1] if len(args) > 1 else None))
        return hook

    handles = [layer.register_forward_pre_hook(capture(i), with_kwargs=True) for i, layer in layers]
    device = next(model.parameters()).device
    hit = {i: 0 for i, _ in layers}
    chosen = {i: 0 for i, _ in layers}
    queries = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(data), batch_size):
                x = data.inputs[start : start + batch_size].to(device)  # (b, N)
                q = data.labels[start : start + batch_size].to(device) != IGNORE_INDEX  # (b, N) query rows
                masks.clear()
                model(x)
                queries += int(q.sum())
                for i, _ in layers:
                    chosen[i] += int(masks[i].sum())
                    hit[i] += int((masks[i] & q).sum())
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    n = len(data)
    return [{"layer": i, "selection": layer.selection, "budget": layer.budget, "k": layer.k,
             "rows_per_sequence": chosen[i] / n, "queries_per_sequence": queries / n,
             "precision": hit[i] / chosen[i] if chosen[i] else None,
             "recall": hit[i] / queries if queries else None} for i, layer in layers]
