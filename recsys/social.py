"""The social side of the recommender: a user graph and its precomputed embedding as inputs.

graphrec embeds the user graph on Spark (``embed_graph``, DistNE/ProNE) at any scale; the
recommender takes that embedding ``s_u`` and the friend lists as *inputs* instead of propagating
over the social graph inside every training step. Every user's scoring vector becomes

    h_u = e_u + W s_u                      (a learned linear map of the social vector)
    u   = h_u + γ · Σ_v F_uv h_v            (one mean-aggregation hop over friends)

where ``e_u`` is the recommender's own (MF or LightGCN, DSL-sparse) user vector, ``W`` a small
dense ``d_s × d`` matrix, ``F`` the row-normalised friend matrix (out-neighbours of a directed
graph, both directions of an undirected one; at most ``max_friends`` per user, the first by id)
and ``γ`` a fixed weight. ``W`` starts at zero, so training starts from the plain model. This is
SocialMF's / DiffNet's idea (Jamali & Ester, RecSys 2010; Wu et al., SIGIR 2019) with the
precomputed embedding of RecDiff-style fusion; which part carries the gain is measured in
``benchmarks/README.md`` ("Social recommender"). For LightGCN, ``mode="layers"`` instead puts the
friend edges inside every propagation layer (:class:`SocialLightGCN`, SocialLGN-style).

A user with friends or a social vector but no interactions gets ``e_u = 0`` (it is never the
``u`` of a BPR triple) and is scored through ``W s_u`` and its friends: the cold-start path.
Users and the user graph's vertices are joined on the *original* id (the interactions' external
user id = the graph's ``vertices.orig_id``), never on the dense ids each ingest assigns.

>>> import numpy as np
>>> from recsys.data import Interactions
>>> data = Interactions.from_pairs(np.array([0, 0, 1]), np.array([0, 1, 1]))
>>> graph = SocialGraph(np.array([0, 1, 7]), np.array([[0, 1], [1, 7]]), directed=False)
>>> vecs = SocialVectors(np.array([1, 7]), np.ones((2, 4), np.float32))
>>> full, social = align(data, graph, vecs)
>>> full.user_ids.tolist(), social.has_vector.tolist(), social.friends.toarray()[2].tolist()
([0, 1, 7], [False, True, True], [0.0, 1.0, 0.0])
"""
from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp
import torch
from torch import nn

from recsys.data import Interactions
from recsys.export import read_vectors
from recsys.lightgcn import LightGCN

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SocialConfig:
    """How the social inputs enter (see the module docstring).

    Attributes:
        map: add ``W s_u`` (the learned map of the precomputed social vector).
        propagate: γ, the weight of the friends' mean vector (0: no friend hop).
        max_friends: friends kept per user (bounds the per-step cost).
        mode: ``hop`` (the friends' mean added to the final vector, MF and LightGCN) or ``layers``
            (LightGCN only: friend edges inside every propagation layer, :class:`SocialLightGCN`;
            γ is then the weight of the user–user part of each layer).
    """

    map: bool = True
    propagate: float = 0.5
    max_friends: int = 50
    mode: str = "hop"

    def __post_init__(self) -> None:
        if self.mode not in ("hop", "layers"):
            raise ValueError(f"social mode must be 'hop' or 'layers', got {self.mode!r}")
        if self.propagate < 0:
            raise ValueError(f"social propagate weight must be >= 0, got {self.propagate}")
        if self.max_friends < 1:
            raise ValueError(f"max_friends must be >= 1, got {self.max_friends}")


@dataclass(frozen=True)
class SocialGraph:
    """A user graph in original ids: ``orig_ids`` of its vertices, ``edges`` (m, 2) of orig ids."""

    orig_ids: np.ndarray
    edges: np.ndarray
    directed: bool = False


@dataclass(frozen=True)
class SocialVectors:
    """Precomputed social vectors keyed by the users' original ids."""

    orig_ids: np.ndarray
    vectors: np.ndarray


@dataclass(frozen=True)
class SocialInputs:
    """The social inputs aligned to an :class:`Interactions`' users (row ``r`` = ``user_ids[r]``).

    Attributes:
        friends: CSR ``n_users × n_users``, row-normalised (rows of friendless users are empty).
        vectors: ``n_users × d_s`` unit-norm social vectors (zero rows where there is none).
        has_vector: users with a social vector.
    """

    friends: sp.csr_matrix
    vectors: np.ndarray
    has_vector: np.ndarray

    @property
    def has_friends(self) -> np.ndarray:
        return np.diff(self.friends.indptr) > 0

    def coverage(self) -> dict:
        """Shares for ``metrics.json``: users with a social vector / with friends."""
        n = max(len(self.has_vector), 1)
        return {"social_vector_share": float(self.has_vector.sum() / n),
                "friends_share": float(self.has_friends.sum() / n)}


def _as_int_ids(values, where: str) -> np.ndarray:
    try:
        return np.asarray(values).astype(np.int64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: orig_id must be integer ids to join with the interactions' users") from None


def read_social_graph(folder: str | Path) -> SocialGraph:
    """An ``ingest_graph`` output (``edges``, ``vertices``, ``stats.json``) in original ids."""
    folder = Path(folder)
    for t in ("edges", "vertices"):
        if not (folder / t).exists():
            raise FileNotFoundError(f"{folder}: no '{t}' table (expected an ingest_graph output)")
    v = pq.read_table(folder / "vertices", columns=["id", "orig_id"])
    vid = v.column("id").to_numpy().astype(np.int64)
    orig = _as_int_ids(v.column("orig_id").to_pylist(), f"{folder}/vertices")
    lut = np.full(int(vid.max(initial=-1)) + 1, -1, np.int64)
    lut[vid] = orig
    e = pq.read_table(folder / "edges", columns=["src", "dst"])
    src, dst = (e.column(c).to_numpy().astype(np.int64) for c in ("src", "dst"))
    if len(src) and (max(src.max(), dst.max()) >= lut.size or (lut[src] < 0).any() or (lut[dst] < 0).any()):
        raise ValueError(f"{folder}/edges: an edge endpoint is not in vertices")
    stats_p = folder / "stats.json"
    directed = bool(json.loads(stats_p.read_text()).get("directed", True)) if stats_p.exists() else True
    return SocialGraph(orig, np.stack([lut[src], lut[dst]], 1), directed)


def read_social_vectors(embedding: str | Path, graph: str | Path | None = None) -> SocialVectors:
    """An ``embed_graph`` output's ``vectors(id, vector)``, re-keyed to original ids through the
    graph's ``vertices`` when ``graph`` is given (the embedding's ids are the graph's dense ids)."""
    embedding = Path(embedding)
    path = embedding / "vectors" if (embedding / "vectors").exists() else embedding
    if not path.exists():
        raise FileNotFoundError(f"{embedding}: no 'vectors' table (expected an embed_graph output)")
    ids, vecs = read_vectors(path)
    if len(ids) == 0:
        raise ValueError(f"{path}: no vectors")
    if graph is not None:
        v = pq.read_table(Path(graph) / "vertices", columns=["id", "orig_id"])
        vid = v.column("id").to_numpy().astype(np.int64)
        orig = _as_int_ids(v.column("orig_id").to_pylist(), f"{graph}/vertices")
        order = np.argsort(vid)
        pos = np.searchsorted(vid[order], ids).clip(max=len(vid) - 1)
        bad = vid[order][pos] != ids
        if bad.any():
            raise ValueError(f"{path}: vector id {int(ids[bad][0])} is not a vertex of {graph}")
        ids = orig[order][pos]
    return SocialVectors(ids, vecs)


def _lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index of each ``query`` in ``keys`` (-1 when absent)."""
    order = np.argsort(keys, kind="stable")
    pos = np.searchsorted(keys[order], query).clip(max=max(len(keys) - 1, 0))
    hit = (keys[order][pos] == query) if len(keys) else np.zeros(len(query), bool)
    return np.where(hit, order[pos], -1)


def _pad_rows(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    return sp.vstack([m, sp.csr_matrix((n - m.shape[0], m.shape[1]), dtype=m.dtype)]).tocsr() if n > m.shape[0] else m


def align(data: Interactions, graph: SocialGraph | None, vectors: SocialVectors | None,
          max_friends: int = 50) -> tuple[Interactions, SocialInputs]:
    """Join the social side to the interactions on original user ids.

    Users of the graph or of the vectors without interactions are appended (empty train/test
    rows, sorted by id) so that they get a vector from the social side; interaction users absent
    from the social side keep empty friend rows and zero social vectors. Neither is an error.
    """
    extra = np.setdiff1d(np.union1d(graph.orig_ids if graph is not None else [],
                                    vectors.orig_ids if vectors is not None else []).astype(np.int64),
                         data.user_ids)
    user_ids = np.concatenate([data.user_ids, extra])
    n = len(user_ids)
    if len(extra):
        data = Interactions(_pad_rows(data.train, n), _pad_rows(data.test, n), user_ids, data.item_ids, data.source,
                            {**data.extra, "social_only_users": int(len(extra))}, _pad_rows(data.valid, n))
    friends = sp.csr_matrix((n, n), dtype=np.float32)
    if graph is not None and len(graph.edges):
        s, d = _lookup(user_ids, graph.edges[:, 0]), _lookup(user_ids, graph.edges[:, 1])
        if not graph.directed:
            s, d = np.r_[s, d], np.r_[d, s]
        keep = (s >= 0) & (d >= 0) & (s != d)
        f = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (s[keep], d[keep])), shape=(n, n))
        f.sum_duplicates()
        f.data[:] = 1.0
        f.sort_indices()
        counts = np.diff(f.indptr)
        rank = np.arange(f.nnz) - np.repeat(f.indptr[:-1], counts)
        f.data[rank >= max_friends] = 0.0
        f.eliminate_zeros()
        deg = np.diff(f.indptr)
        f.data /= np.repeat(np.maximum(deg, 1), deg).astype(np.float32)
        friends = f
    dim = vectors.vectors.shape[1] if vectors is not None else 0
    vecs = np.zeros((n, dim), np.float32)
    has = np.zeros(n, bool)
    if vectors is not None:
        pos = _lookup(user_ids, vectors.orig_ids)
        ok = pos >= 0
        v = vectors.vectors[ok]
        vecs[pos[ok]] = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        has[pos[ok]] = True
    social = SocialInputs(friends, vecs, has)
    log.info("social inputs: %d users (%d without interactions), %.1f%% with a social vector, %.1f%% with friends",
             n, len(extra), 100 * has.mean(), 100 * social.has_friends.mean())
    return data, social


class SocialUsers(nn.Module):
    """``u = h_u + γ Σ_v F_uv h_v`` with ``h_u = e_u + W s_u`` over a base model's user vectors.

    :meth:`forward_all` is differentiable end to end (LightGCN, whose propagation yields every
    user's vector each step anyway). :meth:`forward_batch` (MF, sparse row gradients) takes the
    friends' part from a detached copy of all users' vectors, so a step still touches only the
    batch's rows of the user table; the cost is one sparse product ``F · H`` per step.
    """

    def __init__(self, social: SocialInputs, dim: int, config: SocialConfig):
        super().__init__()
        self.config = config
        self.register_buffer("vectors", torch.from_numpy(social.vectors), persistent=False)
        f = social.friends.tocsr().astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            csr = torch.sparse_csr_tensor(torch.from_numpy(f.indptr.astype(np.int64)),
                                          torch.from_numpy(f.indices.astype(np.int64)),
                                          torch.from_numpy(f.data), size=f.shape, check_invariants=False)
        self.register_buffer("friends", csr, persistent=False)
        self.propagate = config.propagate if f.nnz else 0.0
        d_s = social.vectors.shape[1]
        self.map = nn.Parameter(torch.zeros(d_s, dim)) if config.map and d_s else None

    def own(self, e: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        """``h = e + W s`` for ``users`` (all users when ``None``)."""
        if self.map is None:
            return e
        s = self.vectors if users is None else self.vectors[users]
        return e + s @ self.map

    def forward_all(self, e_all: torch.Tensor) -> torch.Tensor:
        """Final vectors of every user from every user's base vector."""
        h = self.own(e_all)
        return h + self.propagate * torch.sparse.mm(self.friends, h) if self.propagate else h

    def forward_batch(self, users: torch.Tensor, e_users: torch.Tensor, e_all: torch.Tensor) -> torch.Tensor:
        """Final vectors of ``users``; the friends' part from ``e_all`` without gradient."""
        h = self.own(e_users, users)
        if not self.propagate:
            return h
        with torch.no_grad():
            agg = torch.sparse.mm(self.friends, self.own(e_all.detach()))
        return h + self.propagate * agg[users]


def _torch_csr(m: sp.csr_matrix) -> torch.Tensor:
    m = m.tocsr().astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)), torch.from_numpy(m.indices.astype(np.int64)),
                                       torch.from_numpy(m.data), size=m.shape, check_invariants=False)


def social_adjacency(friends: sp.csr_matrix) -> sp.csr_matrix:
    """``Ŝ = D^{-1/2} S D^{-1/2}`` of the symmetrised, unweighted friend graph (SocialLGN's social graph)."""
    s = friends.tocsr().astype(np.float32)
    s = ((s + s.T) > 0).astype(np.float32).tocsr()
    deg = np.asarray(s.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    out = (sp.diags(inv) @ s @ sp.diags(inv)).tocsr()
    out.sort_indices()
    return out


class SocialLightGCN(LightGCN):
    """LightGCN with friend edges inside the propagation (SocialLGN, Liao et al., ICDE 2022, with a
    parameter-free sum fusion): per layer, users aggregate their items *and* their friends,

        E_U^{(l+1)} = (Â E^{(l)})_U + γ · Ŝ E_U^{(l)},    E_I^{(l+1)} = (Â E^{(l)})_I,

    and the layers are averaged as in LightGCN. A user with friends but no interactions
    (``e_u = 0``) gets a vector from its friends from the first layer on.
    """

    def __init__(self, train: sp.csr_matrix, social: SocialInputs, weight: float, **kw):
        super().__init__(train, **kw)
        self.weight = float(weight)
        self.register_buffer("sadj", _torch_csr(social_adjacency(social.friends)), persistent=False)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.user, self.item], 0)
        acc, n = x, self.n_users
        for _ in range(self.layers):
            y = torch.sparse.mm(self.adj, x)
            if self.weight:
                y = torch.cat([y[:n] + self.weight * torch.sparse.mm(self.sadj, x[:n]), y[n:]], 0)
            x = y
            acc = acc + x
        acc = acc / (self.layers + 1)
        return acc[:n], acc[n:]


def cold_user_vectors(users: torch.Tensor, items: torch.Tensor, friends: sp.csr_matrix, train: sp.csr_matrix,
                      blend: float) -> torch.Tensor:
    """Vectors of the users without training interactions, from their friends' *items*:

        w_u = Σ_i c_ui v_i,  c = F R   (F row-normalised friends, R binary training interactions)
        u'  = r̄ · (α û + (1 − α) ŵ_u)   (hats: unit length; û the model's vector, i.e. the friends' mean)

    ``α`` = ``blend`` (1: the model's vector unchanged) and ``r̄`` the mean norm of the users with
    interactions, so that k-means over all users' vectors (the candidate graph) sees one scale.
    Users with interactions, and users whose friends have no items, are returned unchanged.
    """
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"cold blend must be in [0, 1], got {blend}")
    out = users.clone()
    has = torch.from_numpy(np.diff(train.indptr) > 0)
    cold = np.flatnonzero(~has.numpy())
    if blend == 1.0 or not len(cold) or not has.any():
        return out
    r = sp.csr_matrix(train, dtype=np.float32)
    r.data[:] = 1.0
    c = (friends.tocsr()[cold] @ r).tocsr()
    w = torch.from_numpy(c @ items.detach().cpu().numpy()).to(users)
    unit = lambda x: x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)  # noqa: E731
    mixed = blend * unit(users[cold]) + (1 - blend) * unit(w)
    ok = torch.from_numpy(np.diff(c.indptr) > 0).to(users.device)
    scale = users[has.to(users.device)].norm(dim=1).mean()
    rows = torch.from_numpy(cold).to(users.device)
    out[rows[ok]] = scale * mixed[ok]
    return out
