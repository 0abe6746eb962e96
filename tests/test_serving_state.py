"""Serving statistics: formulas against a direct implementation, edge index, log records."""
from __future__ import annotations

import numpy as np
import pytest

from recsys.bandits import edge_index as ei_mod
from recsys.bandits.edge_index import EdgeIndex
from recsys.serving.log_records import Impression, LoggedEvents, impressions_to_arrow
from recsys.serving.state import ServingStats, UnknownUser
from recsys.serving.store_redis import pack_event, unpack_entries
from recsys.serving.synthetic import synthetic_params


def _direct_score(p, d_map, b_map, user, items):
    """score(u, j) = Σ_c w·b/d + α·sqrt(Σ_c w²/d), one (cluster, item) at a time."""
    rows = [(c, w) for u, c, w in zip(p.user.tolist(), p.user_cluster.tolist(), p.user_weight.tolist()) if u == user][: p.k]
    out = []
    for j in items:
        mean = sum(w * b_map.get((c, j), 0.0) / d_map.get((c, j), p.lam) for c, w in rows)
        var = sum(w * w / d_map.get((c, j), p.lam) for c, w in rows)
        out.append((mean, np.sqrt(var), mean + p.alpha * np.sqrt(var)))
    return out


@pytest.fixture()
def params():
    return synthetic_params(n_clusters=12, n_items=80, n_users=30, w=15, k=3, lam=0.7, alpha=0.9, seed=3)


def _random_events(p, rng, n):
    """n random events: (user, item, reward) with items drawn from the user's candidates."""
    st = ServingStats(p)
    out = []
    for _ in range(n):
        u = int(rng.integers(0, 30))
        c, _w = st.context(u)
        cand = st.candidates(c)
        out.append((u, int(rng.choice(cand)) if rng.random() < 0.9 else int(rng.integers(80, 90)), float(rng.normal())))
    return out


def _apply(st, p, events):
    for u, item, r in events:
        c, w = st.context(u)
        st.apply(c, np.full(c.size, item), w, np.full(c.size, r))


def test_scores_match_direct_formula_after_updates(params):
    rng = np.random.default_rng(0)
    events = _random_events(params, rng, 300)
    st = ServingStats(params)
    _apply(st, params, events)
    # the direct reference: dict sums per (cluster, item)
    ctx = {}
    for u, c, w in zip(params.user.tolist(), params.user_cluster.tolist(), params.user_weight.tolist()):
        ctx.setdefault(u, []).append((c, w))
    d_map = {(c, i): params.lam for c, i in zip(params.edge_cluster.tolist(), params.edge_item.tolist())}
    b_map = {k: 0.0 for k in d_map}
    for u, item, r in events:
        for c, w in ctx[u][: params.k]:
            d_map[(c, item)] = d_map.get((c, item), params.lam) + w * w
            b_map[(c, item)] = b_map.get((c, item), 0.0) + w * r
    for user in (0, 7, 29):
        c, w = st.context(user)
        cand = np.concatenate([st.candidates(c), [85, 1000]])   # includes non-edges and unknown items
        ranked = st.score(c, w, cand, k=cand.size)
        want = dict(zip(cand.tolist(), _direct_score(params, d_map, b_map, user, cand.tolist())))
        for item, m, u, s in zip(ranked.items.tolist(), ranked.mean, ranked.uncertainty, ranked.score):
            np.testing.assert_allclose([m, u, s], want[item], rtol=1e-12, atol=1e-15)
        assert np.all(np.diff(ranked.score) <= 0), "ranked best first"


def test_top_k_is_the_best_k(params):
    st = ServingStats(params)
    _apply(st, params, _random_events(params, np.random.default_rng(1), 200))
    c, w = st.context(5)
    full = st.score(c, w, None, k=10_000)
    top = st.score(c, w, None, k=7)
    assert top.items.size == 7
    np.testing.assert_allclose(top.score, full.score[:7])
    assert set(top.items.tolist()) <= set(full.items.tolist())


def test_partial_updates_in_any_order_equal_single_pass(params):
    events = _random_events(params, np.random.default_rng(2), 400)
    one = ServingStats(params)
    _apply(one, params, events)
    parts = ServingStats(params)
    order = np.random.default_rng(9).permutation(len(events))
    for chunk in np.array_split(order, 7)[::-1]:
        _apply(parts, params, [events[i] for i in chunk])
    a, b = one.edges_table(), parts.edges_table()
    ka = sorted(zip(a["cluster"].tolist(), a["item"].tolist(), a["d"].tolist(), a["b"].tolist()))
    kb = sorted(zip(b["cluster"].tolist(), b["item"].tolist(), b["d"].tolist(), b["b"].tolist()))
    assert [k[:2] for k in ka] == [k[:2] for k in kb]
    np.testing.assert_allclose(np.array(ka)[:, 2:], np.array(kb)[:, 2:], rtol=1e-12)


def test_unknown_user_raises(params):
    with pytest.raises(UnknownUser):
        ServingStats(params).context(10_000)


def test_edge_index_matches_a_dict_and_grows(monkeypatch):
    monkeypatch.setattr(ei_mod, "_MERGE_AT", 50)       # exercise the overflow merge too
    rng = np.random.default_rng(4)
    cl = rng.integers(0, 20, 300)
    it = rng.integers(0, 10**12, 300)
    pairs = dict.fromkeys(zip(cl.tolist(), it.tolist()))
    cl = np.array([c for c, _ in pairs])
    it = np.array([i for _, i in pairs])
    ix = EdgeIndex.build(cl, it)
    ref = {p: e for e, p in enumerate(pairs)}
    for _ in range(5):                                   # new pairs, some with brand-new items
        nc = rng.integers(0, 25, 40)
        ni = np.where(rng.random(40) < 0.5, rng.choice(it, 40), rng.integers(0, 10**12, 40))
        eids = ix.add(nc, ni)
        for c, i, e in zip(nc.tolist(), ni.tolist(), eids.tolist()):
            assert ref.setdefault((c, i), e) == e
    qc = np.concatenate([np.array([c for c, _ in ref]), rng.integers(0, 25, 50)])
    qi = np.concatenate([np.array([i for _, i in ref]), rng.integers(0, 10**12, 50)])
    got = ix.lookup(qc, qi)
    assert got.tolist() == [ref.get((c, i), -1) for c, i in zip(qc.tolist(), qi.tolist())]
    assert ix.n_edges == len(ref)
    c, i = ix.edge_pairs()
    assert list(zip(c.tolist(), i.tolist())) == sorted(ref, key=ref.get)
    items3, e3 = ix.cluster_edges(3)
    assert sorted(items3.tolist()) == sorted(i for (c, i) in ref if c == 3)


def test_edge_index_rejects_duplicates():
    with pytest.raises(ValueError, match="duplicate"):
        EdgeIndex.build(np.array([1, 1]), np.array([5, 5]))


def _events():
    imps = [Impression(f"s{i}", i, 1, 10.0 + i, np.arange(i % 3 + 1, dtype=np.int32), np.linspace(0.1, 1, i % 3 + 1),
                       np.array([i, i + 1])) for i in range(6)]
    return LoggedEvents.from_impressions([f"e{i}" for i in range(6)], [im.score_id for im in imps],
                                         np.array([im.items[0] for im in imps]), np.arange(6.0), np.arange(6.0) + 0.5, imps), imps


def test_logged_events_take_concat_terms():
    ev, _ = _events()
    ev = ev.with_seq(np.arange(1, 7))
    part = LoggedEvents.concat([ev.take(np.array([0, 1, 2])), ev.take(np.array([3, 4, 5]))])
    for a, b in zip(part.terms(), ev.terms()):
        np.testing.assert_array_equal(a, b)
    sub = ev.take(np.array([4, 1]))
    assert sub.event_id == ["e4", "e1"]
    np.testing.assert_array_equal(sub.term_cluster, np.concatenate([ev.term_cluster[ev.term_ptr[4]:ev.term_ptr[5]],
                                                                    ev.term_cluster[ev.term_ptr[1]:ev.term_ptr[2]]]))
    t = ev.to_arrow()
    assert t.column_names == ["event_id", "score_id", "item", "reward", "ts", "seq"]
    assert t.column("seq").to_pylist() == list(range(1, 7))


def test_redis_payload_roundtrip_and_impression_rows():
    ev, imps = _events()
    ev = ev.with_seq(np.arange(1, 7))
    back = unpack_entries([(f"{s}-0".encode(), {b"p": pack_event(ev, i)}) for i, s in enumerate(ev.seq.tolist())])
    assert back.event_id == ev.event_id and back.score_id == ev.score_id
    for a, b in zip(back.terms(), ev.terms()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.ts, ev.ts)
    t = impressions_to_arrow(imps)
    assert t.num_rows == sum(im.clusters.size * im.items.size for im in imps)
    assert t.column_names == ["score_id", "user", "cluster", "weight", "item", "version", "ts"]


@pytest.mark.parametrize("mode", ["prior", "skip"])
def test_matches_the_bandits_core_policy(params, mode):
    """Same events, same scores as recsys.bandits.diag_linucb.DiagLinUCB (both off_graph rules)."""
    from recsys.bandits.diag_linucb import DiagLinUCB

    p = params.replace(extra={"off_graph": mode})
    st = ServingStats(p)
    pol = DiagLinUCB.from_params(p)
    events = _random_events(p, np.random.default_rng(5), 250)
    _apply(st, p, events)
    ctx = [st.context(u) for u, _, _ in events]
    pol.update(np.array([c for c, _ in ctx]), np.array([w for _, w in ctx]), np.array([e[1] for e in events]),
               np.array([e[2] for e in events]))
    for user in (2, 11, 23):
        c, w = st.context(user)
        cand = np.concatenate([st.candidates(c), [85, 1000]])
        ours = st.score(c, w, cand, k=cand.size)
        theirs = pol.score(c[None, :], w[None, :], cand[None, :])
        order = np.argsort(cand)
        pos = np.searchsorted(cand[order], ours.items)
        np.testing.assert_allclose(ours.mean, np.asarray(theirs.mean)[0][order][pos], rtol=1e-9, atol=1e-12)
