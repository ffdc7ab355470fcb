"""Multi-query associative recall (MQAR): generator, single-query AR, and a dictionary oracle.

Task (Zoology, arXiv 2312.04927, Definition 3.1): at every position i of a token sequence
x_0 .. x_{N-1} over a vocabulary of c tokens, if some j < i has x_j = x_i, output x_{j+1}.

Generator (Algorithm 1 of Appendix E, laid out as the official ``multiquery_ar`` of HazyResearch/zoology does;
``docs/official-code.md`` states its semantics step by step)::

    positions   0   1   2   3  ...  2K-2 2K-1 | 2K ... (query region) ... N-1
    inputs      k1  v1  k2  v2 ...  kK   vK   | 0 .. k3 .. 0 .. k1 .. 0 ..
    labels     -100 ...                  -100 | -100 v3 ... v1 ...

* keys are K distinct tokens drawn uniformly from [1, c/2); values K distinct tokens from
  [c/2, c); token 0 is the filler and never a key or value;
* each key j is queried exactly once, at position 2K + 2*g_j (an even offset after the context);
  the slots g_1, g_2, ... are drawn by successive weighted sampling without replacement from
  {0 .. S-1}, S = (N - 2K)/2, with p(g) proportional to (g+1)^(a-1), so key 1 draws first;
* the label (the key's value) sits *at* the query position (next-token prediction), -100
  elsewhere; the value itself never appears after the query;
* filler is 0, or (``random_non_queries``) uniform tokens from [0, c) drawn from the same seeded
  generator (the official code uses torch's global RNG there and ignores the seed);
* ``num_passes`` P (Just read twice, JRT, arXiv 2407.05483): the context k1 v1 .. kK vK is written P times in a
  row, the queries follow it; the query slots are then S = (N - 2KP)/2, which needs 2KP + 2K <= N (the official
  generator's assertion). P = 1 is Algorithm 1 and gives the same tensors as before the option existed. (The
  official ``multiquery_ar`` asks for this layout but, for P > 1 and K > 1, fails to broadcast K keys into the
  K·P-wide context it allocates; we write the layout its docstring and JRT describe.)

Everything is vectorised over examples with a seeded ``numpy.random.Generator``; memory is
O(num_examples * seq_len), never O(num_examples * vocab_size).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .utils import is_int, is_number, resolve_device

IGNORE_INDEX = -100
#: largest vocabulary accepted: token ids must fit torch's int32 index kernels and numpy's bounded draws, and a
#: model's embedding table at c = 2^31 would already hold 2^31 * d numbers (8 GiB per unit of width).
MAX_VOCAB_SIZE = 2**31
#: largest num_examples * seq_len accepted: inputs and labels are two int64 tensors of that many entries (16 GiB
#: each), so a typo such as num_examples=10**9 fails here, not as a MemoryError deep inside numpy.
MAX_TOKENS = 2**31

__all__ = [
    "IGNORE_INDEX",
    "MAX_VOCAB_SIZE",
    "MAX_TOKENS",
    "MQARConfig",
    "MQARData",
    "make_mqar",
    "make_ar",
    "mqar_oracle",
    "query_slot_probabilities",
]


@dataclass(frozen=True)
class MQARConfig:
    """Parameters of Algorithm 1. Names follow the official code; c = vocab_size, N = seq_len."""

    vocab_size: int = 8192  # c: keys in [1, c/2), values in [c/2, c), 0 is filler
    seq_len: int = 64  # N: even, >= 4 * num_kv_pairs
    num_kv_pairs: int = 4  # K (D in the paper): pairs in the context = queries per example
    power_a: float = 0.01  # a in (0, 1]: query slot g drawn with p(g) ∝ (g+1)^(a-1); a = 1 is uniform
    random_non_queries: bool = False  # filler: 0 (paper's configs) or uniform random tokens
    num_examples: int = 1000
    seed: int = 0
    num_passes: int = 1  # P (JRT): the context written P times before the queries

    def __post_init__(self):
        validate_config(self)

    @property
    def num_slots(self) -> int:
        """S = (N - 2KP) / 2 query slots after the context (P = ``num_passes``)."""
        return (self.seq_len - 2 * self.num_kv_pairs * self.num_passes) // 2


@dataclass
class MQARData:
    """A batch of MQAR examples: ``inputs`` and ``labels`` are int64 tensors of shape (n, N)."""

    inputs: torch.Tensor  # (n, N) tokens
    labels: torch.Tensor  # (n, N) value at query positions, IGNORE_INDEX elsewhere
    config: MQARConfig | None = None

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def to(self, device) -> MQARData:
        """A copy on ``device`` ("auto", "cpu", "cuda", ...; ``ValueError`` if that device is not there)."""
        device = resolve_device(device)
        return MQARData(self.inputs.to(device), self.labels.to(device), self.config)



def _require(ok: bool, field: str, rule: str, value) -> None:
    if not ok:
        raise ValueError(f"{field}={value!r}: {rule}")


def validate_config(cfg: MQARConfig) -> None:
    """Raise ``ValueError`` naming the field and the rule for every invalid configuration.

    ``power_a`` must lie in (0, 1]: the paper's power law p(g) ∝ (g+1)^(a-1) makes early slots likelier (a < 1,
    the paper's 0.01) or is uniform (a = 1); a > 1 would favour the *latest* slots, which no configuration of the
    paper or the official code uses, so we reject it rather than silently invert the law.
    """
    c, N, K = cfg.vocab_size, cfg.seq_len, cfg.num_kv_pairs
    _require(is_int(c) and c >= 4, "vocab_size", "must be an integer >= 4", c)
    _require(c <= MAX_VOCAB_SIZE, "vocab_size", f"must be <= 2**31 = {MAX_VOCAB_SIZE} (token ids index an "
             "embedding table)", c)
    _require(c % 2 == 0, "vocab_size", "must be even (Algorithm 1 splits it into key and value halves)", c)
    _require(is_int(N) and N >= 4, "seq_len", "must be an integer >= 4", N)
    _require(N % 2 == 0, "seq_len", "must be even (queries sit at even offsets after the context)", N)
    _require(is_int(K) and K >= 1, "num_kv_pairs", "must be an integer >= 1", K)
    P = cfg.num_passes
    _require(is_int(P) and P >= 1, "num_passes", "must be an integer >= 1 (times the context is written)", P)
    _require(
        4 * K <= N, "num_kv_pairs", f"needs 4 * num_kv_pairs <= seq_len (context 2K plus K query slots), N={N}", K
    )
    _require(2 * K * P + 2 * K <= N, "num_passes",
             f"needs 2 * num_kv_pairs * num_passes + 2 * num_kv_pairs <= seq_len (P contexts of 2K plus K query "
             f"slots), K={K}, N={N}", P)
    _require(
        K <= c // 2 - 1,
        "num_kv_pairs",
        f"needs num_kv_pairs <= vocab_size/2 - 1 = {c // 2 - 1} distinct keys from [1, c/2)",
        K,
    )
    a = cfg.power_a
    _require(is_number(a) and 0 < a <= 1, "power_a", "must be a number in (0, 1] (1 = uniform query slots)", a)
    _require(isinstance(cfg.random_non_queries, bool), "random_non_queries", "must be a bool", cfg.random_non_queries)
    _require(is_int(cfg.num_examples) and cfg.num_examples >= 1, "num_examples", "must be an integer >= 1",
             cfg.num_examples)
    _require(cfg.num_examples * N <= MAX_TOKENS, "num_examples",
             f"num_examples * seq_len must be <= 2**31 (two int64 tensors of that size), seq_len={N}",
             cfg.num_examples)
    _require(is_int(cfg.seed) and cfg.seed >= 0, "seed", "must be an integer >= 0", cfg.seed)


def distinct_rows(rng: np.random.Generator, low: int, high: int, n: int, k: int) -> np.ndarray:
    """(n, k) array; each row holds k distinct integers from [low, high), as a uniform random subset
    in uniformly random order.

    Robert Floyd's subset algorithm run over all rows at once: k rounds, each O(n * k), so memory is
    O(n * k) whatever ``high - low`` is, and it never retries (k may equal ``high - low``).
    """
    m = high - low
    if k > m:
        raise ValueError(f"k={k}: cannot draw {k} distinct integers from a range of {m}")
    chosen = np.empty((n, k), dtype=np.int64)
    for r, j in enumerate(range(m - k, m)):
        t = rng.integers(0, j + 1, size=n)
        taken = (chosen[:, :r] == t[:, None]).any(axis=1)
        chosen[:, r] = np.where(taken, j, t)
    order = np.argsort(rng.random((n, k)), axis=1)  # Floyd's order is not uniform: shuffle each row
    return np.take_along_axis(chosen, order, axis=1) + low


def query_slot_probabilities(num_slots: int, power_a: float) -> np.ndarray:
    """p(g) ∝ (g+1)^(a-1) for g = 0 .. S-1 (the official code's power law, normalised)."""
    _require(is_int(num_slots) and num_slots >= 1, "num_slots", "must be an integer >= 1", num_slots)
    _require(is_number(power_a) and 0 < power_a <= 1, "power_a", "must be a number in (0, 1]", power_a)
    g = np.arange(num_slots, dtype=np.float64)
    w = np.exp((power_a - 1.0) * np.log1p(g))
    return w / w.sum()


def _successive_slots(rng: np.random.Generator, n: int, num_slots: int, k: int, power_a: float) -> np.ndarray:
    """(n, k) slots drawn by successive weighted sampling without replacement (the order matters).

    Exponential races: with E_g ~ Exp(1) i.i.d., the slots sorted by E_g / p(g) in increasing order
    are distributed exactly as drawing from p, renormalising over the remaining slots, and repeating
    (the minimum of independent exponentials with rates p(g) is slot g with probability ∝ p(g), and
    memorylessness makes the rest a fresh race). This is the Gumbel-top-k trick without the logs.
    """
    inv_w = np.exp((1.0 - power_a) * np.log1p(np.arange(num_slots, dtype=np.float64)))  # 1 / p(g), unnormalised
    race = rng.standard_exponential(size=(n, num_slots)) * inv_w  # (n, S) arrival times
    top = np.argpartition(race, k - 1, axis=1)[:, :k] if k < num_slots else np.tile(np.arange(k), (n, 1))
    order = np.argsort(np.take_along_axis(race, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def make_mqar(config: MQARConfig | None = None, **overrides) -> MQARData:
    """Generate MQAR examples (Algorithm 1). ``make_mqar(MQARConfig(...))`` or ``make_mqar(seq_len=32, ...)``.

    Same config (seed included) gives the same tensors on every machine.
    """
    if config is not None and not isinstance(config, MQARConfig):
        raise ValueError(f"config: must be an MQARConfig or None (then pass the fields as keywords), got "
                         f"{type(config).__name__}")
    unknown = sorted(set(overrides) - set(MQARConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{unknown[0]}: not an MQARConfig field; the fields are "
                         f"{sorted(MQARConfig.__dataclass_fields__)}")
    cfg = MQARConfig(**overrides) if config is None else (
        MQARConfig(**{**asdict(config), **overrides}) if overrides else config
    )
    c, N, K, n = int(cfg.vocab_size), int(cfg.seq_len), int(cfg.num_kv_pairs), int(cfg.num_examples)
    rng = np.random.default_rng(int(cfg.seed))
    half, C = c // 2, 2 * K
    keys = distinct_rows(rng, 1, half, n, K)  # (n, K)
    values = distinct_rows(rng, half, c, n, K)  # (n, K)
    slots = _successive_slots(rng, n, cfg.num_slots, K, cfg.power_a)  # (n, K): key j -> slot

    inputs = np.zeros((n, N), dtype=np.int64)
    labels = np.full((n, N), IGNORE_INDEX, dtype=np.int64)
    P = int(cfg.num_passes)
    for q in range(P):  # the context, written P times (JRT); P = 1 is Algorithm 1
        inputs[:, q * C : (q + 1) * C : 2] = keys
        inputs[:, q * C + 1 : (q + 1) * C : 2] = values
    C = C * P  # the whole context
    qpos = C + 2 * slots  # (n, K) even offsets after the context
    rows = np.arange(n)[:, None]
    inputs[rows, qpos] = keys
    labels[rows, qpos] = values
    if cfg.random_non_queries:
        filler = inputs == 0
        filler[:, :C] = False
        inputs[filler] = rng.integers(0, c, size=int(filler.sum()))
    return MQARData(torch.from_numpy(inputs), torch.from_numpy(labels), cfg)


def make_ar(vocab_size: int = 40, seq_len: int = 31, num_examples: int = 1000, seed: int = 0) -> MQARData:
    """The older single-query associative recall (H3/Hyena style), for contrast with MQAR.

    Each example draws a random dictionary key -> value (keys [1, c/2), values [c/2, c)), writes
    P = (N-1)//2 key-value bigrams k v k v ... (keys with replacement, so the dictionary is
    consistent), pads with 0 if N is even, and ends with one query: a key from the context. The only
    label is that key's value, at the last position. The vocabulary is small (tens of tokens) and the
    query position fixed, which is why gated convolutions solve it and MQAR is the harder probe.
    """
    _require(is_int(vocab_size) and vocab_size >= 4 and vocab_size % 2 == 0, "vocab_size",
             "must be an even integer >= 4", vocab_size)
    _require(vocab_size <= 2**16, "vocab_size", "must be <= 2**16 (make_ar keeps a (num_examples, c/2) table)",
             vocab_size)
    _require(is_int(seq_len) and seq_len >= 3, "seq_len", "must be an integer >= 3", seq_len)
    _require(is_int(num_examples) and num_examples >= 1, "num_examples", "must be an integer >= 1", num_examples)
    _require(is_int(seed) and seed >= 0, "seed", "must be an integer >= 0", seed)
    _require(num_examples * max(seq_len, vocab_size // 2) <= MAX_TOKENS, "num_examples",
             f"num_examples * max(seq_len, vocab_size/2) must be <= 2**31, seq_len={seq_len}", num_examples)
    rng = np.random.default_rng(int(seed))
    c, N, n = int(vocab_size), int(seq_len), int(num_examples)
    half, P = c // 2, (seq_len - 1) // 2
    table = rng.integers(half, c, size=(n, half))  # (n, c/2) value of each key (index 0 unused)
    keys = rng.integers(1, half, size=(n, P))  # (n, P)
    rows = np.arange(n)[:, None]
    inputs = np.zeros((n, N), dtype=np.int64)
    labels = np.full((n, N), IGNORE_INDEX, dtype=np.int64)
    inputs[:, 0 : 2 * P : 2] = keys
    inputs[:, 1 : 2 * P : 2] = table[rows, keys]
    q = keys[np.arange(n), rng.integers(0, P, size=n)]  # (n,) a key present in the context
    inputs[:, -1] = q
    labels[:, -1] = table[np.arange(n), q]
    return MQARData(torch.from_numpy(inputs), torch.from_numpy(labels), None)


def mqar_oracle(tokens) -> torch.Tensor:
    """Answer of Definition 3.1 at every position, by a plain dictionary lookup.

    out[i] = x[j+1] for the *first* j < i with x[j] = x[i]; -1 where no earlier occurrence exists.
    The first occurrence is our decision where the definition is silent about repeats: it is the
    context pair in every ``make_mqar`` sequence, so it agrees with the labels even when random
    filler repeats a key (an unlabelled distractor) before the real query.
    Accepts (N,) or (B, N) integer token ids (a tensor, array or nested list, N >= 1); returns a LongTensor of the
    same shape. Anything else (a scalar, a float or bool tensor, a ragged list, rank > 2) is a ``ValueError``.
    """
    try:
        x = torch.as_tensor(tokens)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"tokens: must be a tensor of integer token ids of shape (N,) or (B, N): {e}") from None
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise ValueError(f"tokens: must hold integer token ids, got dtype {x.dtype}")
    if x.dim() not in (1, 2) or x.shape[-1] < 1:
        raise ValueError(f"tokens: must have shape (N,) or (B, N) with N >= 1, got {tuple(x.shape)}")
    flat = x.reshape(-1, x.shape[-1]).tolist()
    out = []
    for row in flat:
        first: dict[int, int] = {}
        ans = []
        for i, tok in enumerate(row):
            j = first.get(tok)
            ans.append(row[j + 1] if j is not None else -1)
            if j is None:
                first[tok] = i
        out.append(ans)
    return torch.tensor(out, dtype=torch.long).reshape(x.shape)
