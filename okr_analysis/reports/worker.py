"""The report worker: a warm Jupyter kernel, one nbconvert exporter and one headless Chromium per
process, running one team's notebook after another.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import subprocess
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import util
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import KernelManager

from ..config import KERNEL_ENV
from .processes import _exit_with_parent
from .render import HtmlRenderer, PdfPrinter, atomic_write, temp_path_for
from .results import TeamError
from .tasks import ReportTask, TaskResult

_KERNEL_MAX_RUNS = 50  # restart a worker's kernel after this many notebooks (bounds memory growth)




# ==================================================================================
# The worker: a warm kernel, one HTMLExporter, one Chromium
# ==================================================================================
_ENGINE_NAME = "okr_analysis_warm"


_RESET_CODE = """\
get_ipython().reset(new_session=True)
import os as _okr_os, sys as _okr_sys
_okr_os.chdir({cwd!r})
if "matplotlib.pyplot" in _okr_sys.modules:
    _okr_sys.modules["matplotlib.pyplot"].close("all")
del _okr_os, _okr_sys
"""


def _register_engine() -> None:
    """A papermill engine that runs notebooks on a caller's running kernel (``km=``).

    Same as papermill's nbclient engine, plus: before the notebook it resets the kernel
    (namespace, execution count, working directory, open figures) so each notebook starts
    clean; and it reuses the worker's kernel client (``kc=``) instead of connecting a new one
    per notebook (0.07 s instead of 0.28 s of overhead a notebook; papermill given only ``km``
    also leaves each new client's channels open, leaking ~10 file descriptors a notebook).
    """
    # lazy import: papermill adds ~0.35 s to every command that renders no report (REPORTING_NOTES.md)
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    class _WarmClient(PapermillNotebookClient):
        def __init__(self, nb_man, reset_code: str, kc=None, **kw):
            super().__init__(nb_man, **kw)
            self._reset_code = reset_code
            self.kc = kc  # setup_kernel() connects a new client only when this is None

        def papermill_execute_cells(self):
            msg_id = self.kc.execute(self._reset_code, silent=True, store_history=False, allow_stdin=False)
            reply = self.wait_for_reply(msg_id)
            if reply is None or reply["content"].get("status") != "ok":
                content = reply["content"] if reply else {}
                raise RuntimeError(f"could not reset the kernel: {content.get('ename')}: {content.get('evalue')}")
            super().papermill_execute_cells()

    class _WarmEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            kwargs = remove_args(["input_path"], **kwargs)
            reset_code = kwargs.pop("reset_code")
            kc = kwargs.pop("kc", None)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client = _WarmClient(nb_man, reset_code, kc, **final_kwargs)
            try:
                return client.execute()
            finally:
                if kc is None and client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(_ENGINE_NAME, _WarmEngine)


@dataclass(frozen=True)
class _WorkerConfig:
    notebook: str
    template_dir: str
    kernel_name: str
    cwd: str
    warm_imports: tuple[str, ...]
    chromium: str | None
    cell_timeout: float | None
    log_dir: str


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _Worker:
    """Runs team tasks in one process; see :func:`_worker_init`."""

    def __init__(self, cfg: _WorkerConfig):
        # Ordered for overlap: the kernel boots while this process imports nbconvert, then imports the
        # notebook's modules while the browser starts on its own thread.
        warnings.filterwarnings("ignore", message="Kernel is running over TCP")
        self.cfg = cfg
        self.km = None
        self.kc = None
        self.runs = 0
        self._dirty = False
        self._log = None
        self._launch_kernel()
        # lazy import: papermill adds ~0.35 s to every command that renders no report (REPORTING_NOTES.md)
        import papermill  # noqa: F401


        _register_engine()
        # Playwright's sync API must stay on one thread: the browser lives on its own thread, so it
        # starts (~2 s) while the kernel warms up, and every print is handed to that thread.
        self.printer = None
        self._pdf_thread = None
        self._browser_start = None
        if cfg.chromium:
            self.printer = PdfPrinter(cfg.chromium)
            self._pdf_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="okr-pdf")
            self._browser_start = self._pdf_thread.submit(self.printer.start)
        self.renderer = HtmlRenderer(cfg.template_dir)  # built once per process
        warm_id, warm_kc = self._warm_kernel()
        with contextlib.suppress(Exception):  # compile the templates while the kernel imports
            self.renderer.render(nbformat.v4.new_notebook())
        self._finish_warmup(warm_id, warm_kc)

    @property
    def pdf_error(self) -> str:
        """Why PDFs cannot be printed in this worker ('' when they can)."""
        if self.printer is None:
            return "no Chromium"
        try:
            self._browser_start.result()
        except Exception as exc:  # a broken browser install: HTML still works
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"Chromium at {self.cfg.chromium} could not start ({type(exc).__name__}: {first})."
        return ""

    def print_pdf(self, html_path: Path, pdf_path: Path, footer: str) -> None:
        self._pdf_thread.submit(self.printer.print_pdf, html_path, pdf_path, footer=footer).result()

    # -- kernel -----------------------------------------------------------------
    def _launch_kernel(self) -> None:
        """Start the kernel process (returns at once; the kernel boots in the background)."""


        if self._log is None:
            Path(self.cfg.log_dir).mkdir(parents=True, exist_ok=True)
            self._log = open(Path(self.cfg.log_dir) / f"kernel-{os.getpid()}.log", "ab")  # noqa: SIM115
        self.km = KernelManager(kernel_name=self.cfg.kernel_name)
        env = {**KERNEL_ENV, **os.environ}  # the user's own setting wins
        self.km.start_kernel(cwd=self.cfg.cwd, stdout=subprocess.DEVNULL, stderr=self._log, env=env)
        self.runs = 0
        self._dirty = False

    def _warm_kernel(self):
        """Connect the worker's client, then send the kernel the notebook's imports (without waiting)."""
        kc = self.kc = self.km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        kc.allow_stdin = False
        code = "\n".join(
            ["import importlib as _okr_il"]
            + [f"try:\n    _okr_il.import_module({m!r})\nexcept Exception:\n    pass" for m in self.cfg.warm_imports]
            + ["del _okr_il"]
        )
        return kc.execute(code, silent=True, store_history=False), kc

    @staticmethod
    def _finish_warmup(msg_id, kc, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                msg = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
                if msg["parent_header"].get("msg_id") == msg_id:
                    return
        except Exception:  # a slow warm-up only costs time in the first notebook
            pass

    def _restart_kernel(self) -> None:
        with contextlib.suppress(Exception):
            self.kc.stop_channels()
        with contextlib.suppress(Exception):
            self.km.shutdown_kernel(now=True)
        self._launch_kernel()
        self._finish_warmup(*self._warm_kernel())

    def close(self) -> None:
        if self._pdf_thread is not None:
            with contextlib.suppress(Exception):
                self._pdf_thread.submit(self.printer.close).result(timeout=30)
            self._pdf_thread.shutdown(wait=False)
        if self.kc is not None:
            with contextlib.suppress(Exception):
                self.kc.stop_channels()
        if self.km is not None:
            with contextlib.suppress(Exception):
                self.km.shutdown_kernel(now=True)
        if self._log is not None:
            self._log.close()

    # -- one team ---------------------------------------------------------------
    def run(self, task: ReportTask) -> TaskResult:
        # lazy import: papermill adds ~0.35 s to every command that renders no report (REPORTING_NOTES.md)
        import papermill as pm
        from papermill.exceptions import PapermillExecutionError

        t0 = time.perf_counter()
        folder = Path(task.folder)
        stem = task.file
        final = {ext: folder / f"{stem}.{ext}" for ext in ("ipynb", "html", "pdf")}
        failed_nb, failed_html = folder / f"{stem}.failed.ipynb", folder / f"{stem}.failed.html"
        out = TaskResult(team_id=task.team_id)
        if self._dirty or self.km is None or self.runs >= _KERNEL_MAX_RUNS or not self.km.is_alive():
            self._restart_kernel()
        self.runs += 1
        tmp_nb = temp_path_for(final["ipynb"])
        tmp_html = temp_path_for(final["html"])
        nb = None
        try:
            try:
                nb = pm.execute_notebook(
                    task.notebook or self.cfg.notebook, str(tmp_nb), parameters=dict(task.parameters),
                    engine_name=_ENGINE_NAME, km=self.km, kc=self.kc, kernel_name=self.cfg.kernel_name,
                    reset_code=_RESET_CODE.format(cwd=self.cfg.cwd), progress_bar=False,
                    request_save_on_cell_execute=False, execution_timeout=self.cfg.cell_timeout,
                )
            except PapermillExecutionError as exc:
                out.error = TeamError("execute", str(exc.ename), str(exc.evalue), exc.cell_index,
                                         exc.exec_count, _ANSI.sub("", "\n".join(exc.traceback or [])))
            except Exception as exc:  # dead kernel, cell timeout, papermill trouble
                out.error = TeamError("execute", type(exc).__name__, str(exc).strip()[:2000])
            if out.error is not None:
                self._dirty = True  # a fresh kernel for the next team, whatever state the failure left behind
                if nb is None and tmp_nb.exists():
                    nb = nbformat.read(tmp_nb, as_version=4)
                if tmp_nb.exists():
                    os.replace(tmp_nb, failed_nb)
                    out.failed_notebook = failed_nb.name
                if nb is not None:
                    with contextlib.suppress(Exception):
                        body, res = self.renderer.render(nb, show_errors=True,
                                                         resources={"okr_summary": dict(task.identity)})
                        atomic_write(failed_html, body)
                        out.failed_html = failed_html.name
                return out
            try:
                body, res = self.renderer.render(nb, resources={"okr_summary": dict(task.identity)})
                out.summary = res.get("okr_summary", {})
                tmp_html.write_text(body, encoding="utf-8")
            except Exception as exc:
                out.error = TeamError("render", type(exc).__name__, str(exc)[:2000])
                os.replace(tmp_nb, failed_nb)
                out.failed_notebook = failed_nb.name
                return out
            if task.pdf:
                if self.pdf_error:
                    out.pdf_error = self.pdf_error
                else:
                    try:
                        self.print_pdf(tmp_html, final["pdf"], footer=task.footer)
                    except Exception as exc:
                        out.error = TeamError("pdf", type(exc).__name__, str(exc).splitlines()[0][:2000]
                                                 if str(exc) else "")
            os.replace(tmp_html, final["html"])
            os.replace(tmp_nb, final["ipynb"])
            if out.error is None:
                for stale in (failed_nb, failed_html):
                    with contextlib.suppress(FileNotFoundError):
                        stale.unlink()
            return out
        finally:
            for tmp in (tmp_nb, tmp_html):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            out.duration_s = round(time.perf_counter() - t0, 3)


_WORKER: _Worker | None = None


def _worker_init(cfg: _WorkerConfig) -> None:
    """ProcessPoolExecutor initializer: build this process's warm kernel, exporter and browser."""
    global _WORKER

    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="okr-parent-watch").start()
    _WORKER = _Worker(cfg)
    util.Finalize(None, _WORKER.close, exitpriority=10)


def _worker_ready() -> dict[str, Any]:
    return {"pid": os.getpid()}


def _worker_run(task: ReportTask) -> TaskResult:
    try:
        return _WORKER.run(task)
    except Exception as exc:  # never lose a team's outcome to a worker bug
        return TaskResult.failed(task.team_id, "worker", exc)


# ==================================================================================
# The runner
# ==================================================================================
def _notebook_imports(nb_path: Path) -> tuple[str, ...]:
    """Top-level modules a notebook imports (warmed up in each worker's kernel)."""


    mods = ["pandas", "okr_analysis", "okr_analysis.reports", "IPython.display"]
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                mods.append(node.module)
                mods += [f"{node.module}.{a.name}" for a in node.names]
    if any(m.split(".")[0] in ("matplotlib", "seaborn") for m in mods) or "okr_analysis.plots" in mods:
        mods.append("matplotlib.pyplot")
    return tuple(dict.fromkeys(mods))
