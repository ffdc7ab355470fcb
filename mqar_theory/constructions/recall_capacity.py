"""How many associations a d_k-dimensional recurrent state recalls: linear attention's sum against the delta rule.

Experiment (``recall_error_vs_key_dim``). K keys k_1..k_K in R^{d_k}: random unit vectors (Gaussian, normalised;
``keys="gaussian"``) or orthonormal columns (QR of a Gaussian matrix, K <= d_k; ``keys="orthonormal"``). Values are
one-hot over V value tokens: key i gets value w_i = i mod V (V = K by default: every key its own value, as in MQAR
where a sequence's values are distinct; V < K makes K/V keys share each value). The pairs are written into a state
S (V × d_k) and every key is read back, ŵ_i = argmax_w (S k_i)_w; a recall is wrong when ŵ_i ≠ w_i.

* ``"linear"``: linear attention's state S = Σ_i v_i k_iᵀ (arXiv 2006.16236; ``mixers.linear_attention``).
* ``"delta"``: the delta rule with β = 1, S_i = S_{i-1}(I - k_i k_iᵀ) + v_i k_iᵀ, the pairs in order, ``passes``
  times over the list (arXiv 2102.11174, 2406.06484; ``mixers.delta_net``).
* ``"least_squares"``: the minimum-norm S with S k_i = v_i for all i (S = Vᵀ (Kᵀ)⁺), the fixed point the delta rule
  reaches by repeated passes (one pass with β = 1 is a sweep of Kaczmarz's method on S K = V, so passes converge
  to a solution when K <= d_k and the keys are independent).

Predictions (``predicted`` in each row).

Linear attention: S k_i = Σ_j (k_j·k_i) e_{w_j}, so value w collects X_w = Σ_{j : w_j = w} k_j·k_i, and the right
value gets 1 + Σ_{j ≠ i : w_j = w_i} k_j·k_i. For independent random unit vectors, k_j·k_i has mean 0 and variance
1/d_k, and the cosines of different j are uncorrelated (the crosstalk vector over all K-1 other keys has norm about
sqrt((K-1)/d_k) against a signal of 1). Approximation (stated): treat the cosines as independent N(0, 1/d_k). With
m = K/V keys per value (V divides K), the signal is 1 + σ₀Z (σ₀² = (m-1)/d_k) and each of the V-1 wrong values is
N(0, σ²), σ² = m/d_k, so

    P(wrong) ≈ 1 - E_Z[ Φ((1 + σ₀ Z)/σ)^{V-1} ]       (Gauss-Hermite quadrature over Z ~ N(0, 1));

for m = 1 it is 1 - Φ(√d_k)^{K-1}. The approximation is poor in the far tail: a cosine is bounded by 1, so for
m = 1 a wrong value can never beat the signal (it ties only if k_j = k_i), and the measured error is 0 for every
d_k >= 2 while the Gaussian formula gives a small positive number. It is tested where it holds: V < K, moderate d_k.

Delta rule (β = 1): after writing k_i, S k_i = S_{i-1}(k_i - k_i ‖k_i‖²) + v_i = v_i for a unit key, so the LAST
key written is recalled exactly, always; with orthonormal keys every earlier write is untouched by the later ones
((I - k_j k_jᵀ) k_i = k_i), so every key is recalled exactly (K <= d_k). For random non-orthogonal keys, K <= d_k, one
pass is not exact: writing k_j changes the read of an earlier k_i by -(S_{j-1} k_j - v_j)(k_j·k_i); no closed-form
prediction is given (``predicted`` is NaN): the error and the residual max_i ‖S k_i - v_i‖ are measured, and the
residual shrinks with more passes (``passes``) towards the least-squares solution, which is exact.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..utils import is_int

METHODS = ("linear", "delta", "least_squares")
KEYS = ("gaussian", "orthonormal")

__all__ = ["METHODS", "KEYS", "random_keys", "write_and_read", "predicted_linear_error", "recall_error_vs_key_dim"]


def random_keys(num_keys: int, d_k: int, keys: str = "gaussian", generator=None, trials: int = 1) -> torch.Tensor:
    """(trials, K, d_k) float64 unit keys: Gaussian rows normalised, or orthonormal (QR; needs K <= d_k)."""
    if keys not in KEYS:
        raise ValueError(f"keys={keys!r}: must be one of {KEYS}")
    if keys == "orthonormal" and num_keys > d_k:
        raise ValueError(f"num_keys={num_keys}: orthonormal keys need num_keys <= d_k={d_k}")
    g = torch.randn(trials, d_k, num_keys, generator=generator, dtype=torch.float64)  # (T, d_k, K)
    if keys == "orthonormal":
        return torch.linalg.qr(g).Q.transpose(1, 2)  # (T, K, d_k), orthonormal rows
    k = g.transpose(1, 2)
    return k / k.norm(dim=-1, keepdim=True)


def write_and_read(method: str, keys: torch.Tensor, values: torch.Tensor, passes: int = 1) -> torch.Tensor:
    """Write the pairs (keys (T, K, d_k), values (T, K, V)) into the state of ``method`` and read every key back:
    (T, K, V) reads S k_i."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}: must be one of {METHODS}")
    if not (is_int(passes) and passes >= 1):
        raise ValueError(f"passes={passes!r}: must be an integer >= 1")
    T, K, d_k = keys.shape
    if method == "linear":
        S = values.transpose(1, 2) @ keys  # (T, V, d_k): Σ v_i k_iᵀ
    elif method == "delta":
        S = keys.new_zeros(T, values.shape[2], d_k)
        for _ in range(passes):
            for i in range(K):
                k, v = keys[:, i, :, None], values[:, i, :, None]  # (T, d_k, 1), (T, V, 1)
                S = S + (v - S @ k) @ k.transpose(1, 2)  # S(I - k kᵀ) + v kᵀ, β = 1
    else:
        S = values.transpose(1, 2) @ torch.linalg.pinv(keys.transpose(1, 2))  # (T, V, d_k)
    return keys @ S.transpose(1, 2)  # (T, K, V): row i is (S k_i)ᵀ


def _ndtr(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def predicted_linear_error(num_keys: int, d_k: int, num_values: int | None = None, nodes: int = 80) -> float:
    """The Gaussian-crosstalk prediction of linear attention's recall error (module docstring): with m = K/V,
    1 - E_Z[Φ((1 + σ₀Z)/σ)^{V-1}], σ₀² = (m-1)/d_k, σ² = m/d_k, by ``nodes``-point Gauss-Hermite quadrature."""
    V = num_keys if num_values is None else num_values
    if V < 2:
        return 0.0
    m = num_keys // V
    s0, s = math.sqrt((m - 1) / d_k), math.sqrt(m / d_k)
    z, w = np.polynomial.hermite_e.hermegauss(nodes)  # ∫ f(z) e^{-z²/2} dz ≈ Σ w f(z)
    w = w / math.sqrt(2 * math.pi)
    return float(1.0 - np.sum(w * _ndtr((1.0 + s0 * z) / s) ** (V - 1)))


def recall_error_vs_key_dim(method: str, num_keys: int, d_k_values, trials: int, seed: int, keys: str = "gaussian",
                            num_values: int | None = None, passes: int = 1) -> list[dict]:
    """The measured fraction of wrong recalls per key dimension (module docstring), beside each theory's prediction.

    Args:
        method: "linear", "delta" or "least_squares".
        num_keys: K >= 1 associations written.
        d_k_values: key dimensions d_k >= 1 to sweep.
        trials: independent draws of the keys per d_k (>= 1).
        seed: seed of the draws (a torch.Generator; the same seed gives the same rows).
        keys: "gaussian" (random unit keys) or "orthonormal" (K <= d_k).
        num_values: V, the number of one-hot values (default K: distinct values); must divide K.
        passes: passes of the delta rule over the pairs (only "delta").

    Returns one dict per d_k: d_k, mean, std, min, max (fraction of wrong recalls over the trials), residual (mean
    over trials of max_i ‖S k_i - v_i‖), last_residual (the same for the last key written), predicted (the
    prediction of the module docstring; NaN where the theory gives none) and prediction (which one)."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}: must be one of {METHODS}")
    if keys not in KEYS:
        raise ValueError(f"keys={keys!r}: must be one of {KEYS}")
    if not (is_int(num_keys) and num_keys >= 1):
        raise ValueError(f"num_keys={num_keys!r}: must be an integer >= 1")
    V = num_keys if num_values is None else num_values
    if not (is_int(V) and 1 <= V <= num_keys and num_keys % V == 0):
        raise ValueError(f"num_values={num_values!r}: must be an integer in [1, num_keys={num_keys}] dividing it")
    if not (is_int(trials) and trials >= 1):
        raise ValueError(f"trials={trials!r}: must be an integer >= 1")
    if not is_int(seed):
        raise ValueError(f"seed={seed!r}: must be an integer")
    if not (is_int(passes) and passes >= 1):
        raise ValueError(f"passes={passes!r}: must be an integer >= 1")
    dks = list(d_k_values)
    if not dks or not all(is_int(d) and d >= 1 for d in dks):
        raise ValueError(f"d_k_values={d_k_values!r}: must be a non-empty list of integers >= 1")
    gen = torch.Generator().manual_seed(int(seed))
    target = torch.arange(num_keys) % V  # (K,) value of key i
    values = torch.eye(V, dtype=torch.float64)[target]  # (K, V) one-hot
    rows = []
    for d_k in dks:
        k = random_keys(num_keys, int(d_k), keys, gen, trials)  # (T, K, d_k)
        vals = values.expand(trials, -1, -1)
        reads = write_and_read(method, k, vals, passes)  # (T, K, V)
        wrong = (reads.argmax(-1) != target).double().mean(-1)  # (T,)
        res = (reads - vals).norm(dim=-1)  # (T, K)
        if method == "linear":
            exact = keys == "orthonormal"
            pred = 0.0 if exact else predicted_linear_error(num_keys, int(d_k), V)
            how = "orthonormal keys: exact" if exact else "Gaussian crosstalk approximation"
        elif method == "least_squares" or keys == "orthonormal":
            pred, how = (0.0, "exact (K <= d_k, independent keys)") if num_keys <= d_k else (math.nan, "none")
        else:
            pred, how = math.nan, "none (measured; only the last key is exact)"
        rows.append({"d_k": int(d_k), "mean": float(wrong.mean()), "std": float(wrong.std()) if trials > 1 else 0.0,
                     "min": float(wrong.min()), "max": float(wrong.max()), "residual": float(res.amax(-1).mean()),
                     "last_residual": float(res[:, -1].mean()), "predicted": pred, "prediction": how})
    return rows
