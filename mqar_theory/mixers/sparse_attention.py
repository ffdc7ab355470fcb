"""Input-dependent sparse attention (Zoology, arXiv 2312.04927, §5, eqs. (2)-(3)): softmax attention
computed only for a few selected query rows,

    y[i] = f(u)[i] · softmax(q_i Kᵀ / sqrt(d_head) over j <= i) V W_o     (0 for unselected rows)

``SparseAttention(d_model, seq_len, selection="programmatic" | "learned" | "random", k=64)``.

**Truly sparse.** The selected rows (at most k' = min(k, n) per sequence) are gathered, their queries
projected, attended causally to all earlier keys, projected out and scattered back; unselected rows
output 0 (the block adds the residual). Keys and values are projected for every row (4d² per token),
the rest costs 4d²·k' + 4·k'·n·d per sequence: per token 4d² + 4d²k'/n + 4k'd, independent of n at
fixed k (dense attention: 8d² + 4nd). No (n × n) score matrix is ever formed.

**Selection rules** f(u)[i] ∈ {0, 1} and the budget (decisions; all causal: f[i] depends on u[0..i]):

* ``programmatic``, eq. (3): row i is a candidate iff its token occurred earlier (ids from
  ``matching``: the token ids the model passes, else equal rows of u). ``repeats="all"`` is eq. (3)
  literally. ``repeats="first"`` (default) keeps only the first repeat of each token (its second
  occurrence): a token that recurs again and again (MQAR's filler 0, function words) would otherwise
  spend the budget. On zero-filler MQAR a query is the first repeat of its key, so "first" selects
  exactly the K queries and the filler's second occurrence: the hybrid then attends where full attention
  is needed by construction. With random filler a key can recur in the filler before its query, which
  "first" then misses and "all" keeps (``mqar_theory.sweep.hybrids.selection_coverage`` measures both).
* ``learned``: score f_i = σ(u_i·w + b) (w ∈ R^d, b a scalar, init b = 1 so every row starts a
  candidate); row i is a candidate iff f_i >= ``threshold`` (0.5). The output row is scaled by f_i in
  training and evaluation alike, so the task loss reaches w through the selected rows. The paper's
  auxiliary loss L_aux = max(0, Σ_i f_i − k) / N, per sequence, averaged over the batch (N = n, the
  input length), times ``aux_weight`` (default 1, the paper's sum), is kept by every forward in training
  mode and returned by ``auxiliary_loss()``; ``LanguageModel.auxiliary_loss`` sums it over layers and
  ``train`` adds it to the training loss.
* ``random`` (the control): k' rows drawn uniformly without replacement per sequence from torch's
  global generator (seeded by ``train``), independent of u, hence causal.

Budget (``budget="causal"``, the default: a causal top-k): the paper keeps the top-k scores of a whole
sequence, which looks at future scores. We keep a candidate row iff fewer than k candidates precede it
(first come, first served), so a row's selection depends on rows 0..i only, in training and evaluation
alike; ``random`` draws exactly k'. ``selected(u, tokens)`` returns the (B, n) mask.

**The causal budget starves a learned rule** (a decision, measured on random-filler MQAR): at b = 1
every score starts at σ(1) ≈ 0.73 above the threshold, so every row is a candidate and the first k rows
of the context (the key-value pairs, never the queries) take the budget; a row that is not selected
outputs 0 whatever its score, so the task loss never reaches the score of a query row and the rule
cannot learn to pick it. ``budget="threshold"`` (``learned`` only) removes the cap: every row with
f_i >= ``threshold`` is selected, and the auxiliary loss max(0, Σf − k)/N is the budget, a soft one, as
in the paper's loss (the number selected is then a result, reported by ``mqar_theory.selection``, not a
bound). At the start every row is selected, so every row's score gets the task gradient; a row that
falls below the threshold keeps only the auxiliary gradient, and the shared w carries what the selected
query rows learned to the others. It stays causal (f_i depends on u_i only). The forward then gathers
all n rows (k' = n: no data-dependent size, hence no host synchronisation) and zeroes the unselected,
so its cost is dense attention's; ``flops_per_token`` counts it so.

``straight_through=True`` (with ``budget="threshold"``) also passes the task gradient to the rows below the
threshold: the gate is f_i for a selected row and 0 for the others in value, and its derivative in f_i is 1
for every row (the straight-through estimator: gate = 1[sel]·f + (1 − 1[sel])·(f − stop_gradient(f))), so a
query row that fell below the threshold before attention had learned anything is pushed back up once
attending would help it. The score's gradient is then the one of the soft layer y_i = f_i·o_i over every
row, the attention's the one of the hard selection (tests/test_sparse_attention.py). Measured (random-filler
MQAR, c = 64, N = 64, K = 4, d = 32, long-filter BaseConv below, k = 8, lr 3e-3, 8 epochs, one seed):
without it the scores fall below the threshold within the first epoch and nothing is selected (0.3 rows per
sequence, accuracy 0.25); with it at aux_weight 0.1 the layer keeps 16.5 rows per sequence with recall 0.9995
of the queries (accuracy 0.94), at aux_weight 1 6.6 rows with recall 0.48 (accuracy 0.25).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..utils import is_int, is_number
from .base import Mixer
from .matching import earlier_count, earlier_count_reference, match_ids
from .recurrent import check_step, zeros

__all__ = ["SparseAttention", "SELECTIONS", "BUDGETS"]

SELECTIONS = ("programmatic", "learned", "random")
BUDGETS = ("causal", "threshold")


class SparseAttention(Mixer):
    """Causal softmax attention on at most k selected rows per sequence; see the module docstring."""

    uses_positions = True  # like ``Attention``: the model adds learned absolute positions
    uses_tokens = True  # the programmatic rule matches token ids when the model passes them

    def __init__(self, d_model: int, seq_len: int, selection: str = "programmatic", k: int = 64,
                 num_heads: int = 1, repeats: str = "first", threshold: float = 0.5, aux_weight: float = 1.0,
                 bias: bool = True, budget: str = "causal", straight_through: bool = False):
        super().__init__(d_model, seq_len)
        if selection not in SELECTIONS:
            raise ValueError(f"selection={selection!r}: must be one of {SELECTIONS}")
        if not (is_int(k) and k >= 1):
            raise ValueError(f"k={k!r}: must be an integer >= 1 (rows attended per sequence)")
        if not (is_int(num_heads) and num_heads >= 1 and d_model % num_heads == 0):
            raise ValueError(f"num_heads={num_heads!r}: must be a positive divisor of d_model={d_model}")
        if repeats not in ("first", "all"):
            raise ValueError(f"repeats={repeats!r}: must be 'first' or 'all'")
        if not (is_number(threshold) and 0 < threshold < 1):
            raise ValueError(f"threshold={threshold!r}: must be a number in (0, 1)")
        if not (is_number(aux_weight) and aux_weight >= 0):
            raise ValueError(f"aux_weight={aux_weight!r}: must be a number >= 0")
        if budget not in BUDGETS:
            raise ValueError(f"budget={budget!r}: must be one of {BUDGETS}")
        if budget == "threshold" and selection != "learned":
            raise ValueError(f"budget='threshold': only for selection='learned' (the auxiliary loss is its budget), "
                             f"got selection={selection!r}")
        self.selection, self.k, self.num_heads = selection, int(k), int(num_heads)
        self.repeats, self.threshold, self.aux_weight = repeats, float(threshold), float(aux_weight)
        if not isinstance(straight_through, bool):
            raise ValueError(f"straight_through={straight_through!r}: must be True or False")
        if straight_through and budget != "threshold":
            raise ValueError("straight_through=True: needs budget='threshold' (an unselected row's output must be "
                             f"computed to pass it a gradient), got budget={budget!r}")
        self.budget, self.straight_through = budget, straight_through
        d = self.d_model
        self.Wq = nn.Linear(d, d, bias=bias)
        self.Wkv = nn.Linear(d, 2 * d, bias=bias)
        self.out_proj = nn.Linear(d, d, bias=bias)
        if selection == "learned":
            self.w = nn.Parameter(torch.zeros(d, 1))  # (d, 1) score weights
            self.b = nn.Parameter(torch.ones(1))  # score bias: σ(1) ≈ 0.73, every row starts a candidate
        self._aux = None

    # --- selection -------------------------------------------------------------------------------
    def scores(self, u: torch.Tensor) -> torch.Tensor:
        """Learned rule: f = σ(u w + b), (B, n)."""
        return torch.sigmoid(u @ self.w + self.b).squeeze(-1)

    def _candidates(self, u, tokens, f=None, reference: bool = False) -> torch.Tensor:
        if self.selection == "programmatic":
            ids = match_ids(u, tokens)
            c = (earlier_count_reference(ids.cpu()).to(u.device) if reference else earlier_count(ids))
            return c == 1 if self.repeats == "first" else c >= 1
        return (self.scores(u) if f is None else f) >= self.threshold  # learned

    def selected(self, u: torch.Tensor, tokens: torch.Tensor | None = None, f: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """(B, n) bool: the rows attention is computed for (at most k' = min(k, n) per sequence; any number with
        ``budget="threshold"``). ``f``: the learned scores when already computed."""
        B, n, _ = u.shape
        kk = self._rows(n)
        if self.selection == "random":
            idx = torch.rand(B, n, device=u.device).topk(kk, dim=1).indices
            return torch.zeros(B, n, dtype=torch.bool, device=u.device).scatter_(1, idx, True)
        cand = self._candidates(u, tokens, f)
        if self.budget == "threshold":
            return cand  # the auxiliary loss is the (soft) budget
        return cand & (cand.long().cumsum(1) <= kk)  # causal budget: first k candidates

    def _rows(self, n: int) -> int:
        """k': the rows the forward gathers, min(k, n); all n with ``budget="threshold"``."""
        return n if self.budget == "threshold" else min(self.k, n)

    def auxiliary_loss(self):
        """The last training forward's aux_weight · mean_b max(0, Σ_i f_i − k) / n (a tensor), or None."""
        return self._aux

    # --- forward ---------------------------------------------------------------------------------
    def _heads(self, x):  # (B, m, d) -> (B, H, m, dh)
        B, m, d = x.shape
        return x.view(B, m, self.num_heads, d // self.num_heads).transpose(1, 2)

    def forward(self, u: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        B, n, d = u.shape
        kk = self._rows(n)
        f = self.scores(u) if self.selection == "learned" else None  # (B, n)
        sel = self.selected(u, tokens, f)  # (B, n)
        pos = torch.arange(n, device=u.device)
        idx = torch.where(sel, pos, n + pos).topk(kk, dim=1, largest=False).indices  # (B, k') selected first
        idx = idx.sort(dim=1).values
        valid = sel.gather(1, idx)  # (B, k'): padding rows (unselected) are computed but dropped
        kv = self.Wkv(u)  # (B, n, 2d): every row is a key
        k_, v_ = self._heads(kv[..., :d]), self._heads(kv[..., d:])  # (B, H, n, dh)
        q = self._heads(self.Wq(u.gather(1, idx.unsqueeze(-1).expand(B, kk, d))))  # (B, H, k', dh)
        s = q @ k_.transpose(-1, -2) / math.sqrt(d // self.num_heads)  # (B, H, k', n)
        s = s.masked_fill(pos.view(1, 1, 1, n) > idx.view(B, 1, kk, 1), float("-inf"))  # causal: j <= i
        o = torch.softmax(s, dim=-1) @ v_  # (B, H, k', dh)
        o = self.out_proj(o.transpose(1, 2).reshape(B, kk, d))  # (B, k', d)
        gate = valid.to(u.dtype).unsqueeze(-1)  # (B, k', 1)
        if f is not None:
            fi = f.gather(1, idx).unsqueeze(-1)  # (B, k', 1)
            gate = gate * fi
            if self.straight_through:  # value 0 for unselected rows, gradient d gate / d f = 1 for every row
                gate = gate + (1 - valid.to(u.dtype).unsqueeze(-1)) * (fi - fi.detach())
            self._aux = (self.aux_weight * torch.relu(f.sum(1) - self.k).mean() / n) if self.training else None
        y = torch.zeros_like(u)
        return y.scatter(1, idx.unsqueeze(-1).expand(B, kk, d), o * gate)  # (B, n, d)

    def forward_reference(self, u: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Naive: the selection by pair loops and a running budget, then per selected row an explicit
        softmax over j <= i. (``random`` draws from the global generator exactly as ``forward`` does.)"""
        B, n, d = u.shape
        H, dh = self.num_heads, d // self.num_heads
        if self.selection == "random":
            sel = self.selected(u, tokens)
        else:
            cand = self._candidates(u, tokens, reference=True)
            sel = torch.zeros(B, n, dtype=torch.bool, device=u.device)
            for b in range(B):
                used = 0
                for i in range(n):
                    if cand[b, i] and (used < self.k or self.budget == "threshold"):
                        sel[b, i], used = True, used + 1
        f = self.scores(u) if self.selection == "learned" else None
        kv = self.Wkv(u)
        y = torch.zeros_like(u)
        for b in range(B):
            for i in range(n):
                if not sel[b, i]:
                    continue
                q = self.Wq(u[b, i])  # (d,)
                heads = []
                for h in range(H):
                    sl = slice(h * dh, (h + 1) * dh)
                    s = torch.stack([q[sl] @ kv[b, j, sl] for j in range(i + 1)]) / math.sqrt(dh)
                    p = torch.exp(s - s.max())
                    p = p / p.sum()
                    heads.append(sum(p[j] * kv[b, j, d + h * dh : d + (h + 1) * dh] for j in range(i + 1)))
                y[b, i] = self.out_proj(torch.cat(heads)) * (1.0 if f is None else f[b, i])
        return y

    # --- sizes -----------------------------------------------------------------------------------
    def state_size(self, seq_len: int | None = None) -> int | None:
        """What ``step`` carries after n tokens: the KV cache 2·n·d (a selected row attends to every earlier key),
        the budget used so far (1 number) and, for ``programmatic``, the n past input rows n·d (a row is a
        candidate by how often it occurred before: ``step`` matches rows of u, as ``forward`` without token ids;
        with ids a decoder would keep the n past ids instead). ``learned``: 2·n·d + 1; ``programmatic``:
        3·n·d + 1; ``random``: None, no causal recurrence (``no_recurrence``). (Formerly declared 2·n·d for all.)"""
        n, d = self._n(seq_len), self.d_model
        if self.selection == "random":
            return None
        return (3 if self.selection == "programmatic" else 2) * n * d + 1

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """4d² (keys and values of every row) + (4d²·k' + 4·k'·n·d)/n (queries, out_proj, scores and
        weighted sum of the k' = min(k, n) gathered rows) + 2d for the learned score; per token
        4d² + 4d²k'/n + 4k'd (+2d): the attention part does not grow with n at fixed k. With
        ``budget="threshold"`` k' = n: the forward computes every row (module docstring)."""
        n, d = self._n(seq_len), self.d_model
        kk = self._rows(n)
        flops = 4 * d * d + (4 * d * d * kk + 4 * kk * n * d) / n
        if self.selection == "learned":
            flops += 2 * d
        return flops

    def extra_repr(self) -> str:
        budget = "" if self.budget == "causal" else f", budget={self.budget!r}"
        budget += ", straight_through=True" if self.straight_through else ""
        return f"d_model={self.d_model}, selection={self.selection!r}, k={self.k}, num_heads={self.num_heads}{budget}"

    # --- recurrent form: a KV cache, the budget used, and (programmatic) the past rows ---------------
    fixed_size_state = False

    @property
    def no_recurrence(self) -> str | None:
        """Why there is no ``step``: only the random control lacks one."""
        if self.selection == "random":
            return ('SparseAttention(selection="random"): the k\' = min(k, n) rows are drawn among all n positions at '
                    "once, so whether row i is selected depends on the input length n: it has no causal "
                    "token-by-token form")
        return None

    def init_state(self, batch: int) -> dict:
        """Empty caches: keys, values (B, H, 0, d/H); budget used 0 (B,); past rows (B, 0, d) (programmatic)."""
        if self.selection == "random":
            raise NotImplementedError(self.no_recurrence)
        H, dh = self.num_heads, self.d_model // self.num_heads
        state = {"k": zeros(self, batch, H, 0, dh), "v": zeros(self, batch, H, 0, dh),
                 "used": zeros(self, batch, dtype=torch.long), "t": 0}
        if self.selection == "programmatic":
            state["rows"] = zeros(self, batch, 0, self.d_model)
        return state

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Row t is a candidate (programmatic: its row of u occurred exactly once / at least once before;
        learned: f_t = σ(u_t w + b) >= threshold), selected iff fewer than k rows were selected before (the
        causal budget; every candidate with ``budget="threshold"``); y_t = gate · softmax_{j<=t}(q_t k_jᵀ /
        sqrt(d_head)) V W_o with gate = 1[selected] (times f_t for ``learned``), 0 for an unselected row. Every
        row's key and value is cached."""
        if self.selection == "random":
            raise NotImplementedError(self.no_recurrence)
        t = check_step(self, state, u_t)
        B, d = u_t.shape
        new = {}
        if self.selection == "programmatic":
            c = (state["rows"] == u_t[:, None]).all(-1).sum(1)  # (B,): earlier rows equal to u_t, bitwise
            cand = c == 1 if self.repeats == "first" else c >= 1
            new["rows"] = torch.cat([state["rows"], u_t[:, None]], dim=1)
            gate = torch.ones_like(u_t[:, 0])
        else:
            gate = self.scores(u_t[:, None])[:, 0]  # (B,) f_t
            cand = gate >= self.threshold
        sel = cand if self.budget == "threshold" else cand & (state["used"] < self.k)  # (B,)
        kv = self.Wkv(u_t)  # (B, 2d)
        K = torch.cat([state["k"], self._heads(kv[:, None, :d])], dim=2)  # (B, H, t+1, dh)
        V = torch.cat([state["v"], self._heads(kv[:, None, d:])], dim=2)
        q = self._heads(self.Wq(u_t)[:, None])  # (B, H, 1, dh)
        p = torch.softmax(q @ K.transpose(-1, -2) / math.sqrt(d // self.num_heads), dim=-1)  # (B, H, 1, t+1)
        o = self.out_proj((p @ V).transpose(1, 2).reshape(B, d))  # (B, d)
        y = o * (gate * sel.to(u_t.dtype))[:, None]
        return y, {**new, "k": K, "v": V, "used": state["used"] + sel.long(), "t": t + 1}
