"""The one Diag-LinUCB state core, the typed manifest and the acyclic params/publish modules."""
from __future__ import annotations

import ast
import json

import numpy as np
import pytest

from recsys.bandits import edge_index as ei_mod
from recsys.bandits.manifest import Manifest, Watermark, read_manifest
from recsys.bandits.params import BanditParams, load_params, publish_params
from recsys.bandits.state import Applied, EdgeDelta, EdgeStats, aggregate_terms, merge_deltas
from tests.serving_support import PROJECT_ROOT


def _params(**kw):
    return BanditParams.build(lam=1.0, alpha=0.5, k=2, w=2, edge_cluster=[0, 0, 1], edge_item=[10, 11, 10],
                              user=[5, 5], user_cluster=[0, 1], user_weight=[0.6, 0.4],
                              centroids=np.zeros((2, 3), np.float32), **kw)


def _reference(edges, lam, terms, mode):
    """Dict reference: per (cluster, item) d, b after the terms, one at a time."""
    acc = {e: (lam, 0.0) for e in edges}
    for c, i, w, r in terms:
        if c < 0 or w == 0 or (mode == "skip" and (c, i) not in acc):
            continue
        d, b = acc.get((c, i), (lam, 0.0))
        acc[(c, i)] = (d + w * w, b + w * r)
    return acc


@pytest.mark.parametrize("mode", ["skip", "prior"])
def test_apply_in_chunks_equals_a_direct_replay_and_counts_pairs(mode, monkeypatch):
    monkeypatch.setattr(ei_mod, "_MERGE_AT", 20)          # the index's overflow merge runs too
    rng = np.random.default_rng(0)
    edges = sorted({(int(c), int(i)) for c, i in zip(rng.integers(0, 6, 60), rng.integers(0, 30, 60))})
    st = EdgeStats.from_edges([c for c, _ in edges], [i for _, i in edges], lam=0.7, off_graph=mode)
    terms = [(int(c), int(i), float(w), float(r)) for c, i, w, r in
             zip(rng.integers(-1, 8, 500), rng.integers(0, 40, 500), rng.choice([0.0, 0.3, 0.5, 1.0], 500), rng.normal(size=500))]
    applied = []
    for chunk in np.array_split(np.arange(len(terms)), 9):
        c, i, w, r = (np.array(x) for x in zip(*[terms[j] for j in chunk]))
        applied.append(st.apply(aggregate_terms(c, i, w, r)))
    want = _reference(edges, 0.7, terms, mode)
    got = st.edges()
    keys = list(zip(got["cluster"].tolist(), got["item"].tolist()))
    assert keys == sorted(want)
    np.testing.assert_allclose(np.c_[got["d"], got["b"]], np.array([want[k] for k in keys]), rtol=1e-12, atol=1e-15)
    # after the arrays grew, a pair that is not an edge still scores with the prior d = λ, b = 0 (prior) or not at all
    mean, unc = st.score(np.array([[100, 0]]), np.array([[1.0, 0.0]]), np.array([[5]]))
    assert mean[0, 0] == 0.0 and unc[0, 0] == pytest.approx(1 / np.sqrt(0.7) if mode == "prior" else 0.0, rel=1e-12)
    created = sum(a.created for a in applied)
    assert created == (len(want) - len(edges) if mode == "prior" else 0)
    assert (sum(a.skipped for a in applied) > 0) == (mode == "skip")


def test_score_counts_clusters_by_mode():
    lam = 2.0
    for mode, want_unc in (("skip", np.sqrt(0.36 / lam)), ("prior", np.sqrt((0.36 + 0.16) / lam))):
        st = EdgeStats.from_edges([0], [10], lam=lam, off_graph=mode)
        mean, unc = st.score(np.array([[0, 1, -1]]), np.array([[0.6, 0.4, 0.0]]), np.array([[10, 99]]))
        assert mean.tolist() == [[0.0, 0.0]]
        assert unc[0, 0] == pytest.approx(want_unc, rel=1e-12)
        assert unc[0, 1] == (0.0 if mode == "skip" else pytest.approx(np.sqrt(0.52 / lam)))


def test_deltas_merge_in_any_order_and_validate():
    a = aggregate_terms([0, 1, 0], [5, 5, 5], [0.5, 1.0, 0.5], [1.0, 0.0, 1.0])
    b = EdgeDelta.from_pairs([1, 0], [5, 5], [1.0, 0.5], [2.0, 0.5])
    m1, m2 = merge_deltas([a, b]), merge_deltas([b, a])
    np.testing.assert_array_equal(m1.keys, m2.keys)
    np.testing.assert_allclose(m1.w2, [1.0, 2.0])
    np.testing.assert_allclose(m1.wr, [1.5, 2.0])
    with pytest.raises(ValueError, match="finite"):
        aggregate_terms([0], [5], [1.0], [np.nan])
    with pytest.raises(ValueError, match=">= 0"):
        aggregate_terms([0], [5], [-0.1], [1.0])
    st = EdgeStats.from_edges([0], [5], lam=1.0, off_graph="skip")
    assert st.apply(m1) == Applied(updated=1, created=0, skipped=1)


def test_manifest_states_the_mode_and_old_manifests_are_handled(tmp_path):
    root = tmp_path / "p"
    publish_params(root, _params(off_graph="skip", extra={"weighting": "softmax"}))
    path = root / "v=1" / "manifest.json"
    on_disk = json.loads(path.read_text())
    assert on_disk["off_graph"] == "skip" and "off_graph" not in on_disk["extra"] and on_disk["format"] == 2
    man = read_manifest(root)
    assert isinstance(man, Manifest) and man.off_graph == "skip" and man.extra == {"weighting": "softmax"}
    p = load_params(root)
    assert p.off_graph == "skip" and p.extra["weighting"] == "softmax"
    # format 1 (recsys.candidates before the typed field): the mode lived in extra
    old = {k: v for k, v in on_disk.items() if k not in ("off_graph", "format")}
    path.write_text(json.dumps({**old, "extra": {"off_graph": "skip"}}))
    assert read_manifest(root).off_graph == "skip" and load_params(root).off_graph == "skip"
    # a manifest that never stated the mode is refused, naming the file (it used to be served as "prior")
    path.write_text(json.dumps({**old, "extra": {}}))
    with pytest.raises(ValueError, match=r"v=1/manifest.json: no 'off_graph'"):
        load_params(root)
    path.write_text(json.dumps({**on_disk, "off_graph": "sometimes"}))
    with pytest.raises(ValueError, match="off_graph must be 'skip' or 'prior'"):
        read_manifest(root)
    with pytest.raises(ValueError, match="missing field"):
        Manifest.from_json({"version": 1}, "m.json")


def test_params_mode_is_typed():
    p = _params()
    assert p.off_graph == "prior" and p.extra["off_graph"] == "prior"
    q = p.replace(off_graph="skip")
    assert q.off_graph == "skip" and q.extra["off_graph"] == "skip"
    assert p.replace(extra={"off_graph": "skip"}).off_graph == "skip"
    assert q.replace(extra={"note": 1}).off_graph == "skip"
    assert q.manifest(4, "now").extra == {}
    with pytest.raises(ValueError, match="extra"):
        _params(off_graph="skip", extra={"off_graph": "prior"})
    with pytest.raises(ValueError, match="off_graph"):
        _params(off_graph="maybe")
    assert Watermark(events=1).advanced(2, 5.0, 7) == Watermark(events=3, ts=5.0, seq=7)


def _imports(module: str) -> set[str]:
    tree = ast.parse((PROJECT_ROOT / (module.replace(".", "/") + ".py")).read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_bandit_modules_import_one_way():
    """edge_index <- state <- versions/manifest <- publish <- params: no module imports one above it."""
    order = ["recsys.bandits.edge_index", "recsys.bandits.state", "recsys.bandits.versions", "recsys.bandits.manifest",
             "recsys.bandits.publish", "recsys.bandits.params"]
    for i, mod in enumerate(order):
        above = set(order[i + 1:])
        assert not (_imports(mod) & above), f"{mod} imports {_imports(mod) & above}"
    assert "__getattr__" not in (PROJECT_ROOT / "recsys/bandits/params.py").read_text()
