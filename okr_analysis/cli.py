"""The ``okr-analysis`` command line.

Thin by design: each command parses its options, calls one library function and
prints or writes the result. Only this module configures logging, prints and
chooses exit codes: 0 success, 1 bad data or a failed step (with a message that
says what to fix), 2 a usage error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import click
import pandas as pd
import pyarrow as pa

from ._version import __version__
from .config import arrow_pool_set_by_user
from .exceptions import NoObjectivesError, UnknownTeamsError, ValidationError
from .hygiene import lint as lint_fn
from .io.loading import load
from .io.quarters import quarter_of
from .leadlag import lead_lag
from .monitoring import monitor as monitor_fn
from .parallel import local_workers
from .privacy import gate
from .rules import VERDICT_ORDER
from .scoring import score as score_fn
from .scoring import score_key_results

log = logging.getLogger("okr_analysis")


# ----------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------
class CommandError(click.ClickException):
    """A problem the user can fix; printed as ``error: ...`` with exit code 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    seen = set()
    for w in caught:
        text = str(w.message)
        if text in seen:
            continue
        seen.add(text)
        click.echo(f"warning: {text}", err=True)


def handle_errors(func: Callable) -> Callable:
    """Turn library errors into messages and exit codes; show warnings as ``warning:`` lines."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", module="statsmodels")
            try:
                result = func(*args, **kwargs)
            except ValidationError as err:
                _print_warnings(caught)
                click.echo(str(err), err=True)
                n = len(err.problems)
                click.echo(f"Fix the {n} problem{'s' if n != 1 else ''} above and run the command again.", err=True)
                sys.exit(1)
            except (ValueError, TypeError, KeyError, OSError) as err:
                _print_warnings(caught)
                msg = err.args[0] if isinstance(err, KeyError) and err.args else err
                raise CommandError(str(msg)) from None
        _print_warnings(caught)
        return result

    return wrapper


def load_source(source: str, fiscal_year_start: int):
    return load(source, fiscal_year_start=fiscal_year_start)


#: ``drivers`` starts its worker processes before the load when the KPI file has at least this many bytes
#: (about 250 teams × 8 weekly KPIs × 3 years as CSV: enough team × pair series for lead_lag to use them).
EARLY_WORKERS_MIN_BYTES = 10_000_000


def _kpi_file_bytes(source: str) -> int | None:
    """The size of a source's KPI table on disk: ``kpis.*`` in a folder, or a database or workbook file
    (None for a URL: its size is not known before the load)."""
    path = Path(source)
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.glob("kpis.*") if p.is_file())
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def _runnable_now() -> int | None:
    """The tasks running or ready to run on the machine right now, this process included (Linux:
    ``/proc/loadavg``'s fourth field, ``running/total``); None where the file is absent."""
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


def idle_cores(*, samples: int = 5, interval: float = 0.004) -> int:
    """The machine's cores that other work leaves idle right now, at least 1: the cores minus the other
    tasks running (the median of ``samples`` readings of :func:`_runnable_now`, ``interval`` seconds
    apart, about 20 ms), or, where that is not available, minus the 1-minute load average, rounded.

    The default of ``drivers --jobs``. A worker process costs about 1 s of CPU to start and a copy of
    the data, and two processes of the command each run slower beside each other: that repays only on
    a core of its own. 1,000 teams × 15 pairs × 156 weeks on 2 cores with the load average at 3.4–4.1
    (other work running) took 14.3–15.3 s with a worker against 11.6–12.4 s without (interleaved runs);
    on the idle machine 5.1–6.2 s against 6.4–6.6 s. Not the load average first: it trails the machine
    by a minute, so a run right after another (or after writing its data) saw a busy machine in an idle
    one and left the second core unused.
    """
    readings = []
    for i in range(samples):
        if i:
            time.sleep(interval)
        n = _runnable_now()
        if n is None:
            break
        readings.append(n - 1)  # the others: this process is one of the runnable tasks
    if readings:
        busy = float(statistics.median(readings))
    else:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):  # pragma: no cover - platforms without a load average
            busy = 0.0
    return max(1, int(round((os.cpu_count() or 1) - busy)))


def resolve_quarter(ds, quarter: str) -> str:
    """``latest`` means the most recent quarter with objectives; otherwise it must have objectives."""
    if quarter.strip().lower() == "latest":
        if ds.latest_quarter is None:
            raise CommandError("the data has no objectives, so there is no latest quarter.")
        return ds.latest_quarter
    label = ds.quarter(quarter).label
    if label not in ds.quarters:
        known = ", ".join(ds.quarters) or "none"
        raise CommandError(f"--quarter {quarter}: no objectives in that quarter (quarters with objectives: {known}).")
    return label


def check_csv_out(out: str | None) -> None:
    """Check ``--out FILE.csv`` before any work: a .csv name in an existing, writable folder."""
    if out is None:
        return
    path = Path(out)
    if path.suffix.lower() != ".csv":
        raise CommandError(f"--out {out}: write the table to a file ending in .csv.")
    if path.is_dir():
        raise CommandError(f"--out {out}: it is a folder; give a file name ending in .csv.")
    if not path.parent.exists():
        raise CommandError(f"--out {out}: the folder {path.parent} does not exist; create it first.")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise CommandError(f"--out {out}: the folder {path.parent} is not writable; choose another with --out.")


def check_out_folder(out: str) -> None:
    """Check an output folder: not a file, and it (or its nearest existing parent) is writable."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise CommandError(f"--out {out}: it is a file, not a folder.")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CommandError(f"--out {out}: {existing} is a file, so the folder cannot be created.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CommandError(f"--out {out}: the folder {existing} is not writable; choose another with --out.")


def write_table(frame: pd.DataFrame, out: str | None, *, what: str) -> None:
    """Write a CSV atomically, or print a readable table when ``out`` is None."""
    if out is None:
        with pd.option_context("display.max_rows", 200, "display.max_columns", 30, "display.width", 160,
                               "display.max_colwidth", 40):
            click.echo(frame.to_string(index=False) if len(frame) else f"(no {what})")
        if len(frame) and frame.isin(["suppressed"]).any().any():
            click.echo("suppressed: people metrics of groups below the minimum group size (--min-group-size), "
                       "and what would let a reader work them out.")
        return
    check_csv_out(out)
    path = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    click.echo(f"wrote {len(frame)} {what} to {path}", err=True)


source_argument = click.argument("source", metavar="SOURCE")
fiscal_option = click.option("--fiscal-year-start", type=click.IntRange(1, 12), default=1, show_default=True,
                             help="Calendar month in which the fiscal year starts.")
quarter_option = click.option("--quarter", "-q", required=True,
                              help="Quarter such as 2026Q3 (or 'latest').")
as_of_option = click.option("--as-of", "as_of", default=None, metavar="DATE",
                            help="Evaluate as of this date (YYYY-MM-DD); default: the quarter's end.")
min_group_option = click.option("--min-group-size", type=click.IntRange(1, None), default=5, show_default=True,
                                help="People metrics of groups smaller than this are suppressed.")
out_option = click.option("--out", "-o", default=None, metavar="FILE.csv",
                          help="Write a CSV file instead of printing a table.")
executor_option = click.option(
    "--executor", type=click.Choice(["local", "dask"], case_sensitive=False), default=None,
    help="Where the work runs: this machine's processes (local, the default) or a Dask distributed cluster "
         "(dask; the default with --scheduler).")
scheduler_option = click.option(
    "--scheduler", default=None, metavar="tcp://HOST:PORT",
    help="Address of a running Dask scheduler (`dask scheduler` prints it); without it --executor dask starts "
         "a local cluster. See the documentation's Dask page (docs/guide/dask.md).")


def resolve_executor(executor: str | None, scheduler: str | None) -> str:
    """--executor, defaulting to dask when a --scheduler is given."""
    if executor is None:
        return "dask" if scheduler else "local"
    if executor.lower() == "local" and scheduler:
        raise click.UsageError("--scheduler needs --executor dask (or leave out --executor).")
    return executor.lower()


# ----------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="okr-analysis")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """okr-analysis: score OKRs, monitor KPIs, find leading indicators and build quarterly review reports.

    SOURCE is a folder of CSV or Parquet files, an .xlsx workbook, a .duckdb file or a database URL.
    """
    level = logging.WARNING if verbose == 0 else (logging.INFO if verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@source_argument
@fiscal_option
@handle_errors
def validate(source: str, fiscal_year_start: int) -> None:
    """Check a data source and print a summary (exit 1 listing every problem when it is invalid)."""
    ds = load_source(source, fiscal_year_start)
    s = ds.summary()
    quarters = s["quarters"]
    q = f"{len(quarters)} ({quarters[0]} – {quarters[-1]})" if quarters else "0"
    lines = [
        f"{s['source']}: valid",
        f"  teams        {s['teams']} ({s['departments']} departments, {s['people']} people in leaf teams)",
        f"  quarters     {q}",
        f"  objectives   {s['objectives']}",
        f"  key results  {s['key_results']} ({s['checkins']} check-ins)",
        f"  metrics      {s['metrics']} ({s['kpi_rows']} KPI rows)",
        f"  dates        {s['date_from']} to {s['date_to']}",
        f"  benchmarks   {s['benchmarks']}",
        f"  warnings     {s['warnings']}",
    ]
    click.echo("\n".join(lines))


@cli.command()
@click.argument("directory", metavar="DIR")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--teams", "n_teams", type=click.IntRange(1, None), default=None,
              help="Number of leaf teams (default: the 12-team sample organisation).")
@click.option("--weeks", type=click.IntRange(20, None), default=156, show_default=True,
              help="Weeks of KPI history.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@handle_errors
def sample(directory: str, seed: int, n_teams: int | None, weeks: int, fmt: str) -> None:
    """Write the sample organisation (or a synthetic one of any size) to DIR."""

    # lazy import: only the sample command needs the generator (each command imports its own analyses)
    from .sample import write_sample
    path = write_sample(directory, seed=seed, n_teams=n_teams, weeks=weeks, fmt=fmt)
    click.echo(f"wrote the sample organisation to {path}")


_SCORE_VIEW = {
    "kr": ["team_id", "kr_id", "title", "direction", "baseline", "target", "current", "progress", "score",
           "band", "status"],
    "objective": ["team_id", "objective_id", "objective_title", "objective_kind", "n_krs", "score", "band",
                  "met_expectation", "status", "n_no_data"],
    "team": ["team_id", "team_name", "level", "n_objectives", "score", "band", "rollup_score", "rollup_band",
             "n_on_track", "n_at_risk", "n_off_track", "n_no_data"],
}


def _readable(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The columns a person reads, numbers to 2 decimals and text cut to 40 characters.

    Columns that mix numbers with suppression labels (see :mod:`okr_analysis.privacy`) keep their labels.
    """
    view = frame[[c for c in columns if c in frame.columns]].copy()
    for col in view.columns:
        if view[col].dtype == "float64":
            view[col] = view[col].round(2)
        elif view[col].dtype == "str" or view[col].dtype == object:
            view[col] = view[col].map(lambda v: round(v, 2) if isinstance(v, float) else
                                      ("suppressed" if isinstance(v, str) and v.startswith("suppressed (")
                                       else (str(v)[:40] if isinstance(v, str) else v)))
    return view


@cli.command()
@source_argument
@quarter_option
@as_of_option
@click.option("--level", type=click.Choice(["kr", "objective", "team"]), default="kr", show_default=True,
              help="Score key results, objectives, or teams with their roll-ups.")
@out_option
@min_group_option
@fiscal_option
@handle_errors
def score(source: str, quarter: str, as_of: str | None, level: str, out: str | None, min_group_size: int,
          fiscal_year_start: int) -> None:
    """Score key results, objectives or teams for a quarter (as of a date)."""

    check_csv_out(out)
    ds = load_source(source, fiscal_year_start)
    q = resolve_quarter(ds, quarter)
    table = score_fn(ds, q, as_of=as_of, level=level)
    krs = table if level == "kr" else score_key_results(ds, q, as_of=as_of)
    table = gate(table, ds, kind=f"{level}_scores", kr_scores=krs, min_group_size=min_group_size)
    if out is None:
        table = _readable(table, _SCORE_VIEW[level])
    write_table(table, out, what=f"{level} scores")


@cli.command()
@source_argument
@quarter_option
@as_of_option
@out_option
@min_group_option
@fiscal_option
@handle_errors
def lint(source: str, quarter: str, as_of: str | None, out: str | None, min_group_size: int,
         fiscal_year_start: int) -> None:
    """Check OKR hygiene for a quarter; findings are advice, so the exit code is 0."""

    check_csv_out(out)
    ds = load_source(source, fiscal_year_start)
    q = resolve_quarter(ds, quarter)
    findings = lint_fn(ds, q, as_of=as_of)
    findings = gate(findings, ds, kind="lint", kr_scores=score_key_results(ds, q, as_of=as_of),
                    min_group_size=min_group_size)
    if out is not None:
        write_table(findings, out, what="findings")
        return
    if findings.empty:
        click.echo("no findings: the OKRs follow every hygiene rule.")
        return
    for row in findings.itertuples(index=False):
        click.echo(f"{row.severity:<7} {row.code:<26} {row.message}")
    counts = findings["code"].value_counts()
    click.echo(f"{len(findings)} finding(s): " + ", ".join(f"{c} {n}" for c, n in counts.items()))


def _window(value: str) -> int | str:
    value = value.strip().lower()
    if value == "quarter":
        return value
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise click.BadParameter("use a number of periods (e.g. 13) or 'quarter'.", param_hint="--window")


def _scores_as_of(ds, as_of: str | None) -> pd.DataFrame | None:
    """Key-result scores of the quarter containing ``as_of`` (default: the latest quarter with objectives), or
    None when that quarter has none."""
    if as_of is None:
        label = ds.latest_quarter
    else:
        label = quarter_of(pd.Series([pd.Timestamp(as_of)]), fiscal_year_start=ds.fiscal_year_start).iloc[0]
    if label is None or label not in ds.quarters:
        return None
    return score_key_results(ds, label, as_of=as_of)


@cli.command()
@source_argument
@as_of_option
@click.option("--window", default="13", show_default=True, metavar="N|quarter",
              help="Trend window: the last N periods, or the fiscal quarter containing the as-of date.")
@click.option("--freq", type=click.Choice(["W", "M", "Q"], case_sensitive=False), default=None,
              help="Resample KPIs to weeks, months or fiscal quarters (default: the data's own).")
@out_option
@min_group_option
@fiscal_option
@handle_errors
def monitor(source: str, as_of: str | None, window: str, freq: str | None, out: str | None, min_group_size: int,
            fiscal_year_start: int) -> None:
    """KPI monitoring: trend, peers and control-chart signals for every team and metric."""

    check_csv_out(out)
    ds = load_source(source, fiscal_year_start)
    table = monitor_fn(ds, as_of=as_of, window=_window(window), freq=freq.upper() if freq else None)
    # the quarter of the as-of date: a team whose key results suppression hides has its people metrics hidden too
    table = gate(table, ds, kind="kpis", kr_scores=_scores_as_of(ds, as_of), min_group_size=min_group_size)
    if out is None:
        table = _readable(table, ["team_id", "metric", "trend", "assessment", "slope", "p_value", "latest",
                                  "peer_percentile", "n_signals", "signals"])
    write_table(table, out, what="KPI rows")


@cli.command()
@source_argument
@click.option("--freq", type=click.Choice(["W", "M", "Q", "A"], case_sensitive=False), default=None,
              help="Resample KPIs to weeks, months, fiscal quarters or fiscal years (default: the data's own).")
@click.option("--max-lag", type=click.IntRange(1, 52), default=None,
              help="Largest lag tested, in periods (default: W 8, M 6, Q 4, A 2, at most a tenth of the periods).")
@click.option("--by-team", is_flag=True, help="Also test every team on its own (rows per team).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="False-discovery rate for the 'leads' verdict.")
@click.option("--pair", "pairs", multiple=True, metavar="LEADING:LAGGING",
              help="Test only this pair (repeat the option); default: every leading × lagging pair.")
@click.option("--jobs", "-j", type=click.IntRange(1, None), default=None,
              help="Processes analysing the pairs of a large organisation (default: the machine's idle cores; "
                   "1: this process only).")
@out_option
@min_group_option
@fiscal_option
@executor_option
@scheduler_option
@handle_errors
def drivers(source: str, freq: str | None, max_lag: int, by_team: bool, alpha: float, pairs: tuple[str, ...],
            jobs: int | None, out: str | None, min_group_size: int, fiscal_year_start: int, executor: str | None,
            scheduler: str | None) -> None:
    """Which leading KPIs predict which lagging KPIs, at what lag, for which teams."""

    parsed = []
    for p in pairs:
        if p.count(":") != 1 or not all(p.split(":")):
            raise click.BadParameter(f"{p!r}: write the pair as LEADING:LAGGING, e.g. training_attendance:engagement.",
                                     param_hint="--pair")
        parsed.append(tuple(p.split(":")))
    executor = resolve_executor(executor, scheduler)
    if jobs is not None and executor != "local":
        raise click.UsageError("--jobs sets this machine's processes; with --executor dask the cluster's "
                               "workers analyse the pairs (leave out --jobs).")
    check_csv_out(out)
    # the worker processes start now, so that their imports (~0.7 s) overlap the load instead of following
    # it; only for a large KPI file: a small run does not use them (lead_lag starts workers itself when a
    # run it was not given them for is large), and closing a worker still importing waits for it
    n_jobs = (jobs or idle_cores()) if executor == "local" else None
    early = n_jobs is not None and n_jobs > 1 and (_kpi_file_bytes(source) or 0) >= EARLY_WORKERS_MIN_BYTES
    with local_workers(n_jobs - 1 if early else 0, warm=("okr_analysis.leadlag",)) as workers:
        ds = load_source(source, fiscal_year_start)
        result = lead_lag(ds, pairs=parsed or None, freq=freq.upper() if freq else None, max_lag=max_lag,
                          by_team=by_team, alpha=alpha, progress=sys.stderr.isatty(), executor=executor,
                          scheduler=scheduler, **({"workers": workers} if workers is not None else {"jobs": n_jobs}))

    table = gate(result.table, ds, kind="drivers", min_group_size=min_group_size)
    if out is None:
        table = _readable(table, ["leading", "lagging", "team_id", "freq", "lag", "correlation", "granger_p",
                                  "q_value", "oos_skill", "verdict", "oos_confirmed"])
        if not by_team:
            table = table.sort_values(["verdict", "lagging"], key=lambda c: c.map(VERDICT_ORDER) if c.name == "verdict"
                                      else c, kind="stable")
    write_table(table, out, what="driver rows")


@cli.command()
@source_argument
@click.option("--initiative", "initiatives", multiple=True, metavar="ID",
              help="Only this initiative (repeat the option); default: every initiative.")
@click.option("--as-of", "as_of", default=None, metavar="DATE", help="Use KPI values up to this date only.")
@click.option("--from-milestones", is_flag=True,
              help="Also treat milestone key results that reached 1 as initiatives (on their objective's KPIs).")
@out_option
@min_group_option
@fiscal_option
@handle_errors
def impact(source: str, initiatives: tuple[str, ...], as_of: str | None, from_milestones: bool, out: str | None,
           min_group_size: int, fiscal_year_start: int) -> None:
    """Did the initiative work? The change of each initiative's KPI after its start, against comparison teams."""
    check_csv_out(out)
    ds = load_source(source, fiscal_year_start)
    # lazy import: statsmodels.api and the impact module: ~0.4 s that other commands do not need
    from .impact import initiative_impact
    table = initiative_impact(ds, initiatives=list(initiatives) or None, as_of=as_of,
                              from_milestones=from_milestones, min_group_size=None)
    table = gate(table, ds, kind="impact", min_group_size=min_group_size)
    if out is None:
        table = _readable(table, ["initiative_id", "team_id", "metric", "start", "n_controls", "effect", "ci_low",
                                  "ci_high", "p_value", "placebo_p", "verdict"])
    write_table(table, out, what="initiatives")


@cli.command()
@source_argument
@quarter_option
@click.option("--as-of", "as_of", required=True, metavar="DATE", help="Forecast from the data up to this date.")
@click.option("--with-drivers", is_flag=True,
              help="Add the lags of leading KPIs that the driver analysis found as regressors.")
@click.option("--seasonal", is_flag=True, help="Also try yearly seasonal terms (KPIs with two years or more).")
@out_option
@min_group_option
@fiscal_option
@handle_errors
def forecast(source: str, quarter: str, as_of: str, with_drivers: bool, seasonal: bool, out: str | None,
             min_group_size: int, fiscal_year_start: int) -> None:
    """Where each key result will land at quarter end, and the probability of reaching its target."""

    check_csv_out(out)
    ds = load_source(source, fiscal_year_start)
    q = resolve_quarter(ds, quarter)
    # lazy import: the forecasting module: ~0.3 s that other commands do not need
    from .forecasting import forecast_key_results
    table = forecast_key_results(ds, q, as_of=as_of, with_drivers=with_drivers, seasonal=seasonal)
    table = table.drop(columns=[c for c in ("history",) if c in table.columns])
    table = gate(table, ds, kind="forecasts", kr_scores=score_key_results(ds, q, as_of=as_of),
                 min_group_size=min_group_size)
    if out is None:
        table = _readable(table, ["team_id", "kr_id", "current", "forecast", "lower_80", "upper_80", "target",
                                  "p_hit", "outcome", "method"])
    write_table(table, out, what="forecasts")


@cli.command()
@source_argument
@click.option("--out", "out", default=None, metavar="DIR",
              help="Write predictions.csv, summary.csv, calibration.csv and scores.csv into DIR.")
@click.option("--with-drivers", is_flag=True, help="Also forecast with the leading KPIs as regressors.")
@click.option("--seasonal", is_flag=True, help="Forecast with the yearly seasonal candidates too.")
@min_group_option
@fiscal_option
@handle_errors
def backtest(source: str, out: str | None, with_drivers: bool, seasonal: bool, min_group_size: int,
             fiscal_year_start: int) -> None:
    """Check the forecasts on past quarters at 1/3, 1/2 and 2/3: Brier, ECE and AUC of P(hit) against the
    calibrated pace status, the pace rule and the base rate.

    The summary and calibration pool every key result; the per-key-result predictions written with --out
    have the values of key results that suppression hides replaced by the suppression label.
    """
    if out is not None:
        check_out_folder(out)
    ds = load_source(source, fiscal_year_start)
    # lazy import: the forecasting module: ~0.3 s that other commands do not need
    from .forecasting import backtest as backtest_fn
    result = backtest_fn(ds, with_drivers=with_drivers, seasonal=seasonal)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        click.echo(result.summary.to_string(index=False))
    if out is not None:
        preds = result.predictions
        quarters = list(dict.fromkeys(preds["quarter"]))
        scores = (pd.concat([score_key_results(ds, q) for q in quarters], ignore_index=True) if quarters
                  else None)
        if quarters:
            result = dataclasses.replace(result, predictions=gate(preds, ds, kind="backtest", kr_scores=scores,
                                                                  min_group_size=min_group_size))
        for path in result.write(Path(out)):
            click.echo(f"wrote {path}", err=True)


@cli.command()
@source_argument
@quarter_option
@click.option("--team", "teams", multiple=True, metavar="ID", help="Only these teams (repeat the option); default: all.")
@as_of_option
@click.option("--format", "formats", default="html,pdf", show_default=True, metavar="html,pdf",
              help="Output formats, comma-separated.")
@click.option("--out", "out", default="reports", show_default=True, metavar="DIR",
              help="Output folder; reports go to DIR/<quarter>/.")
@click.option("--jobs", "-j", type=click.IntRange(1, None), default=None,
              help="Teams rendered in parallel (default: the machine's cores).")
@click.option("--org-overview/--no-org-overview", default=True, show_default=True,
              help="Also render the organisation overview.")
@click.option("--force", is_flag=True, help="Re-render reports whose inputs did not change.")
@click.option("--min-group-size", type=click.IntRange(1, None), default=5, show_default=True,
              help="People metrics of groups smaller than this are not shown.")
@fiscal_option
@executor_option
@scheduler_option
@handle_errors
def report(source: str, quarter: str, teams: tuple[str, ...], as_of: str | None, formats: str, out: str,
           jobs: int | None, org_overview: bool, force: bool, min_group_size: int, fiscal_year_start: int,
           executor: str | None, scheduler: str | None) -> None:
    """Render the quarterly review report of every team (HTML and PDF) with an index page."""

    executor = resolve_executor(executor, scheduler)
    check_out_folder(out)
    _system_allocator_for_arrow()
    # The batch loads the source in a child process that exits once the shared analyses are written:
    # this process never holds the organisation's data.
    try:
        # lazy import: the report pipeline (nbconvert, papermill on use): only the report command needs it
        from .reports.build import build_reports
        result = build_reports(source, quarter=quarter, fiscal_year_start=fiscal_year_start,
                               teams=list(teams) or None, as_of=as_of, formats=formats, out=out, jobs=jobs,
                               org_overview=org_overview, force=force, min_group_size=min_group_size,
                               progress=sys.stderr.isatty(), executor=executor, scheduler=scheduler)
    except UnknownTeamsError as err:
        raise CommandError(f"--team {', '.join(err.teams)}: no such team in the data "
                           f"(teams: {', '.join(err.known[:20])}).") from None
    except NoObjectivesError as err:
        if err.quarter.strip().lower() == "latest":
            raise CommandError("the data has no objectives, so there is no latest quarter.") from None
        raise CommandError(f"--quarter {quarter}: no objectives in that quarter (quarters with objectives: "
                           f"{', '.join(err.known) or 'none'}).") from None
    for message in result.messages:
        click.echo(f"note: {message}", err=True)
    click.echo(result.summary())
    if not result.ok:
        for failure in result.failures:
            click.echo(f"failed: {failure.team_id}: {failure.error}", err=True)
        sys.exit(1)


def _system_allocator_for_arrow() -> None:
    """Arrow allocates through glibc's malloc in a report batch, as in its notebook kernels.

    Arrow's default allocator (mimalloc) keeps the pages the batch process freed after its shared
    analyses, and Linux's transparent huge pages (``madvise`` mode, which mimalloc opts in to) fill
    them back in while the reports render: the process grew by ~0.1 MB a report. glibc's heap is
    handed back (``malloc_trim``) and stays flat. ``ARROW_DEFAULT_MEMORY_POOL``, when set, wins.
    """
    if arrow_pool_set_by_user():
        return

    pa.set_memory_pool(pa.system_memory_pool())


def _stop_on_sigterm() -> None:
    """Make SIGTERM (``kill``, a scheduler's timeout) stop a command the way Ctrl-C does: a report batch
    then stops its workers, kernels and browsers and leaves no half-written file."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        signal.signal(signal.SIGTERM, stop)


def main() -> None:
    """Entry point of the ``okr-analysis`` console script."""
    _stop_on_sigterm()
    cli(prog_name="okr-analysis")


if __name__ == "__main__":  # pragma: no cover
    main()
