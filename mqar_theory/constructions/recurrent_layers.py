"""Recurrent mixer layers for hand-set constructions (``base.MixerLayer``), and a measurement of the state they carry.

* ``LinearAttentionLayer``: u <- u + o W_O with o the causal linear attention of ``mixers.linear_attention``
  (Katharopoulos et al., arXiv 2006.16236, eq. 4-6) on q, k, v = u W_Q, u W_K, u W_V and the feature map φ = id:

      S_t = S_{t-1} + k_t v_tᵀ   (d_k × d_v),   o_t = S_tᵀ q_t = Σ_{j<=t} (q_t·k_j) v_j.

  ``forward`` is the parallel ("quadratic") form, ``mixers.linear_attention.chunked_linear_attention`` with one
  chunk of the whole stream (the kernel ``LinearAttention`` runs; φ is applied by the caller, here the identity);
  ``step`` is one token of the recurrence, the update of ``LinearAttention.step`` with one head.
* ``DeltaRuleLayer``: u <- u + o W_O with o the delta rule of ``mixers.delta_net`` (Schlag et al., arXiv
  2102.11174; DeltaNet, arXiv 2406.06484 eq. 1-2) on the same projections and a gate β_t = u_t W_β read from the
  stream (DeltaNet's β = σ(u W_β) with σ replaced by the identity, so that a hand-set W_β can give β ∈ {0, 1}
  exactly; σ reaches 0 and 1 only in the limit):

      S_t = S_{t-1}(I - β_t k_t k_tᵀ) + β_t v_t k_tᵀ   (d_v × d_k),   o_t = S_t q_t,

  run in the transposed convention S'_t = S_tᵀ of ``DeltaNet.step``: S'_t = S'_{t-1} + β_t k_t (v_t - S'_{t-1}ᵀ k_t)ᵀ,
  o_t = S'_tᵀ q_t. ``forward`` runs this recurrence as a token loop over the whole stream (the chunked UT form of
  ``mixers.delta_net.delta_rule_chunked`` needs a triangular solve, which the operator trace ``bounds.observe``
  has no rule for); ``step`` is one token of it. The tests compare both layers with the mixers' own kernels
  (``chunked_linear_attention``, ``delta_rule_recurrent``, ``delta_rule_chunked``) on random inputs.

Stored as tensors (frozen parameters, counted by the trace): W_Q (d, d_k), W_K (d, d_k), W_V (d, d_v),
W_O (d_v, d), and for the delta rule W_β (d, 1). The state after any number of tokens is S: d_k·d_v numbers.

``measure_recurrent_state(con, tokens)`` measures the state a construction's program carries by running it token
by token: every layer with ``init_state``/``step`` through them, a non-cyclic ``layers.SparseBaseConv`` through a
window of its last (largest tap) inputs on the filtered channels; it reads the size of the tensors carried from
one token to the next (never a declared number), and checks the token-by-token stream against the parallel one.
"""

from __future__ import annotations

import torch

from ..mixers.linear_attention import chunked_linear_attention
from ..utils import is_int
from .base import MixerLayer, frozen
from .layers import SparseBaseConv

__all__ = ["LinearAttentionLayer", "DeltaRuleLayer", "measure_recurrent_state"]


def _check_weights(W_Q, W_K, W_V, W_O) -> tuple[int, int, int]:
    """(d, d_k, d_v) of consistent projections, else ValueError naming the matrix."""
    for name, W in (("W_Q", W_Q), ("W_K", W_K), ("W_V", W_V), ("W_O", W_O)):
        if not (isinstance(W, torch.Tensor) and W.dim() == 2 and W.is_floating_point()):
            raise ValueError(f"{name}: must be a 2-D floating-point tensor")
    d, d_k = W_Q.shape
    if W_K.shape != (d, d_k):
        raise ValueError(f"W_K: shape {tuple(W_K.shape)} must equal W_Q's {(d, d_k)}")
    if W_V.shape[0] != d:
        raise ValueError(f"W_V: shape {tuple(W_V.shape)} must have {d} rows (the stream width)")
    d_v = W_V.shape[1]
    if W_O.shape != (d_v, d):
        raise ValueError(f"W_O: shape {tuple(W_O.shape)} must be (d_v, d) = {(d_v, d)}")
    return d, d_k, d_v


class _RecurrentLayer(MixerLayer):
    """Shared projections and step validation."""

    def __init__(self, W_Q, W_K, W_V, W_O):
        super().__init__()
        self.d_in, self.d_k, self.d_v = _check_weights(W_Q, W_K, W_V, W_O)
        self.W_Q, self.W_K, self.W_V, self.W_O = (frozen(t) for t in (W_Q, W_K, W_V, W_O))

    def init_state(self, batch: int) -> dict:
        """S' (B, d_k, d_v) = 0 before any token (``LinearAttention``'s S, ``DeltaNet``'s S' with one head)."""
        if not (is_int(batch) and batch >= 1):
            raise ValueError(f"batch={batch!r}: must be an integer >= 1")
        return {"S": self.W_Q.new_zeros(int(batch), self.d_k, self.d_v)}

    def _check_step(self, state, u_t) -> None:
        if not (isinstance(state, dict) and isinstance(state.get("S"), torch.Tensor)):
            raise ValueError("state: must be the dict returned by init_state / step")
        if not (isinstance(u_t, torch.Tensor) and u_t.dim() == 2 and u_t.shape[1] == self.d_in):
            raise ValueError(f"u_t: must be a tensor of shape (B, d={self.d_in})")
        if state["S"].shape != (u_t.shape[0], self.d_k, self.d_v):
            want = (u_t.shape[0], self.d_k, self.d_v)
            raise ValueError(f"state: S has shape {tuple(state['S'].shape)}, expected {want}")

    def extra_repr(self) -> str:
        return f"d={self.d_in}, d_k={self.d_k}, d_v={self.d_v}"


class LinearAttentionLayer(_RecurrentLayer):
    """u <- u + (Σ_{j<=t} (q_t·k_j) v_j) W_O (module docstring)."""

    def attend(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d_v)
        """o_t = S_tᵀ q_t for every t, the parallel form: one chunk of ``chunked_linear_attention``."""
        q, k, v = u @ self.W_Q, u @ self.W_K, u @ self.W_V  # (B, n, d_k), (B, n, d_k), (B, n, d_v)
        n = u.shape[1]
        return chunked_linear_attention(q[:, None], k[:, None], v[:, None], chunk_size=max(n, 1))[:, 0]

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        return u + self.attend(u) @ self.W_O

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """S' <- S' + k vᵀ, o = S'ᵀ q: u_t (B, d) -> y_t (B, d)."""
        self._check_step(state, u_t)
        q, k, v = u_t @ self.W_Q, u_t @ self.W_K, u_t @ self.W_V  # (B, d_k), (B, d_k), (B, d_v)
        S = state["S"] + k[:, :, None] * v[:, None, :]  # (B, d_k, d_v)
        o = (S * q[:, :, None]).sum(1)  # (B, d_v)
        return u_t + o @ self.W_O, {"S": S}


class DeltaRuleLayer(_RecurrentLayer):
    """u <- u + o W_O, o the delta rule with β_t = u_t W_β (module docstring)."""

    def __init__(self, W_Q, W_K, W_V, W_O, W_beta):
        super().__init__(W_Q, W_K, W_V, W_O)
        if not (isinstance(W_beta, torch.Tensor) and W_beta.shape == (self.d_in, 1) and W_beta.is_floating_point()):
            raise ValueError(f"W_beta: must be a floating-point tensor of shape (d, 1) = ({self.d_in}, 1)")
        self.W_beta = frozen(W_beta)

    def _update(self, S, q, k, v, beta):
        """One token, batched: S (B, d_k, d_v), q, k (B, 1, d_k), v (B, 1, d_v), β (B, 1, 1) -> (o (B, 1, d_v), S)."""
        err = v - k @ S  # (B, 1, d_v): v - S'ᵀ k
        S = S + k.transpose(1, 2) @ (beta * err)  # (B, d_k, d_v)
        return q @ S, S

    def attend(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d_v)
        """o_t = S'_tᵀ q_t for every t: the recurrence as a token loop over the stream."""
        q, k, v, beta = u @ self.W_Q, u @ self.W_K, u @ self.W_V, u @ self.W_beta  # (B, n, ·), beta (B, n, 1)
        S = u.new_zeros(u.shape[0], self.d_k, self.d_v)  # (B, d_k, d_v)
        outs = []
        for t in range(u.shape[1]):
            o, S = self._update(S, q[:, t : t + 1], k[:, t : t + 1], v[:, t : t + 1], beta[:, t : t + 1])
            outs.append(o)
        return torch.cat(outs, dim=1) if outs else u.new_zeros(u.shape[0], 0, self.d_v)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        return u + self.attend(u) @ self.W_O

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """S' <- S' + β k (v - S'ᵀk)ᵀ, o = S'ᵀ q: u_t (B, d) -> y_t (B, d)."""
        self._check_step(state, u_t)
        x = u_t[:, None]  # (B, 1, d)
        o, S = self._update(state["S"], x @ self.W_Q, x @ self.W_K, x @ self.W_V, x @ self.W_beta)
        return u_t + o[:, 0] @ self.W_O, {"S": S}


def _conv_stepper(layer: SparseBaseConv):
    """(init(batch), step(state, u_t)) for a non-cyclic SparseBaseConv with position-independent biases: the state
    is the last m = (largest tap) inputs on the filtered channels, (B, <= m, #channels)."""
    if layer.cyclic or layer.b1_chan.numel() or layer.b2_chan.numel():
        raise ValueError(f"layer {layer.name!r}: only a non-cyclic SparseBaseConv with position-independent biases "
                         "has a token-by-token form here")
    tap, chan, _ = layer._filter()
    m = int(tap.max()) if tap.numel() else 0
    chans = torch.unique(chan[tap > 0]) if tap.numel() else chan.new_zeros(0)

    def init(batch):
        return {"window": layer.b1.new_zeros(batch, 0, chans.numel())}

    def step(state, u_t):
        hist = state["window"]  # (B, h, #chans), h <= m
        rows = u_t.new_zeros(u_t.shape[0], hist.shape[1], u_t.shape[1])
        rows[:, :, chans] = hist
        window = torch.cat([rows, u_t[:, None]], dim=1)  # (B, h + 1, d): the taps reach no further back
        y = layer(window)[:, -1]
        keep = torch.cat([hist, u_t[:, None, chans]], dim=1)[:, max(0, hist.shape[1] + 1 - m) :]
        return y, {"window": keep}

    return init, step


def measure_recurrent_state(con, tokens) -> dict:
    """The state ``con``'s program carries from one token to the next, measured by running it token by token.

    For every layer of ``con.layers`` (a static program): a layer with ``init_state``/``step`` is stepped through
    the stream; a ``SparseBaseConv`` (non-cyclic) keeps a window of its last inputs on the channels its filter
    taps reach back to. Returns ``{"layers": [{kind, carried: {name: numel}}, ...], "matrix": numel of the
    recurrent matrices (S), "window": numel of the convolution windows, "total", "max_abs_diff"}``: the sizes are
    the largest numel each carried tensor reached per sequence (numel / batch), and ``max_abs_diff`` the largest
    difference between the token-by-token final stream and the parallel one (``run_layers``)."""
    x = con.check_tokens(tokens)
    if con.input_dependent:
        raise ValueError(f"con: {con.name} builds its program per input; the state is measured on static programs")
    B, n = x.shape
    u = con.encode(x)  # (B, n, d0)
    report = []
    for layer in con.layers:
        if hasattr(layer, "step") and hasattr(layer, "init_state"):
            init, step, kind = layer.init_state, layer.step, "recurrent"
        elif isinstance(layer, SparseBaseConv):
            (init, step), kind = _conv_stepper(layer), "convolution"
        else:
            raise ValueError(f"con: layer {type(layer).__name__} has no token-by-token form")
        state, outs, sizes = init(B), [], {}
        for t in range(n):
            y, state = step(state, u[:, t])
            outs.append(y)
            for name, s in state.items():
                if isinstance(s, torch.Tensor):
                    sizes[name] = max(sizes.get(name, 0), s.numel() // B)
        parallel = layer(u)
        u = torch.stack(outs, dim=1)  # (B, n, d)
        report.append({"kind": kind, "carried": sizes,
                       "max_abs_diff": float((u - parallel).abs().max()) if u.numel() else 0.0})
    matrix = sum(v for r in report if r["kind"] == "recurrent" for v in r["carried"].values())
    window = sum(v for r in report if r["kind"] == "convolution" for v in r["carried"].values())
    final = con.trace(x)[-1]
    return {"layers": report, "matrix": matrix, "window": window, "total": matrix + window,
            "max_abs_diff": float((u - final).abs().max()) if u.numel() else 0.0}
