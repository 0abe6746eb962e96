"""The demo's users with friends and interactions, friends only, or neither (jobs.demo.users), as the landing
zone (jobs.demo.inputs) and the cluster generator (jobs.generate) write them, the simulated world that scores
them all (jobs.demo.simulate_traffic --population) and the recommender's tuning schedule (jobs.train_schedule)."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs import generate, train_schedule
from jobs.demo import inputs as demo_inputs, simulate_traffic
from jobs.demo.users import BOTH, ISOLATED, SOCIAL, user_kind

DS = "2026-01-05"


def _read(path) -> dict:
    return pq.read_table(path).to_pydict()


def test_split_is_a_function_of_the_id_and_the_seed():
    ids = np.arange(20_000)
    kinds = user_kind(ids, 0.2, 0.1, seed=3)
    assert np.mean(kinds == SOCIAL) == pytest.approx(0.2, abs=0.01)
    assert np.mean(kinds == ISOLATED) == pytest.approx(0.1, abs=0.01)
    np.testing.assert_array_equal(user_kind(ids[::-1], 0.2, 0.1, seed=3), kinds[::-1])  # any order, any block
    assert (user_kind(ids, 0.2, 0.1, seed=4) != kinds).mean() > 0.1                     # another seed, another split
    assert (user_kind(ids, 0.0, 0.0, seed=3) == BOTH).all()
    with pytest.raises(ValueError, match="sum"):
        user_kind(ids, 0.6, 0.5, seed=0)


def test_landing_zone_has_every_kind_of_user(tmp_path):
    m = demo_inputs.main(["--work", str(tmp_path), "--ds", DS, "--nodes", "500", "--items", "60",
                          "--communities", "4", "--social-only", "0.2", "--isolated", "0.1"])
    day = tmp_path / f"raw/ds={DS}"
    kinds = user_kind(np.arange(500), 0.2, 0.1, seed=0)
    assert m["users"] == {"both": int((kinds == BOTH).sum()), "social": int((kinds == SOCIAL).sum()),
                          "isolated": int((kinds == ISOLATED).sum())}
    edges, inter = _read(day / "graph/edges"), _read(day / "interactions/interactions")
    world, users = _read(day / "population/interactions"), _read(day / "population/users")
    in_graph = set(edges["src"]) | set(edges["dst"])
    assert not in_graph & set(np.flatnonzero(kinds == ISOLATED).tolist())      # no friends
    social = set(np.flatnonzero(kinds == SOCIAL).tolist())
    assert len(social & in_graph) >= 0.9 * len(social)                            # friends ...
    assert set(inter["user"]) == set(np.flatnonzero(kinds == BOTH).tolist())    # ... interactions only for "both"
    assert users["user"] == list(range(500)) and set(users["kind"]) == {"both", "social", "isolated"}
    # the world holds everyone's true interactions; what is observed is its "both" part, unchanged
    observed = set(zip(inter["user"], inter["item"]))
    truth = set(zip(world["user"], world["item"]))
    assert observed == {(u, i) for u, i in truth if kinds[u] == BOTH} and set(world["user"]) == set(range(500))


def test_simulated_world_scores_every_user(tmp_path):
    demo_inputs.main(["--work", str(tmp_path), "--ds", DS, "--nodes", "300", "--items", "40"])
    day = tmp_path / f"raw/ds={DS}"
    cfg = simulate_traffic.SimulationConfig(url="http://x:1", interactions=str(day / "interactions"), output="o",
                                            population=str(day / "population"))
    world = simulate_traffic.load_world(cfg)
    assert world.population.tolist() == list(range(300))
    truth = _read(day / "population/interactions")
    u, i = np.array(truth["user"]), np.array(truth["item"])
    assert world.reward(u, i).all()  # the hidden interactions of friends-only users earn reward too
    missing = simulate_traffic.load_world(
        simulate_traffic.SimulationConfig(url="http://x:1", interactions=str(day / "interactions" / "interactions"),
                                          output="o", population=str(tmp_path / "nowhere")))
    assert set(missing.population.tolist()) == set(_read(day / "interactions/interactions")["user"])


def _metrics(history, ds, tuned: bool):
    out = history / f"ds={ds}"
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps({"settings": {"lr": 0.01}, "tuning": {"best": {}} if tuned else None}))


def test_recommender_tunes_on_schedule_and_reuses_the_last_tuned_settings(tmp_path, capsys):
    h = tmp_path / "recommender"
    assert train_schedule.train_flags(h, "2026-01-05", every=3, trials=4) == ["--tune", "4"]  # nothing before
    _metrics(h, "2026-01-05", tuned=True)
    _metrics(h, "2026-01-06", tuned=False)
    _metrics(h, "2026-01-08", tuned=True)  # a later day never decides for an earlier one
    for ds in ("2026-01-06", "2026-01-07"):
        assert train_schedule.train_flags(h, ds, every=3, trials=4) == ["--settings",
                                                                        str(h / "ds=2026-01-05" / "metrics.json")]
    assert train_schedule.train_flags(h, "2026-01-08", every=3, trials=4) == ["--tune", "4"]  # 3 days on: re-run tunes
    assert train_schedule.train_flags(h, "2026-01-09", every=3, trials=4)[1].endswith("ds=2026-01-08/metrics.json")
    assert train_schedule.train_flags(h, "2026-01-09", every=0, trials=4) == []
    assert train_schedule.main(["--history", str(h), "--ds", "2026-01-07", "--every", "3", "--trials", "2"]) == 0
    assert capsys.readouterr().out.strip() == f"--settings {h / 'ds=2026-01-05' / 'metrics.json'}"


@pytest.mark.spark
def test_cluster_generator_withholds_the_same_users(spark, tmp_path):
    args = ["--nodes", "400", "--communities", "4", "--social-only", "0.2", "--isolated", "0.1", "--block", "150"]
    generate.run(spark, generate.parse_args(["graph", *args, "--output", str(tmp_path / "g")]))
    generate.run(spark, generate.parse_args(["interactions", *args, "--items", "50", "--output", str(tmp_path / "i")]))
    kinds = user_kind(np.arange(400), 0.2, 0.1, seed=0)
    edges, inter = _read(tmp_path / "g/edges"), _read(tmp_path / "i/interactions")
    assert not (set(edges["src"]) | set(edges["dst"])) & set(np.flatnonzero(kinds == ISOLATED).tolist())
    assert set(inter["user"]) == set(np.flatnonzero(kinds == BOTH).tolist())
    demo_inputs.main(["--work", str(tmp_path / "d"), "--ds", DS, *args, "--items", "50"])
    demo = _read(tmp_path / f"d/raw/ds={DS}/interactions/interactions")
    assert set(zip(demo["user"], demo["item"])) == set(zip(inter["user"], inter["item"]))  # one split, one generator
