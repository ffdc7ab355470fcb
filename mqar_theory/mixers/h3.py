"""H3, "Hungry Hungry Hippos" (Fu, Dao et al., arXiv 2212.14052, §3.1, Algorithm 1), H = d / head_dim heads:

    q, k, v = u W_q + b_q, u W_k + b_k, u W_v + b_v        # (B, N, d) each
    y = (q ⊙ SSM_diag(SSM_shift(k) ⊙ v)) W_out + b_out      # head_dim 1

With head_dim p > 1 (H3 §3.1's multi-head form, as the official ``H3``, HazyResearch/zoology
``zoology/mixers/h3/h3.py``): channel h·p + i of q, k, v is entry i of head h; per head the outer product
kv[i, j] = k_i v_j (p² channels) goes through the head's diagonal SSM (one SSM per head, shared by its p²
channels, and one D per head), and the output entry j of head h, Σ_i q_i y[i, j], is channel j·H + h
(the official layout) of the input to W_out.

Both SSMs act per channel c as x_t = Ā x_{t-1} + B̄ u_t, y_t = C x_t + D u_t, i.e. as the causal
convolution y = K ∗ u + D u with kernel K[l] = C Ā^l B̄:

* **shift SSM** (H3 §3.1): Ā is the m×m shift matrix and B̄ = e_1, so the state holds the last m inputs
  and K[l] = C[l] for l < m (zero beyond): an m-tap learned filter ``shift_C`` (m, d) plus ``shift_D``.
* **diagonal SSM** (S4D, Gu et al. arXiv 2206.11893): m/2 complex modes per channel in conjugate pairs,
  A = -exp(log_A_real) + i·A_imag, step Δ = exp(log_dt), zero-order hold Ā = exp(ΔA),
  B̄ = (Ā - 1)/A · B, and K[l] = 2·Re Σ_n C_n B̄_n Ā_n^l, plus ``D``.

Decisions: head_dim 1 by default (q, k, v multiply elementwise; the Zoology Fig. 2 runs used head_dim 2 and
d_state = N, which ``recipe="official"`` models set); B ≡ 1 in the diagonal SSM and B̄ = e_1 in the shift SSM by
default (B and C enter each kernel only through a product with C, so training both is redundant); the same state
size m = ``d_state`` for both SSMs (default 64 as in the H3 paper; Zoology's Fig. 2 sets it to N). Init: S4D-Lin
(log_A_real = log ½, A_imag = π·n), log Δ ~ U[log 1e-3, log 1e-1], C ~ CN(0, 1), D ~ N(0, 1);
shift_C ~ N(0, 1/m), shift_D ~ N(0, 1); projections ``nn.Linear``.

The official H3 (HazyResearch/zoology ``zoology/mixers/h3/h3.py`` with its ``ss_kernel_shift.py`` and
``ss_kernel_diag.py``) differs in three ways, each an option here (defaults keep the form above, so a record whose
config does not name them still builds the model it trained):

* ``train_B=True``: B is a parameter in both SSMs: the shift SSM's B (m, d), initialised e_1, gives the kernel
  K_shift[l] = Σ_j B[j] C[j + l] (the state x_t = shift(x_{t-1}) + B u_t read by C: Ā^l B is B moved down l
  places), and the diagonal SSM's B (H, m/2) complex, initialised 1, enters as C·B̄ with B̄ = (Ā - 1)/A · B
  (m·d + H·m more parameters per layer: 6,144 at d = m = 64, head_dim 2);
* ``shift_init="official"``: shift_C ~ U(-1/√m, 1/√m), torch's ``kaiming_uniform_(a=√5)`` of an (d, 1, m) tensor
  (std 1/√(3m) = 0.072 at m = 64, against N(0, 1/m)'s 0.125);
* ``discretization="bilinear"``: Ā = (1 + ΔA/2)/(1 - ΔA/2), B̄ = Δ/(1 - ΔA/2) · B (the official default)
  instead of the zero-order hold Ā = exp(ΔA), B̄ = (Ā - 1)/A · B; the two agree to O(Δ²).

``forward`` computes both kernels explicitly for the input length n (the diagonal one as one batched
product of the mode weights with the powers Ā^l) and applies them to the channel-major rows of the
projections (``causal_conv_rows``: a dense Toeplitz product at short lengths, FFTs beyond); ``forward_reference``
runs both SSMs as recurrences, one step at a time.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..flops import fft_flops
from ..utils import is_int
from .base import Mixer
from .conv import causal_conv_rows, causal_conv_rows_flops
from .recurrent import check_step, empty_history, fir_step, param_like, zeros

__all__ = ["H3"]


def _with_skip(K: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """The kernel of K ∗ u + D ⊙ u as one convolution: K (L, C) with D (C,) added to its lag-0 tap."""
    return torch.cat([K[:1] + D, K[1:]])


class H3(Mixer):
    """``H3(d_model, seq_len, d_state=64, head_dim=1)``: the H3 layer (shift SSM, gate, diagonal SSM, gate)."""

    def __init__(self, d_model: int, seq_len: int, d_state: int = 64, head_dim: int = 1, train_B: bool = False,
                 shift_init: str = "normal", discretization: str = "zoh"):
        super().__init__(d_model, seq_len)
        if not (is_int(d_state) and d_state >= 2 and d_state % 2 == 0):
            raise ValueError(f"d_state={d_state!r}: must be an even integer >= 2")
        if not (is_int(head_dim) and head_dim >= 1 and self.d_model % head_dim == 0):
            raise ValueError(f"head_dim={head_dim!r}: must be a positive divisor of d_model={self.d_model}")
        if not isinstance(train_B, bool):
            raise ValueError(f"train_B={train_B!r}: must be True or False")
        if shift_init not in ("normal", "official"):
            raise ValueError(f"shift_init={shift_init!r}: must be 'normal' or 'official'")
        if discretization not in ("zoh", "bilinear"):
            raise ValueError(f"discretization={discretization!r}: must be 'zoh' or 'bilinear'")
        d, m = self.d_model, int(d_state)
        self.d_state, self.head_dim = m, int(head_dim)
        self.train_B, self.shift_init, self.discretization = train_B, shift_init, discretization
        H = self.num_heads = d // self.head_dim
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)
        if shift_init == "official":  # kaiming_uniform_(a=√5) of (d, 1, m): fan_in m, bound 1/√m
            shift_C = torch.empty(m, d).uniform_(-1 / math.sqrt(m), 1 / math.sqrt(m))
        else:
            shift_C = torch.randn(m, d) / math.sqrt(m)
        self.shift_C = nn.Parameter(shift_C)  # (m, d): K_shift[l] = shift_C[l] (with B = e_1)
        self.shift_D = nn.Parameter(torch.randn(d))  # (d,)
        self.log_dt = nn.Parameter(torch.empty(H).uniform_(math.log(1e-3), math.log(1e-1)))  # (H,)
        self.log_A_real = nn.Parameter(torch.full((H, m // 2), math.log(0.5)))  # (H, m/2)
        self.A_imag = nn.Parameter(math.pi * torch.arange(m // 2).repeat(H, 1).to(torch.get_default_dtype()))
        self.C = nn.Parameter(torch.randn(H, m // 2, 2) * math.sqrt(0.5))  # (H, m/2) complex, as (re, im)
        self.D = nn.Parameter(torch.randn(H))  # (H,)
        if train_B:
            shift_B = torch.zeros(m, d)
            shift_B[0] = 1.0  # e_1: K_shift = shift_C at init
            self.shift_B = nn.Parameter(shift_B)  # (m, d)
            self.B = nn.Parameter(torch.stack([torch.ones(H, m // 2), torch.zeros(H, m // 2)], -1))  # (H, m/2) complex

    def shift_kernel(self) -> torch.Tensor:
        """K_shift (m, d): shift_C, or with a trained B the correlation K[l] = Σ_{j < m - l} B[j] C[j + l]."""
        if not self.train_B:
            return self.shift_C
        m = self.d_state
        n = 1 << (2 * m - 2).bit_length()  # a power of two >= 2m - 1: the circular correlation does not wrap
        B_f, C_f = torch.fft.rfft(self.shift_B, n=n, dim=0), torch.fft.rfft(self.shift_C, n=n, dim=0)
        return torch.fft.irfft(B_f.conj() * C_f, n=n, dim=0)[:m]  # (m, d), by FFTs (4x faster than the sums)

    def _discrete(self):
        """Ā, B̄ (H, m/2) complex, and log Ā (H, m/2) complex (ΔA itself under the zero-order hold)."""
        A = torch.complex(-torch.exp(self.log_A_real), self.A_imag)  # (H, m/2)
        dt = torch.exp(self.log_dt)[:, None]  # (H, 1)
        dtA = dt * A
        B = torch.view_as_complex(self.B) if self.train_B else 1.0
        if self.discretization == "bilinear":
            A_bar = (1 + dtA / 2) / (1 - dtA / 2)
            return A_bar, dt / (1 - dtA / 2) * B, torch.log(A_bar)
        A_bar = torch.exp(dtA)
        return A_bar, (A_bar - 1) / A * B, dtA

    def diag_kernel(self, n: int) -> torch.Tensor:
        """K[l, h] = 2 Re Σ_n C_n B̄_n Ā_n^l for l < n, one column per head: (n, H).

        The powers Ā^l = exp(l ΔA) = e^{l Re ΔA} (cos(l Im ΔA) + i sin(l Im ΔA)) are built in real arithmetic
        (three real transcendental functions of the (H, m/2, n) table instead of a complex exp, several times
        cheaper on a CPU, forward and backward), then K = 2 (Re(CB̄)·Re Ā^l - Im(CB̄)·Im Ā^l) as one batched
        (1 × m)·(m × n) product per head."""
        _, B_bar, dtA = self._discrete()  # dtA: log Ā
        CB = torch.view_as_complex(self.C) * B_bar  # (H, m/2)
        l = torch.arange(n, device=dtA.device, dtype=self.log_dt.dtype)
        mag = torch.exp(dtA.real[:, :, None] * l)  # (H, m/2, n): |Ā|^l
        phase = dtA.imag[:, :, None] * l  # (H, m/2, n): l arg Ā
        W = torch.cat([2 * CB.real, -2 * CB.imag], dim=-1)  # (H, m)
        V = torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=1)  # (H, m, n): Re, Im of Ā^l
        return (W[:, None, :] @ V)[:, 0].T  # (n, H)

    def _outer(self, k, v):
        """Per head the outer product kv[i, j] = k_i v_j: (B, n, d) x 2 -> (B, n, p·p·H), head fastest."""
        B, n, _ = k.shape
        p, H = self.head_dim, self.num_heads
        kh = k.view(B, n, H, p).transpose(-1, -2)  # (B, n, p, H): kh[..., i, h] = k[h·p + i]
        vh = v.view(B, n, H, p).transpose(-1, -2)
        return (kh[:, :, :, None, :] * vh[:, :, None, :, :]).reshape(B, n, p * p * H)

    def _read(self, q, y):
        """Σ_i q_i y[i, j] per head: q (B, n, d), y (B, n, p·p·H) -> (B, n, d), channel j·H + h."""
        B, n, d = q.shape
        p, H = self.head_dim, self.num_heads
        qh = q.view(B, n, H, p).transpose(-1, -2)  # (B, n, p, H)
        return (qh[:, :, :, None, :] * y.view(B, n, p, p, H)).sum(2).reshape(B, n, d)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        """Channel-major: the projections are computed transposed, (d, B, n), so that every sequence is a
        contiguous row; then the shift SSM is one row convolution per channel, the outer product per head is a
        broadcast product into (H, p, p, B, n), the diagonal SSM one row convolution per head over its p²·B rows
        (``causal_conv_rows``: a Toeplitz product or FFTs; each SSM's D u is its kernel's lag-0 tap, K[0] + D), and
        the read-out Σ_i q_i y[i, j] lands in channel
        h·p + j, which the output projection reads through its columns permuted to the official j·H + h. No
        layout copy of an activation, forward or backward."""
        B, n, d = u.shape
        H, p = self.num_heads, self.head_dim
        W = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])  # (3d, d)
        b = torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])  # (3d,)
        q, k, v = torch.addmm(b[:, None], W, u.reshape(B * n, d).T).view(3, d, B, n).unbind(0)  # (d, B, n) each
        k = causal_conv_rows(k, _with_skip(self.shift_kernel(), self.shift_D))  # shift SSM, (d, B, n)
        kv = (k.view(H, p, 1, B, n) * v.view(H, 1, p, B, n)).view(H, p * p * B, n)  # kv[h, i, j] = k_i v_j
        y = causal_conv_rows(kv, _with_skip(self.diag_kernel(n), self.D))  # diagonal SSM, (H, p²B, n)
        y, qh = y.view(H, p, p, B, n), q.view(H, p, B, n)
        out = qh[:, 0, None] * y[:, 0]  # (H, p, B, n): Σ_i q_i y[i, j], i = 0
        for i in range(1, p):
            out = out + qh[:, i, None] * y[:, i]
        W_out = self.out_proj.weight.view(d, p, H).transpose(1, 2).reshape(d, d)  # column h·p + j
        return torch.addmm(self.out_proj.bias, out.view(d, B * n).T, W_out.T).view(B, n, d)

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """Both SSMs as recurrences over t: the shift SSM's state x_t = shift(x_{t-1}) + B k_t (B = e_1 unless
        ``train_B``: then x holds the last m inputs) read as C·x_t, then the m/2 complex modes."""
        B, n, d = u.shape
        m, pp = self.d_state, self.head_dim**2
        q, k, v = self.q_proj(u), self.k_proj(u), self.v_proj(u)
        A_bar, B_bar, _ = (t.repeat(pp, 1) for t in self._discrete())  # (p²H, m/2): head fastest
        C, D = torch.view_as_complex(self.C).repeat(pp, 1), self.D.repeat(pp)
        if self.train_B:
            shift_B = self.shift_B  # (m, d)
        else:
            shift_B = torch.zeros(m, d, dtype=u.dtype, device=u.device)
            shift_B[0] = 1.0
        s = torch.zeros(B, m, d, dtype=u.dtype, device=u.device)  # shift state x_t (B = e_1: s[:, i] = k_{t-i})
        x = torch.zeros(B, pp * self.num_heads, m // 2, dtype=A_bar.dtype, device=u.device)  # diagonal state
        ys = []
        for t in range(n):
            s = torch.cat([s.new_zeros(B, 1, d), s[:, :-1]], dim=1) + shift_B * k[:, t : t + 1]
            k_t = (self.shift_C * s).sum(1) + self.shift_D * k[:, t]  # (B, d)
            kv_t = self._outer(k_t[:, None], v[:, t : t + 1])[:, 0]  # (B, p²H)
            x = A_bar * x + B_bar * kv_t[:, :, None]
            ys.append(2 * (C * x).sum(-1).real + D * kv_t)  # (B, p²H)
        return self.out_proj(self._read(q, torch.stack(ys, dim=1)))

    def state_size(self, seq_len: int | None = None) -> int:
        """What ``step`` carries: the shift SSM's last min(m - 1, n) inputs k (its m-tap kernel's next output
        reads its own input and the m - 1 before it) and the m/2 complex modes (m reals) of each of the
        p²H = p·d channels of the diagonal SSM: d·min(m - 1, n) + p·d·m. (Formerly declared
        d·min(m, n) + p·d·m: the shift register x_t = (k_t, ..., k_{t-m+1}) of H3 §3.1 also holds k_{t-m+1},
        which the next step shifts out unread.)"""
        n = self._n(seq_len)
        return self.d_model * (min(self.d_state - 1, n) + self.head_dim * self.d_state)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """8d² (the projections) + 2Hm (the diagonal kernel: one (1×m)·(m×n) product per head, per sequence,
        over n) + the two row convolutions as ``forward`` computes them (``causal_conv_rows_flops``): the shift
        kernel on d rows, the diagonal one per head on its p² rows; dense Toeplitz products (2n per row and
        token) up to n = 64, FFTs beyond; with ``train_B``, the shift kernel's correlation per sequence (three
        transforms of d vectors of length the power of two >= 2m - 1)."""
        n, d, m, p, H = self._n(seq_len), self.d_model, self.d_state, self.head_dim, self.num_heads
        conv = causal_conv_rows_flops(n, m, d, 1) + causal_conv_rows_flops(n, n, H, p * p)
        shift = 3.0 * d * fft_flops(1 << (2 * m - 2).bit_length()) if self.train_B else 0.0
        return 8.0 * d * d + 2.0 * H * m + (conv + shift) / n

    def extra_repr(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v, default in (("train_B", self.train_B, False),
                        ("shift_init", self.shift_init, "normal"), ("discretization", self.discretization, "zoh"))
                        if v != default)
        return (f"d_model={self.d_model}, seq_len={self.seq_len}, d_state={self.d_state}, head_dim={self.head_dim}"
                f"{extra}")

    # --- recurrent form: shift register and diagonal modes -------------------------------------------
    def init_state(self, batch: int) -> dict:
        """No past k yet (B, 0, d); the diagonal SSM's modes x = 0 (B, p²H, m/2) complex; t = 0."""
        cdtype = param_like(self)[0].to_complex()  # complex of the parameters' precision
        x = zeros(self, batch, self.head_dim**2 * self.num_heads, self.d_state // 2, dtype=cdtype)
        return {"shift": empty_history(self, batch, self.d_model), "x": x, "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Both SSMs one step (as ``forward_reference``): k'_t = Σ_{l<m} K_shift[l] ⊙ k_{t-l} + shift_D ⊙ k_t,
        kv_t = outer(k'_t, v_t) per head, x_t = Ā x_{t-1} + B̄ kv_t, y_t = 2 Re(C x_t) + D kv_t, then the
        read-out with q_t and W_out."""
        t = check_step(self, state, u_t)
        pp = self.head_dim**2
        q, k, v = self.q_proj(u_t), self.k_proj(u_t), self.v_proj(u_t)  # (B, d) each
        ks, shift = fir_step(state["shift"], k, self.shift_kernel(), self.d_state - 1)
        kv = self._outer((ks + self.shift_D * k)[:, None], v[:, None])[:, 0]  # (B, p²H)
        A_bar, B_bar, _ = (a.repeat(pp, 1) for a in self._discrete())  # (p²H, m/2): head fastest
        C, D = torch.view_as_complex(self.C).repeat(pp, 1), self.D.repeat(pp)
        x = A_bar * state["x"] + B_bar * kv[:, :, None]  # (B, p²H, m/2)
        y = 2 * (C * x).sum(-1).real + D * kv  # (B, p²H)
        return self.out_proj(self._read(q[:, None], y[:, None])[:, 0]), {"shift": shift, "x": x, "t": t + 1}
