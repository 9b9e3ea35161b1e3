"""The sample organisation: realistic synthetic OKR and KPI tables with known answers.

:func:`make_sample` builds the eight tables of the data format
(:mod:`okr_analysis.schemas`) for *Acme Corp*, a 12-team company, or for a
synthetic organisation of any size (``n_teams=...``). :func:`write_sample`
writes them to a folder of CSV or Parquet files that :func:`okr_analysis.load`
reads.

The data are random but not arbitrary. Three leading-to-lagging relationships
are planted with known lags (:data:`BUILT_IN_DRIVERS`), one trending metric is
unrelated to everything (:data:`UNRELATED_METRIC`), and a few KPIs deliberately
worsen over the final quarter (:data:`BUILT_IN_DECLINES`), so every analysis of
the package has an answer to find. :data:`SAMPLE_README` describes the
organisation (the documentation shows it: docs/guide/sample.md).

How the KPIs are generated (weekly values, dated on Mondays):

* a leading series is a stationary AR(1) process around a team-specific level
  (no seasonality, so that no season-driven relationship competes with the planted ones);
* a lagging series is ``level + b * (leading[t - lag] - leading level)`` plus its
  own AR(1) noise, trend and yearly seasonality;
* the other KPIs are level + trend + yearly seasonality + AR(1) noise; weekly
  complaints are Poisson counts; the unrelated metric is a random walk with drift;
* key results move their KPI: a team working on a key result shifts the KPI
  towards the target during the quarter (front-loaded, linear or back-loaded, by a
  random share of the planned move, so about half the key results reach their
  target) and keeps what it achieved; moves shrink as a KPI nears a practical
  bound, so KPIs improve over the OKR year without leaving plausible ranges;
* check-ins of a key result on a KPI report exactly that KPI's weekly value.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from .formatting import step_decimals, with_step
from .io.quarters import Quarter
from .io.schemas import TABLES

__all__ = [
    "make_sample",
    "write_sample",
    "BUILT_IN_DRIVERS",
    "BUILT_IN_DECLINES",
    "BUILT_IN_INITIATIVES",
    "UNRELATED_METRIC",
    "SAMPLE_README",
]

#: Planted leading → lagging relationships: the lagging KPI responds to the
#: leading KPI ``lag_weeks`` weeks earlier, with the given sign, in the given teams.
BUILT_IN_DRIVERS: list[dict[str, Any]] = [
    {"leading": "training_attendance", "lagging": "engagement", "lag_weeks": 4, "sign": +1,
     "teams": "every leaf team"},
    {"leading": "first_response_time", "lagging": "csat", "lag_weeks": 2, "sign": -1,
     "teams": "the support teams"},
    {"leading": "qualified_leads", "lagging": "revenue", "lag_weeks": 6, "sign": +1,
     "teams": "the sales teams"},
]

#: The trending metric generated from nothing else (a random walk with drift per team).
UNRELATED_METRIC = "intranet_visits"

#: KPIs of the default organisation that deliberately worsen over the final quarter
#: (``since`` = the first Monday of that quarter, for the default ``end``; with another
#: ``end`` the decline starts on the first Monday of that sample's final OKR quarter).
#: Samples made with ``n_teams`` have no planted declines.
BUILT_IN_DECLINES: list[dict[str, str]] = [
    {"team_id": "support-tier2", "metric": "csat", "since": "2026-07-06"},
    {"team_id": "hr-partners", "metric": "turnover", "since": "2026-07-06"},
    {"team_id": "sales-smb", "metric": "conversion", "since": "2026-07-06"},
]

# Size of each decline at the end of the final quarter, as a signed share of the KPI's level
# (its level at the start of that quarter or the team's usual level, whichever is higher).
_DECLINE_SIZE = {("support-tier2", "csat"): -0.25, ("hr-partners", "turnover"): +0.7,
                 ("sales-smb", "conversion"): -0.35}

#: Initiatives of the default organisation (the ``initiatives`` table) and the step each one
#: planted in its team's KPI from its start on (``effect``, in the metric's unit; 0: none). Starts are
#: counted back from the first Monday of the sample's final OKR quarter (``weeks_before``); the
#: dates shown are those of the default ``end``. Samples made with ``n_teams`` have no initiatives.
BUILT_IN_INITIATIVES: list[dict[str, Any]] = [
    {"initiative_id": "mentoring", "team_id": "support-emea", "title": "Mentoring programme",
     "metric": "engagement", "start": "2026-05-04", "weeks_before": 9, "effect": +6.0},
    {"initiative_id": "flex-hours", "team_id": "sales-enterprise", "title": "Flexible hours",
     "metric": "absenteeism", "start": "2026-03-02", "weeks_before": 18, "effect": -1.0},
    {"initiative_id": "stay-interviews", "team_id": "eng-data", "title": "Stay interviews",
     "metric": "turnover", "start": "2026-04-06", "weeks_before": 13, "effect": 0.0},
]

SAMPLE_README = """\
## The sample organisation

`okr-analysis sample data/sample` (or `okr_analysis.sample.write_sample`) writes *Acme Corp*, a
synthetic company with known answers, so every analysis can be tried before real data arrive.

- **Teams:** the company `acme`; four departments, People & HR (`hr`), Customer Support (`support`),
  Sales (`sales`) and Engineering (`eng`); twelve leaf teams (`hr-recruiting`, `hr-learning`,
  `hr-partners`, `support-tier1`, `support-tier2`, `support-emea`, `sales-smb`, `sales-enterprise`,
  `sales-partnerships`, `eng-platform`, `eng-product`, `eng-data`), 4 to 38 people each
  (`hr-partners` has 4, the only team below 5).
- **KPIs:** 156 weeks of weekly values (Mondays) up to 2026-09-21. Every leaf team measures six
  people metrics (turnover, absenteeism, engagement, overtime, training attendance, PDP completion)
  and `intranet_visits`; support teams add tickets per customer, first response time, time to
  resolve, CSAT and complaints; sales teams add qualified leads, conversion, revenue and NPS.
  16 metrics in all, with trends, yearly seasonality (absenteeism peaks in winter) and noise.
- **OKRs:** 2025Q4 to 2026Q3. Company → department → team objectives aligned through
  `parent_objective_id`, a mix of committed and aspirational, 2–4 key results each, weekly check-ins
  with confidence and comments (a key result on a KPI reports that KPI's value). About half the key
  results reach their target; the KPIs teams work on improve over the year.
- **Built-in answers** (`BUILT_IN_DRIVERS`, `UNRELATED_METRIC`, `BUILT_IN_DECLINES`,
  `BUILT_IN_INITIATIVES`):
  - training attendance leads engagement by 4 weeks (+), in every leaf team;
  - first response time leads CSAT by 2 weeks (−), in the support teams;
  - qualified leads lead revenue by 6 weeks (+), in the sales teams;
  - `intranet_visits` trends upwards but is unrelated to everything;
  - in 2026Q3, CSAT of `support-tier2` drops, turnover of `hr-partners` rises and conversion of
    `sales-smb` falls;
  - three initiatives (`BUILT_IN_INITIATIVES`, the `initiatives` table), each on a KPI its team
    has no key result on: the mentoring programme of `support-emea` (from 2026-05-04) raises its
    engagement by 6 points, flexible hours in `sales-enterprise` (from 2026-03-02) cut its absenteeism
    by 1 percentage point, and the stay interviews of `eng-data` (from 2026-04-06) change nothing;
  - hygiene findings: some team objectives are not aligned to a parent, one objective has a
    single key result, one has only milestones, one key result goes stale (no check-in in its last
    3 weeks), and one confidence drops by 4 points from one check-in to the next.
- **Any size:** `write_sample(dir, n_teams=2000, weeks=200)` builds 2000 leaf teams spread over the
  four departments (`hr-0001`, `support-0001`, …) with the same metrics and relationships.
"""

_DEFAULT_END = "2026-09-27"
_PRE = 12  # weeks generated before the first date, so lagged drivers have a history
_WEEKS_PER_YEAR = 365.25 / 7
_MIN_WEEKS = 14

# ----------------------------------------------------------------------------------
# Catalogue
# ----------------------------------------------------------------------------------
_DEPARTMENTS = (("hr", "People & HR"), ("support", "Customer Support"), ("sales", "Sales"),
                ("eng", "Engineering"))

_DEFAULT_TEAMS = (
    ("hr-recruiting", "Recruiting", "hr", 9),
    ("hr-learning", "Learning & Development", "hr", 6),
    ("hr-partners", "HR Business Partners", "hr", 4),
    ("support-tier1", "Support Tier 1", "support", 32),
    ("support-tier2", "Support Tier 2", "support", 18),
    ("support-emea", "Support EMEA", "support", 14),
    ("sales-smb", "SMB Sales", "sales", 16),
    ("sales-enterprise", "Enterprise Sales", "sales", 11),
    ("sales-partnerships", "Partnerships", "sales", 7),
    ("eng-platform", "Platform Engineering", "eng", 24),
    ("eng-product", "Product Engineering", "eng", 38),
    ("eng-data", "Data Engineering", "eng", 12),
)

_PEOPLE = ("turnover", "absenteeism", "engagement", "overtime", "training_attendance", "pdp_completion")
_SUPPORT = ("tickets_per_customer", "first_response_time", "time_to_resolve", "csat", "complaints")
_SALES = ("qualified_leads", "conversion", "revenue", "nps")
_DEPT_METRICS = {
    "hr": _PEOPLE + (UNRELATED_METRIC,),
    "support": _PEOPLE + _SUPPORT + (UNRELATED_METRIC,),
    "sales": _PEOPLE + _SALES + (UNRELATED_METRIC,),
    "eng": _PEOPLE + (UNRELATED_METRIC,),
}

# metric: (description, unit, higher_is_better, kind, aggregation, people_metric, decimals, low, high)
_METRICS: dict[str, tuple] = {
    "turnover": ("Voluntary leavers over the last 12 months as a share of average headcount (annualised)",
                 "%", False, "lagging", "mean", True, 1, 0.5, 80.0),
    "absenteeism": ("Share of scheduled working hours lost to unplanned absence",
                    "%", False, "lagging", "mean", True, 2, 0.2, 30.0),
    "engagement": ("Engagement score of the weekly pulse survey (0–100)",
                   "%", True, "lagging", "mean", True, 1, 0.0, 100.0),
    "overtime": ("Overtime hours per person per week",
                 "h/person/week", False, "other", "mean", True, 1, 0.0, 30.0),
    "training_attendance": ("Share of planned training sessions attended",
                            "%", True, "leading", "mean", True, 1, 5.0, 100.0),
    "pdp_completion": ("Share of people with an up-to-date personal development plan (PDP)",
                       "%", True, "other", "last", True, 1, 0.0, 100.0),
    "tickets_per_customer": ("Support tickets per active customer (monthly rate)",
                             "tickets/customer", False, "other", "mean", False, 2, 0.05, 10.0),
    "first_response_time": ("Average time to the first response on new tickets",
                            "h", False, "leading", "mean", False, 2, 0.3, 48.0),
    "time_to_resolve": ("Average handling time to resolve a ticket",
                        "min", False, "other", "mean", False, 2, 0.5, 60.0),
    "csat": ("Customer satisfaction after a closed ticket (0–10)",
             "points (0–10)", True, "lagging", "mean", False, 2, 0.0, 10.0),
    "complaints": ("Formal customer complaints received in the week (sum them for a monthly total)",
                   "complaints", False, "other", "sum", False, 0, 0.0, np.inf),
    "qualified_leads": ("Qualified leads created in the week",
                        "leads", True, "leading", "sum", False, 0, 0.0, np.inf),
    "conversion": ("Share of qualified leads that become customers",
                   "%", True, "other", "mean", False, 1, 0.5, 100.0),
    "revenue": ("New and expansion revenue booked in the week",
                "k€", True, "lagging", "sum", False, 1, 0.0, np.inf),
    "nps": ("Net Promoter Score of the quarterly customer survey, rolling (−100 to 100)",
            "points", True, "lagging", "mean", False, 0, -100.0, 100.0),
    UNRELATED_METRIC: ("Visits to the team's intranet pages in the week",
                       "visits", True, "leading", "sum", False, 0, 0.0, np.inf),
}

_BENCHMARKS = (
    ("turnover", 12.0, "Industry survey 2026 (illustrative)"),
    ("absenteeism", 3.5, "National statistics office 2025 (illustrative)"),
    ("engagement", 72.0, "Industry survey 2026 (illustrative)"),
    ("first_response_time", 4.0, "Customer service benchmark report 2026 (illustrative)"),
    ("csat", 8.5, "Customer service benchmark report 2026 (illustrative)"),
    ("nps", 35.0, "B2B NPS benchmark 2025 (illustrative)"),
    ("conversion", 20.0, "Sales benchmark study 2025 (illustrative)"),
)

# How key results on each metric are written: label, KR unit, rounding step of the
# baseline and of the target, planned move (low, high) and whether it is relative to
# the team's level, and the title of each direction. {L} = label, {l} = label in a
# sentence, {b} = baseline, {t} = target.
_KR_STYLE: dict[str, dict[str, Any]] = {
    "turnover": dict(label="Turnover", unit="%", b_step=0.5, t_step=0.5, move=(1.5, 3.0), soft=(3.0, 40.0),
                     forms={"decrease": "{L} from {b}% to under {t}%",
                            "maintain_at_most": "Keep {l} at or below {t}%"}),
    "absenteeism": dict(label="Absenteeism", unit="%", b_step=0.1, t_step=0.1, move=(0.5, 1.1), soft=(1.0, 15.0),
                        forms={"decrease": "{L} from {b}% to {t}%",
                               "maintain_at_most": "Keep {l} at or below {t}%"}),
    "engagement": dict(label="Engagement", unit="%", b_step=1, t_step=1, move=(3.0, 7.0), soft=(30.0, 88.0),
                       forms={"increase": "{L} from {b}% to {t}%",
                              "maintain_at_least": "Keep {l} at {t}% or above"}),
    "overtime": dict(label="Overtime", unit="h/person/week", b_step=0.1, t_step=0.1, move=(0.7, 1.5), soft=(0.4, 20.0),
                     forms={"decrease": "{L} from {b} h to {t} h per person per week",
                            "maintain_at_most": "Keep {l} at or below {t} h per person per week"}),
    "training_attendance": dict(label="Training attendance", unit="%", b_step=1, t_step=1,
                                move=(8.0, 15.0), soft=(20.0, 95.0),
                                forms={"increase": "{L} from {b}% to {t}%"}),
    "pdp_completion": dict(label="PDP completion", unit="%", b_step=1, t_step=5, move=(6.0, 12.0), soft=(10.0, 95.0),
                           forms={"increase": "{L} {t}%"}),
    "tickets_per_customer": dict(label="Tickets per customer", unit="tickets/customer", b_step=0.1,
                                 t_step=0.1, move=(0.15, 0.35), soft=(0.3, 5.0),
                                 forms={"decrease": "{L} from {b} to {t}"}),
    "first_response_time": dict(label="Average first response", unit="h", b_step=0.5, t_step=0.5,
                                move=(1.2, 2.4), soft=(1.0, 24.0),
                                forms={"decrease": "{L} from {b} h to under {t} h",
                                       "maintain_at_most": "Keep {l} at or below {t} h"}),
    "time_to_resolve": dict(label="Time to resolve", unit="min", b_step=0.1, t_step=0.1, move=(0.6, 1.4),
                            soft=(1.5, 30.0),
                            forms={"decrease": "{L} from {b} to {t} minutes"}),
    "csat": dict(label="CSAT", unit="points (0–10)", b_step=0.1, t_step=0.1, move=(0.3, 0.6), soft=(5.0, 9.5),
                 forms={"increase": "{L} from {b} to {t}", "maintain_at_least": "Maintain {l} at {t}+"}),
    "complaints": dict(label="Complaints per month", unit="complaints/month", b_step=1, t_step=1,
                       move=(1.0, 3.0), soft=(1.0, 100.0),
                       forms={"decrease": "{L} from {b} to {t}",
                              "maintain_at_most": "Keep {l} at or below {t}"}),
    "qualified_leads": dict(label="Qualified leads", unit="leads/week", b_step=1, t_step=1,
                            move=(0.15, 0.3), relative=True,
                            forms={"increase": "{L} from {b} to {t} per week"}),
    "conversion": dict(label="Lead conversion", unit="%", b_step=0.5, t_step=0.5, move=(2.5, 5.0), soft=(3.0, 45.0),
                       forms={"increase": "{L} from {b}% to {t}%"}),
    "revenue": dict(label="Weekly revenue", unit="k€/week", b_step=5, t_step=5, move=(0.12, 0.25),
                    relative=True, forms={"increase": "{L} from {b} k€ to {t} k€"}),
    "nps": dict(label="NPS", unit="points", b_step=1, t_step=1, move=(5.0, 10.0), soft=(-50.0, 60.0),
                forms={"increase": "{L} from {b} to {t}"}),
    UNRELATED_METRIC: dict(label="Intranet visits", unit="visits/week", b_step=10, t_step=10,
                           move=(0.0, 0.0), soft=(0.0, np.inf), forms={"increase": "{L} from {b} to {t} per week"}),
}

# ----------------------------------------------------------------------------------
# OKR templates. A KR slot is ("m", metric, direction) for a team KPI, ("ms", title)
# for a milestone, ("cp", direction) for complaints per month (a count the team
# tracks without a metric), ("agg", metric, direction, scope, label) for a
# department or company KR on the mean (or sum) of a metric over the leaf teams of
# ``scope`` ("all" or a department).
# ----------------------------------------------------------------------------------
_LEAF_TEMPLATES: dict[str, list[tuple[str, str, list[tuple]]]] = {
    "hr": [
        ("Make learning part of every week", "people",
         [("m", "training_attendance", "increase"), ("m", "pdp_completion", "increase"),
          ("ms", "Launch the mentoring programme"), ("ms", "Publish the learning catalogue")]),
        ("Keep the people we hired", "people",
         [("m", "turnover", "decrease"), ("m", "engagement", "increase"),
          ("ms", "Launch the new onboarding journey")]),
        ("Keep our people healthy", "health",
         [("m", "absenteeism", "maintain_at_most"), ("m", "overtime", "decrease"),
          ("ms", "Offer flexible hours in every team")]),
    ],
    "support": [
        ("Answer every customer fast", "service",
         [("m", "first_response_time", "decrease"), ("m", "time_to_resolve", "decrease"),
          ("ms", "Launch live chat")]),
        ("Delight our customers", "service",
         [("m", "csat", "increase"), ("cp", "decrease"), ("m", "tickets_per_customer", "decrease")]),
        ("A support team people want to join", "people",
         [("m", "engagement", "increase"), ("m", "training_attendance", "increase"),
          ("m", "overtime", "decrease")]),
    ],
    "sales": [
        ("Fill the pipeline", "growth",
         [("m", "qualified_leads", "increase"), ("m", "conversion", "increase"),
          ("ms", "Launch the referral programme")]),
        ("Grow revenue with happy customers", "growth",
         [("m", "revenue", "increase"), ("m", "nps", "increase")]),
        ("Grow our sellers", "people",
         [("m", "training_attendance", "increase"), ("m", "engagement", "increase"),
          ("m", "turnover", "decrease")]),
    ],
    "eng": [
        ("Ship a reliable platform", "platform",
         [("ms", "Migrate CI to the new build farm"), ("ms", "Publish a public status page"),
          ("m", "overtime", "decrease")]),
        ("A sustainable pace in engineering", "people",
         [("m", "overtime", "decrease"), ("m", "engagement", "increase"),
          ("m", "absenteeism", "maintain_at_most")]),
        ("Learn as we build", "people",
         [("m", "training_attendance", "increase"), ("m", "pdp_completion", "increase"),
          ("ms", "Start a weekly tech talk")]),
    ],
}

_UNALIGNED_TEMPLATES = [
    ("Bring the team closer together", "none",
     [("m", UNRELATED_METRIC, "increase"), ("ms", "Hold a team offsite")]),
    ("Tidy up how we work", "none",
     [("ms", "Document our team rituals"), ("m", UNRELATED_METRIC, "increase")]),
]

_DEPT_TEMPLATES: dict[str, list[tuple[str, str, list[tuple]]]] = {
    "hr": [
        ("Make Acme a great place to grow", "people",
         [("agg", "engagement", "increase", "all", "Company-wide engagement"),
          ("agg", "training_attendance", "increase", "all", "Company-wide training attendance"),
          ("agg", "turnover", "decrease", "all", "Company-wide turnover")]),
        ("Keep everyone healthy", "health",
         [("agg", "absenteeism", "decrease", "all", "Company-wide absenteeism"),
          ("agg", "overtime", "decrease", "all", "Average overtime")]),
    ],
    "support": [
        ("Best-in-class customer support", "service",
         [("agg", "csat", "increase", "support", "Average support CSAT"),
          ("agg", "first_response_time", "decrease", "support", "Average first response"),
          ("ms", "Launch the customer help centre")]),
        ("A support team people want to join", "people",
         [("agg", "engagement", "increase", "support", "Support engagement"),
          ("agg", "overtime", "decrease", "support", "Support overtime")]),
    ],
    "sales": [
        ("Grow revenue profitably", "growth",
         [("agg", "revenue", "increase", "sales", "Weekly sales revenue"),
          ("agg", "qualified_leads", "increase", "sales", "Qualified leads")]),
        ("Customers who recommend us", "growth",
         [("agg", "nps", "increase", "sales", "Average NPS"),
          ("agg", "conversion", "increase", "sales", "Average lead conversion")]),
    ],
    "eng": [
        ("Build a platform that scales", "platform",
         [("ms", "Move all services to the new cluster"),
          ("agg", "overtime", "decrease", "eng", "Engineering overtime")]),
        ("A sustainable pace in engineering", "people",
         [("agg", "engagement", "increase", "eng", "Engineering engagement"),
          ("agg", "absenteeism", "maintain_at_most", "eng", "Engineering absenteeism")]),
    ],
}

_COMPANY_TEMPLATES = {
    "people": ("Be a place people love to work", "people",
               [("agg", "engagement", "increase", "all", "Company-wide engagement"),
                ("agg", "turnover", "decrease", "all", "Company-wide turnover")]),
    "customers": ("Win and keep customers", "customers",
                  [("agg", "revenue", "increase", "sales", "Weekly revenue"),
                   ("agg", "nps", "increase", "sales", "NPS"),
                   ("agg", "csat", "maintain_at_least", "support", "Average CSAT")]),
    "single": ("Grow a company customers and people love", "single",
               [("agg", "engagement", "increase", "all", "Company-wide engagement"),
                ("agg", "revenue", "increase", "sales", "Weekly revenue"),
                ("agg", "nps", "increase", "sales", "NPS")]),
}
# Which company objective a department theme aligns to.
_COMPANY_THEME = {"people": "people", "health": "people", "service": "customers", "growth": "customers",
                  "platform": "customers"}

# Simpler OKRs for samples with n_teams: one objective per leaf team and quarter.
_SCALE_TEMPLATES = {
    "hr": ("Make learning part of every week", "people",
           [("m", "training_attendance", "increase"), ("m", "engagement", "increase")]),
    "support": ("Answer every customer fast", "service",
                [("m", "first_response_time", "decrease"), ("m", "csat", "increase")]),
    "sales": ("Fill the pipeline", "growth",
              [("m", "qualified_leads", "increase"), ("m", "revenue", "increase")]),
    "eng": ("A sustainable pace in engineering", "people",
            [("m", "overtime", "decrease"), ("m", "engagement", "increase")]),
}

_COMMENTS = {
    "behind": ("Hiring freeze slowed onboarding", "Two people on sick leave this week",
               "Release slipped; waiting on engineering", "Budget for the programme not approved yet",
               "Seasonal peak in volume", "Lost a key account this month", "Tooling migration took longer"),
    "on track": ("On track", "New process is paying off", "Good week, backlog cleared",
                 "Steady progress", "Pilot results look promising"),
    "ahead": ("Ahead of plan thanks to the new process", "Better than expected, will raise the bar",
              "Quick wins landed early"),
    "milestone": ("Vendor selected", "Pilot running with two teams", "Design signed off",
                  "Waiting on legal review", "Rolled out to the first group"),
}


# ----------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------
def _round_to(x: float, step: float) -> float:
    return round(round(x / step) * step, step_decimals(step))


def _sentence(label: str) -> str:
    """The label inside a sentence: 'Engagement' -> 'engagement', 'CSAT' stays."""
    if len(label) > 1 and label[0].isupper() and label[1].islower():
        return label[0].lower() + label[1:]
    return label


def _first_monday(day: pd.Timestamp) -> pd.Timestamp:
    return day + pd.Timedelta(days=(7 - day.weekday()) % 7)


def _seasonal(doy: np.ndarray, peak_doy: float) -> np.ndarray:
    """Yearly cosine, 1 at ``peak_doy`` and -1 half a year later."""
    return np.cos(2 * np.pi * (doy - peak_doy) / 365.25)


def _ar1(rng: np.random.Generator, n: int, length: int, phi: float, sd: Any) -> np.ndarray:
    """``n`` stationary AR(1) series (rows) of ``length`` with marginal standard deviation ``sd``."""
    sd = np.broadcast_to(np.asarray(sd, dtype="float64"), (n,))[:, None]
    e = rng.standard_normal((n, length))
    e[:, 1:] *= np.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], e * sd, axis=1)


def _shift(x: np.ndarray, lag: int, fill: np.ndarray) -> np.ndarray:
    """``x`` delayed by ``lag`` columns; the first ``lag`` columns take ``fill`` (one value per row)."""
    out = np.empty_like(x)
    out[:, lag:] = x[:, :-lag]
    out[:, :lag] = fill[:, None]
    return out


def _check_args(seed: Any, n_teams: Any, weeks: Any, end: Any) -> pd.Timestamp:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    if n_teams is not None and (isinstance(n_teams, bool) or not isinstance(n_teams, (int, np.integer))
                                or n_teams < 1):
        raise ValueError(f"n_teams must be a positive integer (the number of leaf teams) or None for the "
                         f"12-team sample organisation, got {n_teams!r}.")
    if isinstance(weeks, bool) or not isinstance(weeks, (int, np.integer)) or weeks < _MIN_WEEKS:
        raise ValueError(f"weeks must be an integer of at least {_MIN_WEEKS} (one quarter of weekly KPIs), "
                         f"got {weeks!r}.")
    try:
        ts = pd.Timestamp(end)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"end must be a date such as '2026-09-27', got {end!r}.") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"end must be a date such as '2026-09-27', got {end!r}.")
    return ts.tz_localize(None).normalize() if ts.tzinfo is not None else ts.normalize()


# ----------------------------------------------------------------------------------
# Plan structures
# ----------------------------------------------------------------------------------
@dataclass
class _Team:
    team_id: str
    name: str
    dept: str
    headcount: int


@dataclass
class _QuarterInfo:
    quarter: Quarter
    idx: np.ndarray          # indices (into the weekly dates) of the quarter's Mondays that have data
    n_mondays: int           # Mondays in the whole quarter (the plan of a key result spans them all)
    start: int               # index of the quarter's first Monday


@dataclass
class _KR:
    kr_id: str
    objective_id: str
    qi: int
    slot: tuple
    team: int = -1           # leaf team position (metric, complaints and leaf milestone KRs)
    scope: str = ""          # aggregate KRs: "all" or a department
    weight: float = 1.0
    effect: float = 0.0      # share of the planned move actually achieved
    move: float = 0.0        # planned move, in the metric's unit (good direction, positive)
    shape: float = 1.0       # progress over the quarter follows u ** shape
    extra: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.slot[0]

    @property
    def metric(self) -> str | None:
        return self.slot[1] if self.slot[0] in ("m", "agg") else None

    @property
    def direction(self) -> str:
        if self.slot[0] == "ms":
            return "milestone"
        if self.slot[0] == "cp":
            return self.slot[1]
        return self.slot[2]


# ----------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------
def make_sample(
    *,
    seed: int = 0,
    n_teams: int | None = None,
    weeks: int = 156,
    end: str = _DEFAULT_END,
) -> dict[str, pd.DataFrame]:
    """Build the sample organisation's tables.

    Parameters
    ----------
    seed : int, default 0
        Random seed; the same seed gives the same tables.
    n_teams : int, optional
        Number of leaf teams of a synthetic organisation, spread round-robin over the
        four departments (``hr-0001``, ``support-0001``, …), with the same metrics and
        planted relationships, simpler OKRs (one objective per leaf team and quarter)
        and no planted declines. Default: the 12-team *Acme Corp* organisation
        described in :data:`SAMPLE_README`.
    weeks : int, default 156
        Weeks of KPI history (at least 14).
    end : str, default '2026-09-27'
        Last day of the data; KPIs are dated on Mondays, the last one on or before ``end``.
        OKRs cover the last four complete quarters (calendar quarters), a quarter being
        complete once its last full week has ended; quarters whose first Monday lies
        before the data are left out (when none is covered, the quarter in progress is used).

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables ``teams``, ``objectives``, ``key_results``, ``checkins``, ``kpis``,
        ``metrics``, ``benchmarks`` and ``initiatives``, with exactly the columns of
        :data:`okr_analysis.schemas.TABLES`. Ids are strings, dates ``datetime64[ns]``,
        quarters labels such as ``'2026Q3'``; validate and type them with
        :func:`okr_analysis.loaders.from_frames`.

    Raises
    ------
    ValueError
        When an argument is out of range.

    See Also
    --------
    write_sample : write the tables to a folder.
    BUILT_IN_DRIVERS, UNRELATED_METRIC, BUILT_IN_DECLINES, BUILT_IN_INITIATIVES : the planted answers.

    Examples
    --------
    >>> tables = make_sample(seed=0)
    >>> sorted(tables)
    ['benchmarks', 'checkins', 'initiatives', 'key_results', 'kpis', 'metrics', 'objectives', 'teams']
    """
    end_ts = _check_args(seed, n_teams, weeks, end)
    return _Builder(int(seed), None if n_teams is None else int(n_teams), int(weeks), end_ts).build()


def write_sample(
    directory: "str | os.PathLike[str]",
    *,
    seed: int = 0,
    n_teams: int | None = None,
    weeks: int = 156,
    fmt: str = "csv",
    end: str = _DEFAULT_END,
) -> Path:
    """Write the sample organisation to a folder, one file per table.

    Parameters
    ----------
    directory : str or path-like
        The folder to write; created (with its parents) when missing. Files of the
        same names are replaced; other files are left alone.
    seed, n_teams, weeks, end
        As for :func:`make_sample`.
    fmt : {'csv', 'parquet'}, default 'csv'
        File format: ``teams.csv``, ``objectives.csv`` … or ``teams.parquet`` …
        Dates are written as ISO text (``YYYY-MM-DD``) in both formats.

    Returns
    -------
    pathlib.Path
        The folder.

    Notes
    -----
    The files are written into a temporary folder beside ``directory`` and then moved
    into place, so a reader never sees a half-written table.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}.")
    tables = make_sample(seed=seed, n_teams=n_teams, weeks=weeks, end=end)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} exists and is not a folder; give a folder path for the sample.")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        names = []
        for name, frame in tables.items():
            out = frame.copy()
            for col in out.columns:
                if pd.api.types.is_datetime64_any_dtype(out[col]):
                    out[col] = _iso_dates(out[col])
            path = tmp / f"{name}.{fmt}"
            if fmt == "csv":
                out.to_csv(path, index=False)
            else:
                out.to_parquet(path, index=False)
            names.append(path.name)
        directory.mkdir(exist_ok=True)
        for fname in names:
            os.replace(tmp / fname, directory / fname)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _iso_dates(s: pd.Series) -> pd.Series:
    """Dates as ``YYYY-MM-DD`` text (formatted once per distinct date)."""
    codes, uniques = pd.factorize(s)
    text = np.asarray(pd.DatetimeIndex(uniques).strftime("%Y-%m-%d"), dtype=object)
    out = np.where(codes >= 0, text[np.maximum(codes, 0)] if len(text) else None, None)
    return pd.Series(out, index=s.index, dtype=object)


# ----------------------------------------------------------------------------------
# The builder
# ----------------------------------------------------------------------------------
class _Builder:
    """Builds one sample: teams → dates and quarters → OKR plan → KPIs → OKR tables."""

    def __init__(self, seed: int, n_teams: int | None, weeks: int, end: pd.Timestamp):
        self.default = n_teams is None
        self.weeks = weeks
        self.end = end
        streams = np.random.SeedSequence(seed).spawn(4)
        self.rng_params, self.rng_noise, self.rng_okr, self.rng_checkins = (
            np.random.default_rng(s) for s in streams)
        self._teams(n_teams)
        self._dates()
        self._quarters()

    # -- organisation -------------------------------------------------------------
    def _teams(self, n_teams: int | None) -> None:
        if n_teams is None:
            self.leaves = [_Team(*t) for t in _DEFAULT_TEAMS]
        else:
            rng = self.rng_params
            heads = rng.integers(4, 41, size=n_teams)
            self.leaves = []
            names = dict(_DEPARTMENTS)
            for i in range(n_teams):
                dept = _DEPARTMENTS[i % 4][0]
                num = i // 4 + 1
                self.leaves.append(_Team(f"{dept}-{num:04d}", f"{names[dept]} team {num}", dept, int(heads[i])))
        self.depts = [d for d, _ in _DEPARTMENTS if any(t.dept == d for t in self.leaves)]
        self.dept_teams = {d: np.array([i for i, t in enumerate(self.leaves) if t.dept == d]) for d in self.depts}
        self.team_pos = {t.team_id: i for i, t in enumerate(self.leaves)}
        # which leaf teams measure each metric, and each team's row in the metric's matrix
        self.metric_teams: dict[str, np.ndarray] = {}
        self.metric_row: dict[str, np.ndarray] = {}
        for m in _METRICS:
            pos = np.array([i for i, t in enumerate(self.leaves) if m in _DEPT_METRICS[t.dept]], dtype=int)
            self.metric_teams[m] = pos
            row = np.full(len(self.leaves), -1)
            row[pos] = np.arange(len(pos))
            self.metric_row[m] = row

    def teams_table(self) -> pd.DataFrame:
        names = dict(_DEPARTMENTS)
        dept_head = {d: sum(self.leaves[i].headcount for i in self.dept_teams[d]) for d in self.depts}
        ids = ["acme"] + self.depts + [t.team_id for t in self.leaves]
        return pd.DataFrame({
            "team_id": ids,
            "team_name": ["Acme Corp"] + [names[d] for d in self.depts] + [t.name for t in self.leaves],
            "parent_team_id": [None] + ["acme"] * len(self.depts) + [t.dept for t in self.leaves],
            "headcount": np.array([sum(dept_head.values())] + [dept_head[d] for d in self.depts]
                                  + [t.headcount for t in self.leaves], dtype="int64"),
        })

    # -- calendar -----------------------------------------------------------------
    def _dates(self) -> None:
        last = self.end - pd.Timedelta(days=self.end.weekday())
        self.dates = pd.date_range(end=last, periods=self.weeks, freq="7D")
        ext = pd.date_range(end=last, periods=self.weeks + _PRE, freq="7D")
        self.doy = ext.day_of_year.to_numpy().astype("float64")
        self.years = (np.arange(self.weeks + _PRE) - _PRE) / _WEEKS_PER_YEAR  # 0 at the first date

    def _index(self, day: pd.Timestamp) -> int:
        return int((day - self.dates[0]).days // 7)

    def _quarter_info(self, q: Quarter) -> _QuarterInfo:
        first = _first_monday(q.start)
        mondays = pd.date_range(first, q.end, freq="7D")
        idx = np.array([self._index(d) for d in mondays if d <= self.dates[-1]], dtype=int)
        return _QuarterInfo(q, idx, len(mondays), self._index(first))

    def _quarters(self) -> None:
        q = Quarter.containing(self.end)
        last_sunday = q.end - pd.Timedelta(days=(q.end.weekday() + 1) % 7)
        if self.end < last_sunday:
            q = q.previous()
        candidates = [q]
        for _ in range(3):
            candidates.insert(0, candidates[0].previous())
        covered = [c for c in candidates if _first_monday(c.start) >= self.dates[0]]
        if not covered:
            covered = [Quarter.containing(self.dates[-1])]
        self.quarters = [self._quarter_info(c) for c in covered]

    # -- the whole sample -----------------------------------------------------------
    def build(self) -> dict[str, pd.DataFrame]:
        self._draw_params()
        self._plan_okrs()
        self._plant_initiatives()
        self._generate_kpis()
        objectives = pd.DataFrame(self.objectives, columns=TABLES["objectives"].column_names)
        key_results, checkins = self._okr_tables()
        tables = {
            "teams": self.teams_table(),
            "objectives": objectives,
            "key_results": key_results,
            "checkins": checkins,
            "kpis": self._kpis_table(),
            "metrics": self._metrics_table(),
            "benchmarks": pd.DataFrame(list(_BENCHMARKS), columns=["metric", "value", "source"]),
            "initiatives": self._initiatives_table(),
        }
        return {name: tables[name][TABLES[name].column_names] for name in TABLES}

    def _plant_initiatives(self) -> None:
        """The built-in initiatives' steps, added to their team's KPI from the start on (default organisation).

        Added after the OKR plan, so key results are planned as before; no random numbers are drawn,
        so every other team's KPIs stay the same."""
        self.initiatives: list[dict[str, Any]] = []
        if not self.default or not self.quarters:
            return
        first = _PRE + self.quarters[-1].start
        for ini in BUILT_IN_INITIATIVES:
            t0 = first - ini["weeks_before"]
            if t0 - _PRE < 8:  # too little history before the start: leave it out
                continue
            row = self.metric_row[ini["metric"]][self.team_pos[ini["team_id"]]]
            self.ramps[ini["metric"]][row, t0:] += ini["effect"]
            self.initiatives.append({"initiative_id": ini["initiative_id"], "team_id": ini["team_id"],
                                     "title": ini["title"], "start": self.dates[t0 - _PRE], "metric": ini["metric"],
                                     "end": pd.NaT, "kr_id": None})

    def _initiatives_table(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.initiatives, columns=TABLES["initiatives"].column_names)
        for col in ("start", "end"):
            frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
        return frame

    @staticmethod
    def _metrics_table() -> pd.DataFrame:
        rows = [(m, *spec[:6]) for m, spec in _METRICS.items()]
        frame = pd.DataFrame(rows, columns=TABLES["metrics"].column_names)
        for col in ("higher_is_better", "people_metric"):
            frame[col] = frame[col].astype(bool)
        return frame

    # -- team parameters ----------------------------------------------------------
    def _draw_params(self) -> None:
        """Levels, trends, noise sizes and driver strengths of every team, per metric."""
        rng = self.rng_params
        p: dict[str, dict[str, np.ndarray]] = {}

        def u(metric: str, lo: float, hi: float) -> np.ndarray:
            return rng.uniform(lo, hi, size=len(self.metric_teams[metric]))

        p["turnover"] = dict(level=u("turnover", 9, 16), trend=u("turnover", -0.6, 0.6), sd=0.8)
        p["absenteeism"] = dict(level=u("absenteeism", 2.8, 4.6), amp=u("absenteeism", 0.5, 1.1), sd=0.3)
        p["training_attendance"] = dict(level=u("training_attendance", 55, 78), sd=7.0)
        # weekly pulse surveys of small teams are noisier
        heads = np.array([self.leaves[i].headcount for i in self.metric_teams["engagement"]], dtype="float64")
        p["engagement"] = dict(level=u("engagement", 66, 80), trend=u("engagement", -1.0, 1.5),
                               b=u("engagement", 0.1, 0.2), sd=np.clip(2.0 * np.sqrt(16 / heads), 1.5, 4.5))
        p["overtime"] = dict(level=u("overtime", 1.5, 5.0), amp=u("overtime", 0.3, 0.8), sd=0.5)
        p["pdp_completion"] = dict(level=u("pdp_completion", 55, 80), trend=u("pdp_completion", 0, 4), sd=3.0)
        p[UNRELATED_METRIC] = dict(start=u(UNRELATED_METRIC, 80, 250), drift=u(UNRELATED_METRIC, 0.5, 1.5),
                                   sd=u(UNRELATED_METRIC, 2, 5))
        p["tickets_per_customer"] = dict(level=u("tickets_per_customer", 0.9, 1.6),
                                         trend=u("tickets_per_customer", -0.15, 0.02), sd=0.08)
        p["first_response_time"] = dict(level=u("first_response_time", 3.0, 6.0), sd=0.8)
        p["time_to_resolve"] = dict(level=u("time_to_resolve", 4.0, 7.0), trend=u("time_to_resolve", -0.4, 0.0),
                                    sd=0.35)
        p["csat"] = dict(level=u("csat", 7.8, 8.8), b=-u("csat", 0.15, 0.25), sd=0.25)
        p["complaints"] = dict(level=u("complaints", 0.8, 1.6), trend=u("complaints", -0.2, 0.1))
        p["qualified_leads"] = dict(level=u("qualified_leads", 25, 60))
        p["qualified_leads"]["sd"] = 0.15 * p["qualified_leads"]["level"]
        p["conversion"] = dict(level=u("conversion", 15, 30), sd=1.2)
        p["revenue"] = dict(level=u("revenue", 80, 250), beta=u("revenue", 0.35, 0.65),
                            growth=u("revenue", 0.02, 0.06))
        p["nps"] = dict(level=u("nps", 20, 45), sd=4.0)
        self.params = p

    # -- OKR plan -------------------------------------------------------------------
    def _plan_okrs(self) -> None:
        """Objectives and the plan of every key result (what moves which KPI by how much)."""
        self.objectives: list[dict[str, Any]] = []
        self.krs: list[_KR] = []
        length = self.weeks + _PRE
        self.ramps = {m: np.zeros((len(self.metric_teams[m]), length)) for m in _METRICS}
        self._last_focus: dict[int, set[str]] = {}
        rng = self.rng_okr
        for qi, qinfo in enumerate(self.quarters):
            label = qinfo.quarter.label
            final = qi == len(self.quarters) - 1
            # company
            if self.default:
                company = ["people", "customers"] if rng.random() < 0.75 else ["single"]
            else:
                company = ["single"]
            company_ids = {}
            for k, key in enumerate(company, start=1):
                title, theme, slots = _COMPANY_TEMPLATES[key]
                oid = self._objective(label, "acme", k, title, None, rng, kind="committed" if k == 1 else None)
                company_ids[key] = oid
                self._add_krs(oid, qi, slots, -1, rng)

            def company_parent(theme: str) -> str:
                return company_ids.get(_COMPANY_THEME.get(theme, ""), next(iter(company_ids.values())))

            # departments
            dept_obj: dict[str, dict[str, str]] = {}
            for d in self.depts:
                templates = _DEPT_TEMPLATES[d]
                n = (1 if rng.random() < 0.4 else 2) if self.default else 1
                dept_obj[d] = {}
                for k, (title, theme, slots) in enumerate(templates[:n], start=1):
                    oid = self._objective(label, d, k, title, company_parent(theme), rng)
                    dept_obj[d][theme] = oid
                    self._add_krs(oid, qi, slots, -1, rng)
            # leaf teams
            if self.default:
                self._plan_default_leaves(qi, label, final, dept_obj, rng)
            else:
                self._plan_scaled_leaves(qi, label, dept_obj, rng)

    def _objective(self, label: str, team_id: str, k: int, title: str, parent: str | None,
                   rng: np.random.Generator, kind: str | None = None) -> str:
        oid = f"{label}-{team_id}-o{k}"
        if kind is None:
            kind = "committed" if rng.random() < 0.45 else "aspirational"
        self.objectives.append({"objective_id": oid, "team_id": team_id, "quarter": label, "title": title,
                                "parent_objective_id": parent, "kind": kind})
        return oid

    def _add_krs(self, oid: str, qi: int, slots: list[tuple], team: int, rng: np.random.Generator,
                 *, no_effect: tuple[str, ...] = ()) -> None:
        """Plan the key results of one objective; a leaf KR on a KPI moves that KPI (``self.ramps``)."""
        slots = [s for s in slots if s[0] != "agg" or len(self._scope_teams(s[1], s[3]))]
        for j, slot in enumerate(slots, start=1):
            kr = _KR(kr_id=f"{oid}-kr{j}", objective_id=oid, qi=qi, slot=slot, team=team)
            kr.weight = 2.0 if rng.random() < 0.15 else 1.0
            kr.effect = rng.uniform(0.4, 1.6)
            kr.shape = float(rng.choice([0.45, 1.0, 2.2]))
            if slot[0] == "agg":
                kr.scope = slot[3]
                kr.extra["f"] = rng.uniform(0.6, 1.6)
            elif slot[0] in ("m", "cp"):
                metric = "complaints" if slot[0] == "cp" else slot[1]
                style = _KR_STYLE[metric]
                lo, hi = style["move"]
                move = rng.uniform(lo, hi)
                row = self.metric_row[metric][team]
                start = _PRE + self.quarters[qi].start
                level = self._expected_level(metric, row, start)
                if style.get("relative"):
                    move *= level
                if "soft" in style:
                    soft_lo, soft_hi = style["soft"]
                else:  # relative to the team's own level
                    base = self.params[metric]["level"][row]
                    soft_lo, soft_hi = 0.5 * base, 1.4 * base
                room = soft_hi - level if kr.direction == "increase" else level - soft_lo
                kr.move = float(min(move, max(0.3 * room, 0.0)))
                kr.extra["margin"] = rng.uniform(0.6, 1.6)
                if metric in no_effect:
                    kr.effect = 0.0
                if metric != UNRELATED_METRIC and kr.direction in ("increase", "decrease") and kr.effect:
                    size = (1.0 if kr.direction == "increase" else -1.0) * kr.effect * kr.move
                    if metric == "complaints":
                        size /= 4.0  # a monthly count moved through the weekly rate
                    self.ramps[metric][row] += size * self._profile(qi, kr.shape)
            else:  # milestone
                n = self.quarters[qi].n_mondays
                s1 = int(rng.integers(1, max(2, n // 3)))
                s2 = s1 + int(rng.integers(2, 5))
                s3 = s2 + int(rng.integers(2, 9))
                kr.extra["steps"] = (s1, s2, s3)
                kr.extra["first"] = float(rng.choice([0.25, 0.5]))
            self.krs.append(kr)

    def _expected_level(self, metric: str, row: int, t: int) -> float:
        """A team's KPI level at extended week ``t`` without noise (planned moves included)."""
        prm = self.params[metric]
        if metric == UNRELATED_METRIC:
            return float(prm["start"][row] + prm["drift"][row] * (t - _PRE))
        level = float(prm["level"][row])
        if "trend" in prm:
            level += float(prm["trend"][row]) * self.years[t]
        if "growth" in prm:
            level *= 1 + float(prm["growth"][row]) * self.years[t]
        level += float(self.ramps[metric][row, t])
        return 4.0 * level if metric == "complaints" else level

    def _plan_default_leaves(self, qi: int, label: str, final: bool, dept_obj: dict[str, dict[str, str]],
                             rng: np.random.Generator) -> None:
        n_leaves = len(self.leaves)
        unaligned = set(rng.choice(n_leaves, size=int(rng.integers(1, 3)), replace=False).tolist())
        for pos, team in enumerate(self.leaves):
            templates = list(_LEAF_TEMPLATES[team.dept])
            chosen: list[tuple[str, str, list[tuple]]]
            if final and team.team_id == "eng-platform":
                # one objective whose key results are all milestones (for the hygiene lint)
                chosen = [("Ship a reliable platform", "platform",
                           [("ms", "Migrate CI to the new build farm"), ("ms", "Publish a public status page"),
                            ("ms", "Retire the legacy billing service")]),
                          templates[1]]
            elif final and team.team_id == "support-tier2":
                chosen = [templates[0], templates[1]]
            elif final and team.team_id == "sales-partnerships":
                # one objective with a single key result (for the hygiene lint)
                chosen = [("Grow partner-sourced revenue", "growth", [("m", "revenue", "increase")]),
                          templates[2]]
            else:
                # teams rotate their focus: last quarter's objectives are less likely again
                n = int(rng.choice([1, 2, 2, 3]))
                last = self._last_focus.get(pos, set())
                w = np.array([0.3 if t[0] in last else 1.0 for t in templates])
                order = rng.choice(len(templates), size=n, replace=False, p=w / w.sum())
                chosen = [templates[i] for i in sorted(order)]
            self._last_focus[pos] = {t[0] for t in chosen}
            if pos in unaligned:  # one objective not aligned to the department (at most 3 in all)
                chosen = chosen[:2] + [_UNALIGNED_TEMPLATES[int(rng.integers(len(_UNALIGNED_TEMPLATES)))]]
            used: set[str] = set()
            k = 0
            for title, theme, slots in chosen:
                keep = []
                for slot in slots:
                    key = slot[1] if slot[0] == "m" else ("complaints" if slot[0] == "cp" else slot[1])
                    if key in used:
                        continue
                    if slot[0] == "m" and slot[1] == "csat" and final and (team.team_id, "csat") in _DECLINE_SIZE:
                        slot = ("m", "csat", "maintain_at_least")
                    elif slot[0] == "m" and slot[1] in ("csat", "engagement") and rng.random() < 0.25:
                        slot = ("m", slot[1], "maintain_at_least")
                    keep.append(slot)
                    used.add(key)
                is_special = final and team.team_id in ("eng-platform", "sales-partnerships") and k == 0
                if not is_special:
                    if len(keep) < 2 or all(s[0] == "ms" for s in keep):
                        continue
                    if len(keep) > 2 and rng.random() < 0.25:
                        drop = int(rng.integers(len(keep)))
                        fewer = keep[:drop] + keep[drop + 1:]
                        if any(s[0] != "ms" for s in fewer):
                            keep = fewer
                k += 1
                if theme == "none":
                    parent = None
                else:
                    parent = dept_obj[team.dept].get(theme) or next(iter(dept_obj[team.dept].values()))
                oid = self._objective(label, team.team_id, k, title, parent, rng)
                # planted declines: the team's effort does not help
                no_effect = tuple(m for (t, m) in _DECLINE_SIZE if final and t == team.team_id)
                if final and team.team_id == "support-tier2":
                    no_effect += ("first_response_time",)
                self._add_krs(oid, qi, keep, pos, rng, no_effect=no_effect)

    def _plan_scaled_leaves(self, qi: int, label: str, dept_obj: dict[str, dict[str, str]],
                            rng: np.random.Generator) -> None:
        unaligned = qi % len(self.leaves)
        for pos, team in enumerate(self.leaves):
            title, theme, slots = _SCALE_TEMPLATES[team.dept]
            parent = None if pos == unaligned else next(iter(dept_obj[team.dept].values()))
            oid = self._objective(label, team.team_id, 1, title, parent, rng)
            self._add_krs(oid, qi, slots, pos, rng)

    # -- KPIs -----------------------------------------------------------------------
    def _profile(self, qi: int, shape: float) -> np.ndarray:
        """Share of a key result's planned move reached at each week (extended axis).

        The move builds up over the quarter (``u ** shape``, complete by the quarter's
        second-to-last Monday) and then stays: what a team achieved, it keeps.
        """
        cache = self.__dict__.setdefault("_profiles", {})
        key = (qi, shape)
        if key not in cache:
            q = self.quarters[qi]
            t = (np.arange(self.weeks + _PRE) - _PRE - q.start).astype("float64")
            n = q.n_mondays
            prof = np.clip(t / max(n - 2, 1), 0.0, 1.0) ** shape
            cache[key] = prof
        return cache[key]

    def _declines(self) -> dict[str, np.ndarray]:
        length = self.weeks + _PRE
        out = {m: np.zeros((len(self.metric_teams[m]), length)) for m in _METRICS}
        if not self.default:
            return out
        q = self.quarters[-1]
        t = np.arange(length) - _PRE - q.start
        u = np.clip((t + 1) / (q.n_mondays - 1), 0.0, 1.0)
        for (team_id, metric), share in _DECLINE_SIZE.items():
            row = self.metric_row[metric][self.team_pos[team_id]]
            level = max(self._expected_level(metric, row, _PRE + q.start), self.params[metric]["level"][row])
            out[metric][row] += share * level * u**0.8
        return out

    def _generate_kpis(self) -> None:
        rng = self.rng_noise
        p = self.params
        ramps = self.ramps
        dec = self._declines()
        length = self.weeks + _PRE
        yrs, doy = self.years[None, :], self.doy
        vals: dict[str, np.ndarray] = {}

        def n(metric: str) -> int:
            return len(self.metric_teams[metric])

        def col(a: np.ndarray) -> np.ndarray:
            return np.asarray(a)[:, None]

        def finish(metric: str, x: np.ndarray) -> np.ndarray:
            spec = _METRICS[metric]
            return np.round(np.clip(x, spec[7], spec[8]), spec[6])

        # people metrics (every leaf team)
        q = p["turnover"]
        vals["turnover"] = finish("turnover", col(q["level"]) + col(q["trend"]) * yrs
                                  + _ar1(rng, n("turnover"), length, 0.85, q["sd"])
                                  + ramps["turnover"] + dec["turnover"])
        q = p["absenteeism"]
        vals["absenteeism"] = finish("absenteeism", col(q["level"]) + col(q["amp"]) * _seasonal(doy, 35)
                                     + _ar1(rng, n("absenteeism"), length, 0.6, q["sd"])
                                     + ramps["absenteeism"] + dec["absenteeism"])
        q = p["training_attendance"]
        train = finish("training_attendance", col(q["level"])
                       + _ar1(rng, n("training_attendance"), length, 0.5, q["sd"])
                       + ramps["training_attendance"])
        vals["training_attendance"] = train
        q = p["engagement"]
        lead = _shift(train, 4, p["training_attendance"]["level"]) - col(p["training_attendance"]["level"])
        vals["engagement"] = finish("engagement", col(q["level"]) + col(q["trend"]) * yrs + col(q["b"]) * lead
                                    + _ar1(rng, n("engagement"), length, 0.5, q["sd"])
                                    + ramps["engagement"] + dec["engagement"])
        q = p["overtime"]
        vals["overtime"] = finish("overtime", col(q["level"]) + col(q["amp"]) * _seasonal(doy, 340)
                                  + _ar1(rng, n("overtime"), length, 0.6, q["sd"]) + ramps["overtime"])
        q = p["pdp_completion"]
        vals["pdp_completion"] = finish("pdp_completion", col(q["level"]) + col(q["trend"]) * yrs
                                        + _ar1(rng, n("pdp_completion"), length, 0.95, q["sd"])
                                        + ramps["pdp_completion"])
        # the unrelated metric: a random walk with drift, generated from nothing else
        q = p[UNRELATED_METRIC]
        steps = col(q["drift"]) + col(q["sd"]) * rng.standard_normal((n(UNRELATED_METRIC), length))
        steps[:, : _PRE + 1] = 0.0
        vals[UNRELATED_METRIC] = finish(UNRELATED_METRIC, col(q["start"]) + np.cumsum(steps, axis=1))

        # support
        if n("csat"):
            q = p["tickets_per_customer"]
            vals["tickets_per_customer"] = finish(
                "tickets_per_customer", col(q["level"]) + col(q["trend"]) * yrs
                + _ar1(rng, n("tickets_per_customer"), length, 0.7, q["sd"]) + ramps["tickets_per_customer"])
            q = p["first_response_time"]
            frt = finish("first_response_time", col(q["level"])
                         + _ar1(rng, n("first_response_time"), length, 0.5, q["sd"])
                         + ramps["first_response_time"])
            vals["first_response_time"] = frt
            q = p["time_to_resolve"]
            vals["time_to_resolve"] = finish(
                "time_to_resolve", col(q["level"]) + col(q["trend"]) * yrs
                + _ar1(rng, n("time_to_resolve"), length, 0.7, q["sd"]) + ramps["time_to_resolve"])
            q = p["csat"]
            lead = _shift(frt, 2, p["first_response_time"]["level"]) - col(p["first_response_time"]["level"])
            vals["csat"] = finish("csat", col(q["level"]) + col(q["b"]) * lead
                                  + _ar1(rng, n("csat"), length, 0.5, q["sd"]) + ramps["csat"] + dec["csat"])
            q = p["complaints"]
            rate = np.clip(col(q["level"]) + col(q["trend"]) * yrs + ramps["complaints"], 0.05, None)
            vals["complaints"] = rng.poisson(rate).astype("float64")
        # sales
        if n("revenue"):
            q = p["qualified_leads"]
            leads = finish("qualified_leads", col(q["level"])
                           + _ar1(rng, n("qualified_leads"), length, 0.5, q["sd"]) + ramps["qualified_leads"])
            vals["qualified_leads"] = leads
            q = p["conversion"]
            vals["conversion"] = finish("conversion", col(q["level"])
                                        + _ar1(rng, n("conversion"), length, 0.7, q["sd"])
                                        + ramps["conversion"] + dec["conversion"])
            q = p["revenue"]
            lvl = col(q["level"])
            lead_level = p["qualified_leads"]["level"]
            lead = (_shift(leads, 6, lead_level) - col(lead_level)) / col(lead_level)
            vals["revenue"] = finish("revenue", lvl * (1 + col(q["growth"]) * yrs)
                                     + 0.05 * lvl * _seasonal(doy, 350) + col(q["beta"]) * lvl * lead
                                     + _ar1(rng, n("revenue"), length, 0.4, 0.12 * q["level"])
                                     + ramps["revenue"])
            q = p["nps"]
            vals["nps"] = finish("nps", col(q["level"]) + _ar1(rng, n("nps"), length, 0.6, q["sd"])
                                 + ramps["nps"])
        self.ext = {m: v for m, v in vals.items()}
        self.kpi = {m: v[:, _PRE:] for m, v in vals.items()}

    def _kpis_table(self) -> pd.DataFrame:
        team_ids = np.array([t.team_id for t in self.leaves], dtype=object)
        metric_names = np.array(list(_METRICS), dtype=object)
        T = self.weeks
        teams, metrics, values = [], [], []
        for code, m in enumerate(_METRICS):
            pos = self.metric_teams[m]
            if len(pos) == 0:
                continue
            teams.append(np.repeat(pos, T))
            metrics.append(np.full(len(pos) * T, code))
            values.append(self.kpi[m].ravel())
        team_code = np.concatenate(teams)
        metric_code = np.concatenate(metrics)
        date_code = np.tile(np.arange(T), len(team_code) // T)
        order = np.lexsort((date_code, metric_code, team_code))
        dates = self.dates.to_numpy()
        return pd.DataFrame({
            "team_id": team_ids[team_code[order]],
            "metric": metric_names[metric_code[order]],
            "date": dates[date_code[order]],
            "value": np.concatenate(values)[order],
        })

    # -- OKR tables -----------------------------------------------------------------
    def _scope_teams(self, metric: str, scope: str) -> np.ndarray:
        """Leaf teams of a scope ("all" or a department) that measure the metric."""
        pos = self.metric_teams[metric]
        if scope != "all":
            pos = np.intersect1d(pos, self.dept_teams.get(scope, np.array([], dtype=int)))
        return pos

    def _scope_series(self, metric: str, scope: str) -> np.ndarray:
        """The metric over the leaf teams of a scope: mean, or sum for count metrics (weekly)."""
        rows = self.metric_row[metric][self._scope_teams(metric, scope)]
        block = self.kpi[metric][rows]
        agg = block.sum(axis=0) if _METRICS[metric][4] == "sum" else block.mean(axis=0)
        return np.round(agg, _METRICS[metric][6])

    def _complaints_monthly(self, team: int) -> np.ndarray:
        """Complaints over the last four weeks, at each weekly date."""
        weekly = self.ext["complaints"][self.metric_row["complaints"][team]]
        cs = np.concatenate([[0.0], np.cumsum(weekly)])
        return (cs[4:] - cs[:-4])[_PRE - 3:]

    def _okr_tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        rng = self.rng_checkins
        kr_rows: list[dict[str, Any]] = []
        ci_parts: list[dict[str, Any]] = []
        final_qi = len(self.quarters) - 1
        for kr in self.krs:
            q = self.quarters[kr.qi]
            idx = q.idx
            if len(idx) == 0:
                continue
            row, values = self._finalise_kr(kr, idx)
            kr_rows.append(row)
            conf = self._confidence(kr, row, values, q, rng)
            ci_parts.append({"kr": kr, "row": row, "idx": idx, "values": values, "conf": conf})
        self._plant_checkin_findings(ci_parts, final_qi)
        key_results = pd.DataFrame(kr_rows, columns=TABLES["key_results"].column_names)
        checkins = self._checkins_frame(ci_parts, rng)
        return key_results, checkins

    def _finalise_kr(self, kr: _KR, idx: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
        """Baseline, target and title from the generated KPIs; the values its check-ins report."""
        direction = kr.direction
        row: dict[str, Any] = {"kr_id": kr.kr_id, "objective_id": kr.objective_id, "direction": direction,
                               "weight": kr.weight, "metric": None}
        if kr.kind == "ms":
            s1, s2, s3 = kr.extra["steps"]
            k = np.arange(len(idx))
            first = kr.extra["first"]
            values = np.where(k >= s3, 1.0, np.where(k >= s2, max(first, 0.5), np.where(k >= s1, first, 0.0)))
            row.update(title=kr.slot[1], baseline=None, target=1.0, unit=None)
            return row, values.astype("float64")
        if kr.kind == "cp":
            metric, style = "complaints", _KR_STYLE["complaints"]
            series = self._complaints_monthly(kr.team)
            label = style["label"]
        elif kr.kind == "agg":
            metric = kr.metric
            style = _KR_STYLE[metric]
            series = self._scope_series(metric, kr.scope)
            label = kr.slot[4]
        else:
            metric = kr.metric
            style = _KR_STYLE[metric]
            series = self.kpi[metric][self.metric_row[metric][kr.team]]
            label = style["label"]
            row["metric"] = metric
        values = series[idx].astype("float64")
        b_step, t_step = style["b_step"], style["t_step"]
        if kr.kind == "agg":
            # department and company targets: the realised move of the aggregate scaled by a random factor
            b_step = t_step = _agg_step(metric, values[0], style)
        v0 = float(values[0])
        baseline = _round_to(v0, b_step)
        spec = _METRICS.get(metric)
        lo, hi = (spec[7], spec[8]) if spec else (0.0, np.inf)
        if metric == "complaints":
            lo = 0.0
        sign = {"increase": 1.0, "decrease": -1.0, "maintain_at_least": -1.0, "maintain_at_most": 1.0}[direction]
        if direction in ("increase", "decrease"):
            if kr.kind == "agg":
                end_value = float(values[-1]) if len(values) else v0
                n_full = self.quarters[kr.qi].n_mondays
                realised = (end_value - v0) * sign * (n_full / max(len(values), 1))
                floor = 0.5 * style["move"][0] * (v0 if style.get("relative") else 1.0)
                move = max(realised * kr.extra["f"], floor)
            elif metric == UNRELATED_METRIC:
                p = self.params[UNRELATED_METRIC]
                move = p["drift"][self.metric_row[metric][kr.team]] * 13 * kr.extra["margin"]
            else:
                move = kr.move
            target = _round_to(baseline + sign * move, t_step)
            if (target - baseline) * sign < t_step - 1e-9:
                target = _round_to(baseline + sign * t_step, t_step)
            if not lo + t_step <= target <= hi - t_step:
                target = _round_to(min(max(target, lo + t_step), hi - t_step), t_step)
                if (target - baseline) * sign <= 0:
                    # no room to move: turn it into a maintain key result
                    direction = "maintain_at_least" if sign > 0 else "maintain_at_most"
                    row["direction"] = direction
        if direction in ("maintain_at_least", "maintain_at_most"):
            sd = self._noise_scale(metric, kr, values)
            sign = -1.0 if direction == "maintain_at_least" else 1.0
            target = v0 + sign * kr.extra.get("margin", 1.0) * sd
            target = (np.floor if sign < 0 else np.ceil)(target / t_step) * t_step
            target = _round_to(float(target), t_step)
            if metric == "csat" and kr.team >= 0 and (self.leaves[kr.team].team_id, "csat") in _DECLINE_SIZE:
                target = _round_to(v0 - 0.2, t_step)
            baseline = None
        form = style["forms"].get(direction)
        if form is None:  # e.g. complaints maintain (no template): fall back on a neutral wording
            form = "{L} at {t}+" if direction == "maintain_at_least" else "Keep {l} at or below {t}"
        title = form.format(L=label, l=_sentence(label), b=with_step(baseline, b_step) if baseline is not None else "",
                            t=with_step(target, t_step))
        row.update(title=title, baseline=baseline, target=float(target), unit=style["unit"])
        return row, values

    def _noise_scale(self, metric: str, kr: _KR, values: np.ndarray) -> float:
        """Typical week-to-week spread of the KR's series (for maintain thresholds)."""
        sd = {"csat": 0.25, "absenteeism": 0.5, "engagement": 2.5, "overtime": 0.6, "turnover": 1.0,
              "first_response_time": 1.0, "complaints": 2.0}.get(metric)
        if sd is None:
            sd = float(np.std(values)) if len(values) > 1 else 1.0
        if kr.kind == "agg":
            sd /= 2.0
        return sd

    def _confidence(self, kr: _KR, row: dict[str, Any], values: np.ndarray, q: _QuarterInfo,
                    rng: np.random.Generator) -> np.ndarray:
        """Confidence 0–10 drifting with progress against the time elapsed."""
        n = len(values)
        k = np.arange(n)
        elapsed = (k + 1) / q.n_mondays
        direction, target, baseline = row["direction"], row["target"], row["baseline"]
        if direction in ("increase", "decrease"):
            span = target - baseline
            progress = (values - baseline) / span if span else np.zeros(n)
            gap = progress - elapsed
        elif direction == "milestone":
            gap = values - elapsed * 0.8
        else:
            scale = max(abs(target) * 0.03, 1e-6)
            margin = (values - target) / scale if direction == "maintain_at_least" else (target - values) / scale
            gap = np.clip(margin, -2, 2) * 0.5
        base = rng.uniform(6.0, 8.0)
        wanted = np.clip(base + 4.0 * np.clip(gap, -1.0, 1.0) + rng.normal(0, 0.6, n), 1, 10)
        if direction == "milestone":
            wanted = np.where(values >= 1.0, 10.0, np.minimum(wanted, 9.0))
        # confidence drifts: up by at most 2 points a week, down by at most 1
        conf = np.empty(n)
        conf[0] = np.round(base)
        for i in range(1, n):  # at most 14 check-ins
            conf[i] = conf[i - 1] + np.clip(np.round(wanted[i]) - conf[i - 1], -1, 2)
        return np.clip(np.round(conf), 0, 10).astype("int64")

    def _plant_checkin_findings(self, parts: list[dict[str, Any]], final_qi: int) -> None:
        """A stale key result, a confidence drop of 4 points, milestones done and not done."""
        final = [p for p in parts if p["kr"].qi == final_qi]
        if not final:
            return
        # a milestone that is not done, one that is
        milestones = [p for p in final if p["kr"].kind == "ms"]
        if milestones:
            p = milestones[-1]
            p["values"] = np.minimum(p["values"], 0.5)
            p["conf"] = np.minimum(p["conf"], 7)
            if len(milestones) > 1 and milestones[0]["values"][-1] < 1.0 and len(milestones[0]["values"]) > 3:
                milestones[0]["values"][-2:] = 1.0
                milestones[0]["conf"][-2:] = 10
        # a confidence drop of 4 points between two check-ins
        def prefer(p: dict[str, Any]) -> tuple:
            tid = self.leaves[p["kr"].team].team_id if p["kr"].team >= 0 else ""
            return (not (self.default and tid == "support-tier2" and p["kr"].metric == "csat"),
                    p["kr"].kind != "m")
        metric_parts = sorted([p for p in final if len(p["values"]) >= 8], key=prefer)
        if metric_parts:
            p = metric_parts[0]
            k = min(6, len(p["conf"]) - 2)
            conf = p["conf"]
            conf[:k] = np.maximum(conf[:k], 7)
            conf[k:] = np.minimum(conf[k:], conf[k - 1] - 4)
            conf[k] = conf[k - 1] - 4
            p["drop_at"] = k
        # a stale key result: no check-ins in its last three weeks
        stale = [p for p in final if p["kr"].kind == "m" and len(p["values"]) >= 8 and "drop_at" not in p]
        if stale:
            prefer_team = "hr-partners" if self.default else None
            stale.sort(key=lambda p: self.leaves[p["kr"].team].team_id != prefer_team)
            stale[0]["stale"] = 3

    def _checkins_frame(self, parts: list[dict[str, Any]], rng: np.random.Generator) -> pd.DataFrame:
        dates = self.dates.to_numpy()
        kr_ids, ci_dates, values, confs, comments = [], [], [], [], []
        for p in parts:
            kr, row, idx, vals, conf = p["kr"], p["row"], p["idx"], p["values"], p["conf"]
            n = len(idx)
            keep = np.ones(n, dtype=bool)
            if n > 3:
                missed = rng.random(n) < 0.04
                missed[1:] &= ~missed[:-1]  # a missed week now and then, never two in a row
                missed[0] = missed[-1] = False
                keep &= ~missed
            if p.get("stale"):
                keep[n - p["stale"]:] = False
            if "drop_at" in p:
                keep[p["drop_at"] - 1: p["drop_at"] + 1] = True
            note = np.full(n, None, dtype=object)
            chance = 0.15 if self.default else 0.03
            for i in np.flatnonzero(rng.random(n) < chance):
                note[i] = self._comment(kr, row, vals, conf, i, rng)
            if "drop_at" in p:
                note[p["drop_at"]] = ("New release doubled the ticket volume; this is at risk now"
                                      if kr.metric == "csat" else "Key hire withdrew; this is at risk now")
            sel = np.flatnonzero(keep)
            kr_ids.append(np.full(len(sel), kr.kr_id, dtype=object))
            ci_dates.append(dates[idx[sel]])
            values.append(vals[sel])
            confs.append(conf[sel])
            comments.append(note[sel])
        if not kr_ids:
            return pd.DataFrame(columns=TABLES["checkins"].column_names)
        return pd.DataFrame({
            "kr_id": np.concatenate(kr_ids),
            "date": np.concatenate(ci_dates),
            "value": np.concatenate(values).astype("float64"),
            "confidence": np.concatenate(confs).astype("int64"),
            "comment": np.concatenate(comments),
        })

    @staticmethod
    def _comment(kr: _KR, row: dict[str, Any], vals: np.ndarray, conf: np.ndarray, i: int,
                 rng: np.random.Generator) -> str:
        if kr.kind == "ms":
            pool = ("Launched",) if vals[i] >= 1 else _COMMENTS["milestone"]
        elif conf[i] <= 4:
            pool = _COMMENTS["behind"]
        elif conf[i] >= 9:
            pool = _COMMENTS["ahead"]
        else:
            pool = _COMMENTS["on track"]
        return str(pool[int(rng.integers(len(pool)))])


def _agg_step(metric: str, value: float, style: dict[str, Any]) -> float:
    """Rounding step for department and company key results (sums get coarser steps)."""
    step = style["b_step"]
    if _METRICS[metric][4] == "sum":
        mag = abs(value)
        for s in (1, 5, 10, 50, 100, 500, 1000):
            if mag / s <= 200:
                return float(max(step, s))
        return 1000.0
    return float(step)
