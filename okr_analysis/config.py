"""Paths and environment settings in one place.

Where the report notebooks and the nbconvert template are, whether the package runs from a clone of
the repository or from an installed wheel, and the environment variables the package reads.

Environment variables
---------------------
``OKR_ANALYSIS_CACHE``
    Folder for a report batch's private cache (the validated dataset and the shared analyses); default
    ``<system temp>/okr-analysis-<uid>``. On a Dask cluster, a folder on a filesystem the workers share.
``OKR_ANALYSIS_CHROMIUM``
    The Chrome/Chromium executable that prints PDFs; default ``chromium`` (or another browser) on PATH.
``ARROW_DEFAULT_MEMORY_POOL``
    Arrow's allocator; a report batch and its kernels use ``system`` unless this is set.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = [
    "ARROW_POOL_ENV",
    "CACHE_ENV",
    "CHROMIUM_ENV",
    "KERNEL_ENV",
    "NOTEBOOK",
    "NOTEBOOK_DIR",
    "ORG_NOTEBOOK",
    "PACKAGE_DIR",
    "REPO_DIR",
    "TEMPLATE_DIR",
    "TEMPLATE_NAME",
    "cache_base",
    "arrow_pool_set_by_user",
    "chromium_override",
]

#: The ``okr_analysis`` package folder.
PACKAGE_DIR = Path(__file__).resolve().parent


def _layout() -> tuple[Path, Path, Path]:
    """(base folder, notebooks folder, templates folder).

    From a clone of the repository, ``notebooks/`` and ``templates/`` sit beside the package, where users
    open them. An installed wheel carries them inside the package, as ``_notebooks/`` and ``_templates/``
    (``pyproject.toml`` maps them there).
    """
    repo = PACKAGE_DIR.parent
    if (repo / "notebooks").is_dir() and (repo / "templates").is_dir():
        return repo, repo / "notebooks", repo / "templates"
    return PACKAGE_DIR, PACKAGE_DIR / "_notebooks", PACKAGE_DIR / "_templates"


#: The repository (or, installed from a wheel, the package folder): relative sources are looked up there.
#: NOTEBOOK_DIR and the template folder are where the report notebooks and the nbconvert template are.
REPO_DIR, NOTEBOOK_DIR, _TEMPLATES = _layout()
#: The team report notebook the runner renders by default.
NOTEBOOK = NOTEBOOK_DIR / "team_quarterly_review.ipynb"
#: The organisation overview, rendered for the root team (the company) when ``org_overview`` is on.
ORG_NOTEBOOK = NOTEBOOK_DIR / "org_quarterly_overview.ipynb"
#: The nbconvert template the reports are rendered with.
TEMPLATE_NAME = "okr_report"
TEMPLATE_DIR = _TEMPLATES / TEMPLATE_NAME

CACHE_ENV = "OKR_ANALYSIS_CACHE"
CHROMIUM_ENV = "OKR_ANALYSIS_CHROMIUM"
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
#: Environment of the batch's kernels (the user's own setting wins). Arrow's default pool (mimalloc) keeps the
#: memory of every Parquet read; with the system allocator a kernel at 2,000 teams ends a team report ~70 MB
#: smaller and within 5 % of its size at 100 teams (measured on the sample organisation).
KERNEL_ENV = {ARROW_POOL_ENV: "system"}


def cache_base() -> Path:
    """The folder under which report batches keep their private caches (``$OKR_ANALYSIS_CACHE``)."""
    return Path(os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(), f"okr-analysis-{os.getuid()}"))


def chromium_override() -> str | None:
    """The browser the user named with ``$OKR_ANALYSIS_CHROMIUM`` (None when unset)."""
    return os.environ.get(CHROMIUM_ENV) or None


def arrow_pool_set_by_user() -> bool:
    """Whether the user chose Arrow's allocator (``$ARROW_DEFAULT_MEMORY_POOL``)."""
    return bool(os.environ.get(ARROW_POOL_ENV))
