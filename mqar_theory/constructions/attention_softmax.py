"""Two layers of ordinary softmax attention solve MQAR with width O(log c) and β = O(log N).

Claim (our construction in the spirit of Zoology (arXiv 2312.04927) Prop 4.3 / App. H Prop H.27,
with softmax and binary codes of width O(log c); no paper theorem states it). Causal softmax attention, one head per
layer, with fixed relative-position biases, solves every ``make_mqar`` sequence with stream width
d = 4b + 2, b = ceil(log2 c), i.e. independent of N, O(b²) = O(log² c) weights, and a layer-2
inverse temperature β = (ln N + 2m)/2 that grows only like log N. One layer is

    A = softmax_{j<=i}(Q Kᵀ + R[i - j]),   O = A V W_O,   u <- u + O     (Q, K, V = u W_Q, u W_K, u W_V)

with no 1/sqrt(d_head) factor (the temperature lives in W_Q) and R a bias by distance, stored as three
numbers r = (r_0, r_1, s): R[0] = r_0, R[1] = r_1, R[t >= 1] = r_1 + (t - 1)·s (ALiBi-like slope).

Codes and stream. code(x) ∈ {±1}^b is the binary expansion of the token id (bit k -> 2·bit - 1),
so <code(x), code(y)> = b - 2·hamming(x, y): b for x = y and <= b - 2 otherwise. The stream is
u_i = [kcode | vcode | prevk | out | iskey | isval] (four blocks of b channels, two flags):
kcode = code(x_i) and iskey = 1 if x_i is a key token, vcode = code(x_i) and isval = 1 if x_i is a
value token (zeros otherwise, so filler 0 is the zero row); prevk and out start at 0. The table
E ∈ R^{c×d} (u_i = E[x_i]) is a buffer, a fixed function of c (``fixed_tables``), reported apart.

Layer 1: previous-token head. W_Q¹ = W_K¹ = 0, W_V¹ reads kcode, W_O¹ writes prevk, and the bias
is R¹[t] = -β₁·|t - 1| (r¹ = (-β₁, 0, -β₁): peaked at distance t = 1). Slot j >= 1 puts weight 1/Z_j on
j - 1 and the rest, η_j = 1 - 1/Z_j <= η := 2e^{-β₁}/(1 - e^{-β₁}), geometrically on j, j-2, j-3, ..:

    prevk_j = (1 - η_j)·kcode_{j-1} + η_j·(a convex mix of other kcodes),

so for any key code q: <q, prevk_j> = <q, kcode_{j-1}> ± 2ηb. Slot 0 has no previous token; its
softmax can only put all its mass on itself, so prevk_0 = kcode_0 (harmless, see layer 2).

Layer 2: lookup. Q_i = β·[kcode_i ; 2·iskey_i], K_j = [prevk_j ; isval_j], V_j = vcode_j, W_O²
writes out. For a query position i holding key x (q = code(x)) the logit of slot j <= i is

    β<q, prevk_j> + 2β·isval_j + R²[i - j],   R²[0] = β(b + 2) - m,  R²[t > 0] = 0 (r² = (β(b+2) - m, 0, 0)):

value slots get a bonus 2β, so a non-value slot whose prevk happens to be q cannot compete (the
filler after an earlier query of x, or slot 0, a key whose prevk_0 is its own code), and the
current slot is a sink, sitting m nats below a match, whose vcode is 0 because x_i is a key. If
the token before x_i is not a key (always so in ``make_mqar``: it is a value or filler), then,
with δ := 3βηb (the layer-1 leak, < 1e-5 for β₁ = 20):

    match  (a value slot right after an earlier x):     logit >= β(b + 2) - 2βηb
    sink   (j = i):                                        logit  = β(b + 2) - m ± βηb
    others (every other j <= i, at most N of them):
           a value slot whose previous token is not x:     logit <= βb + 2βη
           a non-value slot (any prevk, |<q, prevk>| <= b): logit <= βb

Choose β = (ln N + 2m)/2, i.e. 2β = ln N + 2m. Relative to a match the sink has weight
<= e^{-m+δ} and all others together <= N·e^{-2β+δ} = e^{-2m+δ}; with no match, the others together
have weight <= N·e^{-(2β - m)+δ} = e^{-m+δ} relative to the sink. Only value slots carry a vcode, so

    match:    out_i = p·code(v) + r,  p >= 1/(1 + e^{-m+δ} + e^{-2m+δ}),  |r|_∞ <= p·e^{-2m+δ}
    no match: |out_i|_∞ <= e^{-m+δ}.

Read-out (exact argmax). The nearest code, argmax over all s ∈ {±1}^b of <out, s>, is s = sign(out),
computed bitwise; ``predict`` answers the token with those bits when the weakest bit is decisive,
min_k |out_k| >= τ (``threshold``, default 1/2), the token is a value token and the ``iskey`` channel
of the final stream u³ = u² + O² exceeds 1/2 (x_i is a key, Algorithm 1's queries; the channel is
written by the embedding and carried by the residual, so the gate is read from the network's output
stream, not from the raw tokens), else -1. With τ = 1/2 this is exact whenever
p(1 - e^{-2m+δ}) > 1/2 > e^{-m+δ}, which holds for every m >= 1 (default m = 4: bits >= 0.98 at a
match, <= 0.019 without one); ``margin`` reports |min_k |out_k| - τ| at key positions.

Scope (decided and tested). Exact on every make_mqar-shaped sequence (any K, any seq_len <= N),
and more generally whenever no key directly follows a key and, for each key position with an
earlier occurrence of its key, the first such occurrence is followed by a value v and every other
one by v or by a non-value (so a key may be queried several times, and a pair may repeat). A key
right after a key puts that key's code into the sink's prevk and is outside the guarantee (the
failure is shown in the tests). The answer at i depends on tokens 0..i only (causal softmax,
causal fixed biases).

Counted (``num_parameters``): layer 1 W_Q, W_K, W_V (d × b) and W_O (b × d); layer 2 W_Q, W_K
(d × (b+1)), W_V (d × b), W_O (b × d): d(8b + 2) = 32b² + 24b + 4 (the zero W_Q¹, W_K¹ included),
plus the bias parameters r¹, r² (3 each): 32b² + 24b + 10, independent of N. The *values* of W_Q²
and r²_0 grow like β ~ (ln N)/2, i.e. O(log log N) bits per number. Fixed (reported apart): E (c × d).
"""

from __future__ import annotations

import math

import sympy as sp
import torch
from torch import nn

from ..bounds.bound import Bound, c, log2
from ..bounds.claims import Claim
from ..utils import is_number
from .base import Construction, check_threshold
from .layers import SoftmaxAttentionLayer, distance_bias, softmax_attention

__all__ = ["AttentionSoftmax", "attention_softmax", "softmax_attention", "distance_bias", "encoding_table"]

_SOURCE = "mqar_theory attention_softmax (no paper theorem)"


def _bits(vocab_size: int) -> int:
    return max(1, math.ceil(math.log2(vocab_size)))


def encoding_table(vocab_size: int) -> torch.Tensor:
    """E (c, 4b + 2) float64: [kcode | vcode | prevk = 0 | out = 0 | iskey | isval] of every token."""
    c_ = vocab_size
    b = _bits(c_)
    kc, vc = slice(0, b), slice(b, 2 * b)
    ids = torch.arange(c_)
    codes = 2.0 * ((ids[:, None] >> torch.arange(b)) & 1) - 1.0  # (c, b) ±1, bit k of the id
    is_key, is_val = (ids >= 1) & (ids < c_ // 2), ids >= c_ // 2
    E = torch.zeros(c_, 4 * b + 2, dtype=torch.float64)
    E[is_key, kc], E[is_key, 4 * b] = codes[is_key].double(), 1.0
    E[is_val, vc], E[is_val, 4 * b + 1] = codes[is_val].double(), 1.0
    return E


def _positive(name: str, value) -> float:
    if not (is_number(value) and value > 0):
        raise ValueError(f"{name}={value!r}: must be a finite number > 0")
    return float(value)


class AttentionSoftmax(Construction):
    """Two-layer causal softmax attention on ±1 binary codes (see the module docstring)."""

    name = "attention_softmax"
    theorem = "Prop 4.3 (softmax variant, binary codes of width O(log c))"
    own_bounds = (
        Bound("softmax-width", _SOURCE, "upper", "width", log2(c),
              "two layers of softmax attention on binary token codes solve MQAR with width O(log c), "
              "independent of N",
              notes="a project claim: the model dimension is a constant number of code blocks of log2 c bits"),
        Bound("softmax-params", _SOURCE, "upper", "params", log2(c) ** 2,
              "its projections are O(log c) × O(log c), so O(log² c) parameters, independent of N"),
        Bound("softmax-layers", _SOURCE, "upper", "layers", sp.Integer(1),
              "two layers: a previous-token step, then a lookup"),
    )
    claims = (
        Claim("softmax-width", const=7, basis="proved", why="4b + 2 < 4L + 6 <= 7L for L >= 2"),
        Claim("softmax-params", const=78, basis="proved",
              why="32b² + 25b + 17 (stored 32b² + 24b + 10, read-out b + 7): at c = 4 (b = 2) 195/4 = 48.75; "
                  "for c >= 6, b < L + 1 gives 32 + 89/L + 74/L² <= 77.5 at L >= log2 6"),
        Claim("softmax-layers", const=2, basis="proved", why="the program lists two layers"),
    )
    style = {"marker": "D", "size": 7, "curves": ("softmax-params", "softmax-width"),
             "tex": {"softmax-params": (r"\log_2^2 c", "ours"), "softmax-width": (r"\log_2 c", "ours")},
             "margin_units": "weakest code bit, |out| − τ"}

    @classmethod
    def closed_form(cls, c: int, N: int, t: int | None = None) -> dict:
        b = _bits(c)
        # stored 32b² + 24b + 10; decode brings b + 7 more (``bounds.observe``): the b bit weights 2^k
        # (``arange``) and the scalars 2, 1/2 (gate), 0 (sign), the threshold, c/2, c and the -1 fill
        return {"params": 32 * b * b + 25 * b + 17, "layers": 2, "width": 4 * b + 2}

    @classmethod
    def fixed_tables(cls, c: int, N: int) -> dict:
        return {"E": encoding_table(c)}

    def __init__(self, vocab_size: int, seq_len: int, margin_nats: float = 4.0, beta1: float = 20.0,
                 threshold: float = 0.5):
        super().__init__(vocab_size, seq_len)
        m, beta1 = _positive("margin_nats", margin_nats), _positive("beta1", beta1)
        check_threshold(threshold)
        c_, N = vocab_size, seq_len
        b = _bits(c_)
        d = 4 * b + 2
        self.bits = b
        self.margin_nats, self.beta1, self.threshold = m, beta1, float(threshold)
        self.beta = (math.log(N) + 2 * m) / 2  # layer-2 inverse temperature, grows like log N
        kc, vc, pk, out = (slice(r * b, (r + 1) * b) for r in range(4))
        iskey, isval = 4 * b, 4 * b + 1
        self.register_buffer("E", encoding_table(c_).to(torch.get_default_dtype()))

        eye = torch.eye(b)
        W_V1, W_O1 = torch.zeros(d, b), torch.zeros(b, d)
        W_V1[kc] = eye  # read kcode
        W_O1[:, pk] = eye  # write prevk
        layer1 = SoftmaxAttentionLayer(torch.zeros(d, b), torch.zeros(d, b), W_V1, W_O1,
                                       torch.tensor([-beta1, 0.0, -beta1]))  # R¹[t] = -β₁|t - 1|
        W_Q2, W_K2 = torch.zeros(d, b + 1), torch.zeros(d, b + 1)  # (d, b+1): code bits and one flag
        W_V2, W_O2 = torch.zeros(d, b), torch.zeros(b, d)
        W_Q2[kc, :b] = self.beta * eye  # β·kcode
        W_Q2[iskey, b] = 2 * self.beta  # 2β·iskey
        W_K2[pk, :b] = eye  # prevk
        W_K2[isval, b] = 1.0  # isval
        W_V2[vc] = eye  # vcode
        W_O2[:, out] = eye  # write out
        layer2 = SoftmaxAttentionLayer(W_Q2, W_K2, W_V2, W_O2,
                                       torch.tensor([self.beta * (b + 2) - m, 0.0, 0.0]))  # sink on the current slot
        self.layers = nn.ModuleList([layer1, layer2])

    @property
    def leak_delta(self) -> float:
        """δ = 3βηb, η = 2e^{-β₁}/(1 - e^{-β₁}): the most the soft layer 1 moves any layer-2 log-odds."""
        e = math.exp(-self.beta1)
        return 3 * self.beta * (2 * e / (1 - e)) * self.bits

    @property
    def margin_bound(self) -> float:
        """The derivation's worst-case ``margin`` on the guaranteed inputs (positive = exact):
        min(p(1 - e^{-2m+δ}) - τ, τ - e^{-m+δ}) with p = 1/(1 + e^{-m+δ} + e^{-2m+δ})."""
        m, dl, tau = self.margin_nats, self.leak_delta, self.threshold
        p = 1 / (1 + math.exp(-m + dl) + math.exp(-2 * m + dl))
        return min(p * (1 - math.exp(-2 * m + dl)) - tau, tau - math.exp(-m + dl))

    def encode(self, tokens) -> torch.Tensor:
        """(B, n) -> (B, n, 4b + 2): u_i = E[x_i]."""
        return self.E[self.check_tokens(tokens)]

    def layer_outputs(self, tokens) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(u¹, O¹, O²), each (B, n, d): the encoded input and what each layer adds (differences of ``trace``)."""
        u1, u2, u3 = self.trace(tokens)
        return u1, u2 - u1, u3 - u2

    def _read(self, stream: torch.Tensor):
        """(conf, ids, is_key), each (B, n): the weakest bit of ``out``, its sign-decoded token, the iskey gate."""
        b = self.bits
        o, is_key = stream[..., 3 * b : 4 * b], stream[..., 4 * b] > 0.5  # (B, n, b), (B, n)
        conf = o.abs().min(dim=-1).values  # (B, n) weakest bit
        weights = 2 ** torch.arange(b, device=o.device)
        ids = ((o > 0).long() * weights).sum(-1)  # (B, n) sign decoding = nearest code
        return conf, ids, is_key

    def decode(self, stream: torch.Tensor) -> torch.Tensor:
        """(B, n, d) -> (B, n): the decoded value token at key rows whose weakest bit is >= threshold, else -1."""
        conf, ids, is_key = self._read(stream)
        c_ = self.vocab_size
        ok = is_key & (conf >= self.threshold) & (ids >= c_ // 2) & (ids < c_)
        return torch.where(ok, ids, torch.full_like(ids, -1))

    def margin(self, tokens) -> torch.Tensor:
        """(B, n) |min_k |out_k| - threshold| at key positions, in code units (each coordinate of out
        lies in [-1, 1]; ideal value 1/2); +inf at other positions, whose answer (-1) is fixed by the
        token's role."""
        return self.map_final(tokens, self._margin)

    def _margin(self, stream: torch.Tensor) -> torch.Tensor:
        conf, _, is_key = self._read(stream)
        return torch.where(is_key, (conf - self.threshold).abs(), torch.full_like(conf, math.inf))


def attention_softmax(vocab_size: int, seq_len: int, margin_nats: float = 4.0, beta1: float = 20.0,
                      threshold: float = 0.5) -> AttentionSoftmax:
    """Build the two-layer softmax construction for vocabulary size c and sequence length N.

    Args:
        vocab_size: c, even, >= 4; codes have b = ceil(log2 c) bits, width d = 4b + 2.
        seq_len: N >= 4, the longest input; β = (ln N + 2·margin_nats)/2.
        margin_nats: m > 0, log-odds (nats) of the match over the sink and of the sink over all
            mismatches together; exact for m >= 1 (default 4).
        beta1: β₁ > 0, inverse temperature of the previous-token head (bias -β₁|t - 1|); its leak
            η ≈ 2e^{-β₁} must keep δ = 3βηb small (default 20: δ < 1e-5 for N, c <= 2^20).
        threshold: τ in (0, 1), the smallest |bit| that counts as an answer (default 1/2).
    """
    return AttentionSoftmax(vocab_size, seq_len, margin_nats=margin_nats, beta1=beta1, threshold=threshold)
