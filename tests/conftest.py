"""Shared fixtures: the sample organisation, tiny hand-built organisations, the reference data folder."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``tests/data``: public reference data committed with its source and licence (see its README.md)."""
    return REFERENCE


@pytest.fixture(scope="session")
def sample_tables() -> dict[str, pd.DataFrame]:
    """The bundled sample organisation's raw tables (seed 0)."""
    from okr_analysis.sample import make_sample

    return make_sample(seed=0)


@pytest.fixture(scope="session")
def sample_ds(sample_tables):
    """The sample organisation as a validated Dataset."""
    from okr_analysis.io import from_frames

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return from_frames(sample_tables, source="sample")


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory, sample_tables) -> Path:
    """The sample organisation written as a folder of CSV files."""
    from okr_analysis.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("sample") / "org", seed=0)


def tiny_tables() -> dict[str, pd.DataFrame]:
    """A small valid organisation: company → 2 departments → 3 teams, one quarter (2026Q3).

    Tests copy it and change what they need.
    """
    teams = pd.DataFrame({
        "team_id": ["co", "d1", "d2", "t1", "t2", "t3"],
        "team_name": ["Company", "Dept One", "Dept Two", "Team One", "Team Two", "Team Three"],
        "parent_team_id": [None, "co", "co", "d1", "d1", "d2"],
        "headcount": [30, 20, 10, 12, 8, 10],
    })
    objectives = pd.DataFrame({
        "objective_id": ["oc", "od1", "o1", "o2", "o3"],
        "team_id": ["co", "d1", "t1", "t2", "t3"],
        "quarter": ["2026Q3"] * 5,
        "title": ["Delight customers", "Faster support", "Answer fast", "Happy customers", "Ship chat"],
        "parent_objective_id": [None, "oc", "od1", "od1", "oc"],
        "kind": ["aspirational", "aspirational", "committed", "aspirational", "aspirational"],
    })
    key_results = pd.DataFrame({
        "kr_id": ["kc1", "kc2", "kd1", "kd2", "k1a", "k1b", "k2a", "k2b", "k3a", "k3b"],
        "objective_id": ["oc", "oc", "od1", "od1", "o1", "o1", "o2", "o2", "o3", "o3"],
        "title": ["NPS from 40 to 60", "Launch live chat", "FRT from 5 to 2", "CSAT 9+",
                  "FRT from 5 to 2", "Tickets from 1.5 to 0.5", "Maintain CSAT at 9.0+", "NPS from 40 to 60",
                  "Launch live chat", "Engagement from 75 to 90"],
        "direction": ["increase", "milestone", "decrease", "maintain_at_least",
                      "decrease", "decrease", "maintain_at_least", "increase", "milestone", "increase"],
        "baseline": [40, None, 5, None, 5, 1.5, None, 40, None, 75],
        "target": [60, 1, 2, 9, 2, 0.5, 9, 60, 1, 90],
        "unit": ["", "", "h", "", "h", "", "", "", "", "%"],
        "weight": [1, 1, 1, 1, 2, 1, 1, 1, 1, 1],
        "metric": [None, None, "frt", "csat", "frt", None, "csat", "nps", None, "engagement"],
    })
    dates = pd.date_range("2026-07-06", periods=12, freq="7D")
    checkins = pd.concat([
        pd.DataFrame({"kr_id": "k1a", "date": dates, "value": [5 - 0.25 * i for i in range(12)], "confidence": 7}),
        pd.DataFrame({"kr_id": "k2a", "date": dates, "value": [9.2, 8.8] * 6, "confidence": 6}),
        pd.DataFrame({"kr_id": "k3a", "date": dates[:4], "value": [0, 0.25, 0.5, 1.0], "confidence": 8}),
    ], ignore_index=True)
    checkins["comment"] = None
    kdates = pd.date_range("2025-07-07", periods=65, freq="7D")
    kpis = pd.concat([
        pd.DataFrame({"team_id": t, "metric": m, "date": kdates, "value": [base + 0.01 * i for i in range(65)]})
        for t in ("t1", "t2", "t3") for m, base in (("frt", 4.0), ("csat", 8.5), ("nps", 40.0), ("engagement", 75.0))
    ], ignore_index=True)
    metrics = pd.DataFrame({
        "metric": ["frt", "csat", "nps", "engagement"],
        "description": ["First response time", "Customer satisfaction", "Net promoter score", "Engagement"],
        "unit": ["h", "score", "score", "%"],
        "higher_is_better": [False, True, True, True],
        "kind": ["leading", "lagging", "lagging", "lagging"],
        "aggregation": ["mean", "mean", "mean", "mean"],
        "people_metric": [False, False, False, True],
    })
    benchmarks = pd.DataFrame({"metric": ["csat"], "value": [8.5], "source": ["Industry survey"]})
    return {"teams": teams, "objectives": objectives, "key_results": key_results, "checkins": checkins,
            "kpis": kpis, "metrics": metrics, "benchmarks": benchmarks}


@pytest.fixture
def tiny_ds():
    """``tiny_tables()`` as a Dataset."""
    from okr_analysis.io import from_frames

    return from_frames(tiny_tables(), source="tiny")
