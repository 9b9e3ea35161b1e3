"""Benchmark: statsforecast's seasonal AutoETS / AutoARIMA against this package's engine, per KPI series.

Issue 20 asks to measure statsforecast against statsmodels before adding a dependency for seasonal models.
Data: 200 weekly KPI series of ``make_sample(n_teams=100)`` (their last 150 weeks), forecast 8 weeks ahead.

* ``--engine own`` (this project's environment): ``forecast_series`` (AIC-weighted ARIMA(p,1,0) candidates,
  2,000 simulated paths), and the same with yearly Fourier terms as regressors (what ``seasonal=True`` adds);
* ``--engine statsforecast`` (a separate environment with ``pip install statsforecast``; it is not a
  dependency): ``AutoETS(season_length=52)``, ``AutoETS(season_length=1)``, ``AutoARIMA(season_length=52)``
  with 80% and 95% intervals, one process.

Prints milliseconds per series. Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_forecast_statsforecast.py --engine own --write-data /tmp/series.npy
    /path/to/venv-with-statsforecast/bin/python benchmarks/bench_forecast_statsforecast.py \\
        --engine statsforecast --data /tmp/series.npy
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def series(n_teams: int = 100, n: int = 200, weeks: int = 150) -> np.ndarray:
    sys.path.insert(0, str(REPO))
    from okr_analysis.sample import make_sample

    k = make_sample(n_teams=n_teams)["kpis"]
    out = [g.sort_values("date")["value"].to_numpy() for _, g in k.groupby(["team_id", "metric"])]
    return np.array([s[-weeks:] for s in out if len(s) >= weeks][:n])


def own(Y: np.ndarray) -> None:
    sys.path.insert(0, str(REPO))
    from okr_analysis.forecasting import _forecast_array, _rng, forecast_series

    t = time.perf_counter()
    for i, y in enumerate(Y):
        forecast_series(y, horizon=8, levels=False, n_paths=2000, seed=i)
    print(f"own engine, ARIMA(p,1,0) candidates: {1000 * (time.perf_counter() - t) / len(Y):.1f} ms/series")
    t = time.perf_counter()
    for i, y in enumerate(Y):
        d = np.arange(len(y)) * 7.0
        fd = (len(y) + np.arange(1, 9)) * 7.0

        def terms(x):
            return np.column_stack([np.sin(2 * np.pi * x / 365.25), np.cos(2 * np.pi * x / 365.25)])

        _forecast_array(y, 8, levels=False, n_paths=2000, rng=_rng(i, "bench"), exog=terms(d),
                        exog_names=("sin", "cos"), exog_future=np.array(np.broadcast_to(terms(fd)[None], (2000, 8, 2))))
    print(f"own engine + yearly Fourier terms: {1000 * (time.perf_counter() - t) / len(Y):.1f} ms/series")


def statsforecast(Y: np.ndarray) -> None:
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS

    n, T = Y.shape
    df = pd.DataFrame({"unique_id": np.repeat(np.arange(n), T), "ds": np.tile(np.arange(T), n), "y": Y.ravel()})
    for name, model in (("AutoETS(season_length=52)", AutoETS(season_length=52)),
                        ("AutoETS(season_length=1)", AutoETS(season_length=1)),
                        ("AutoARIMA(season_length=52)", AutoARIMA(season_length=52))):
        sf = StatsForecast(models=[model], freq=1, n_jobs=1)
        t = time.perf_counter()
        sf.forecast(df=df, h=8, level=[80, 95])
        print(f"statsforecast {name}: {1000 * (time.perf_counter() - t) / n:.1f} ms/series")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=["own", "statsforecast"], required=True)
    ap.add_argument("--data", help="series saved by --write-data (.npy)")
    ap.add_argument("--write-data", help="save the series to this .npy file")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    Y = np.load(args.data) if args.data else series()
    if args.write_data:
        np.save(args.write_data, Y)
    (own if args.engine == "own" else statsforecast)(Y)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
