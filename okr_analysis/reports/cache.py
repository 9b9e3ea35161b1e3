"""The batch cache: the dataset and the shared analyses written once per batch as Parquet,
sorted by team so that a notebook reads only its teams' rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .._version import __version__
from ..config import cache_base
from ..io.dataset import Dataset
from ..io.quarters import Quarter
from ..io.schemas import TABLES
from .shared import shared_analyses

__all__ = ["cache_folder"]



_CACHE_FORMAT = 3


#: The large tables a batch notebook reads only for its own part of the tree (see :func:`open_report`).
_SLICED_TABLES = ("kpis", "checkins")


_SLICE_TEAM, _SLICE_ROW = "_okr_team", "_okr_row"  # helper columns of the team-sorted shared tables


_SLICE_ROW_GROUP = 50_000  # rows per Parquet row group of KPIs and check-ins: a team's rows sit in one or two


_ANALYSIS_ROW_GROUP = 5_000  # rows per row group of a shared analysis with a team_id column


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    df.to_parquet(path, index=False)


def _write_shared(ds: Dataset, folder: Path, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int,
                  input_hash: str, source_label: str) -> None:
    """Write the dataset and every shared analysis into ``folder`` (which must not exist yet)."""
    _write_shared_dataset(ds, folder / "dataset")
    computed = []
    for name, func in shared_analyses().items():
        table = func(ds, quarter=quarter, as_of=as_of, min_group_size=min_group_size).reset_index(drop=True)
        if "team_id" in table.columns:  # sorted by team: a notebook reads its teams' row groups only
            _write_by_team(table, folder / f"{name}.parquet", table["team_id"], row_group_size=_ANALYSIS_ROW_GROUP)
        else:
            _write_parquet(table, folder / f"{name}.parquet")
        computed.append(name)
    meta = {
        "format": _CACHE_FORMAT,
        "version": __version__,
        "quarter": quarter.label,
        "as_of": as_of.date().isoformat(),
        "min_group_size": int(min_group_size),
        "fiscal_year_start": ds.fiscal_year_start,
        "source": source_label,
        "input_hash": input_hash,
        "warnings": list(ds.warnings),
        "tables": computed,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _write_shared_dataset(ds: Dataset, folder: Path) -> None:
    """The batch's copy of the dataset. KPIs and check-ins are sorted by team (check-ins by their KR's team),
    with their original row numbers, in small row groups: a notebook reads its own teams' rows only."""
    folder.mkdir(parents=True)
    owner = ds.key_results[["kr_id", "objective_id"]].merge(
        ds.objectives[["objective_id", "team_id"]], on="objective_id", how="left")
    kr_team = dict(zip(owner["kr_id"], owner["team_id"]))
    for name in TABLES:
        df = getattr(ds, name)
        path = folder / f"{name}.parquet"
        if name not in _SLICED_TABLES:
            _write_parquet(df, path)
            continue
        team = df["team_id"] if name == "kpis" else df["kr_id"].map(kr_team)
        _write_by_team(df, path, team, row_group_size=_SLICE_ROW_GROUP)


def _write_by_team(df: pd.DataFrame, path: Path, team: pd.Series, *, row_group_size: int) -> None:
    """Write ``df`` sorted by ``team`` (a Series on its index), with the team and the original row number
    as helper columns, in row groups of ``row_group_size``: :func:`_read_by_team` reads some teams' rows
    without reading the rest, in the original order."""
    df = df.assign(**{_SLICE_TEAM: team.astype("string").fillna(""), _SLICE_ROW: np.arange(len(df))})
    df = df.sort_values([_SLICE_TEAM, _SLICE_ROW], kind="stable")
    df.to_parquet(path, index=False, row_group_size=row_group_size)


def _read_by_team(path: Path, teams: Sequence[str] | None = None) -> pd.DataFrame:
    """A table written by :func:`_write_by_team`: the rows of ``teams`` (None: every row), in the original
    order, without the helper columns. A table written without them is read whole (and not filtered)."""

    if _SLICE_ROW not in pq.read_schema(path).names:
        return pd.read_parquet(path)
    df = pd.read_parquet(path, filters=None if teams is None else [(_SLICE_TEAM, "in", list(teams))])
    return df.sort_values(_SLICE_ROW, kind="stable").drop(columns=[_SLICE_TEAM, _SLICE_ROW]).reset_index(drop=True)


def _slice_teams(teams: pd.DataFrame, team_id: str) -> list[str] | None:
    """The teams whose KPIs and check-ins a report of ``team_id`` reads: the team and its ancestors
    (a report shows its own KPIs and key results; what it says about other teams — sub-teams, peers,
    the whole organisation — comes from the shared analyses). None (everything) for an unknown id."""
    parent = dict(zip(teams["team_id"], teams["parent_team_id"]))
    if team_id not in parent:
        return None
    keep = [team_id]
    p = parent[team_id]
    while isinstance(p, str) and p not in keep:
        keep.append(p)
        p = parent.get(p)
    return sorted(keep)


def _read_shared_dataset(folder: Path, meta: Mapping[str, Any], *,
                         team_id: str = "") -> tuple[Dataset, list[str] | None]:
    """The batch's dataset and its scope: with ``team_id``, only the KPIs and check-ins of the teams
    :func:`_slice_teams` names (row-group pruning)."""
    tables = {name: pd.read_parquet(folder / "dataset" / f"{name}.parquet")
              for name in TABLES if name not in _SLICED_TABLES}
    teams = _slice_teams(tables["teams"], team_id) if team_id else None
    for name in _SLICED_TABLES:
        tables[name] = _read_by_team(folder / "dataset" / f"{name}.parquet", teams)
    ds = Dataset(**{name: tables[name] for name in TABLES}, fiscal_year_start=int(meta["fiscal_year_start"]),
                 source=str(meta["source"]), warnings=tuple(meta.get("warnings", ())))
    return ds, teams


def cache_folder(folder: Path) -> Path:
    """The private folder where a batch writing to ``folder`` keeps its shared analyses and kernel logs.

    It holds the whole validated dataset, so it lives **outside** the output folder (which is published):
    ``$OKR_ANALYSIS_CACHE/<hash of the output folder>``, by default under the system's temporary folder,
    created readable by its owner only. On a remote Dask cluster set ``OKR_ANALYSIS_CACHE`` to a folder on
    a filesystem the workers share.
    """
    base = cache_base()
    root = Path(base) / hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    root.mkdir(parents=True, exist_ok=True)
    for p in (Path(base), root):
        with contextlib.suppress(OSError):
            p.chmod(0o700)
    return root
