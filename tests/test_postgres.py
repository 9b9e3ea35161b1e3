"""PostgreSQL through SQLAlchemy as a source: a real server, the sample organisation, the same Dataset as CSV.

The module's fixture starts a throw-away PostgreSQL server: it finds the binaries under
``/usr/lib/postgresql/*/bin`` (installing Debian's ``postgresql`` package with apt-get when they are
missing), runs ``initdb`` into a temporary directory (as the ``postgres`` system user when the tests run
as root: the server refuses to run as root), starts it with ``pg_ctl`` on 127.0.0.1 at a free port with
its unix socket in that directory, creates a database, and stops the server and removes everything in
teardown. It skips only when the binaries are absent and apt-get is not available to install them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest

from okr_analysis import ValidationError, load
from okr_analysis.io import TABLES

pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg is not installed (pip install 'psycopg[binary]')")

USER, PASSWORD, DATABASE = "okr", "s3cret-pw", "okr_test"


def _bindir() -> Path | None:
    def version(p: str) -> tuple:
        return tuple(int(x) if x.isdigit() else 0 for x in Path(p).parent.name.split("."))

    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    return None


def _install_postgresql() -> None:
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None:
        pytest.fail("PostgreSQL is not installed and this user cannot run apt-get: run "
                    "`sudo bash scripts/system-deps.sh` (installs the postgresql package), then the tests again")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """The system user that runs the server when the tests run as root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "okr-postgres"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "okr-postgres"],
                   check=True)
    return "okr-postgres"


@pytest.fixture(scope="module")
def postgres_url():
    bindir = _bindir()
    if bindir is None:
        if shutil.which("apt-get") is None:
            pytest.skip("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin and no apt-get to install "
                        "them: install PostgreSQL (Debian package postgresql) to run these tests")
        _install_postgresql()
        bindir = _bindir()
        assert bindir is not None, "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb"
    user = _server_user()
    run_as = ["runuser", "-u", user, "--"] if user else []
    base = Path(tempfile.mkdtemp(prefix="okr-pg-"))
    data, pwfile, log = base / "data", base / "pw", base / "server.log"
    pwfile.write_text(PASSWORD + "\n")
    if user:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    port = _free_port()

    def run(*cmd, **kw):
        return subprocess.run([*run_as, *map(str, cmd)], check=True, capture_output=True, text=True, **kw)

    try:
        run(bindir / "initdb", "-D", data, "-U", USER, "--pwfile", pwfile, "--auth-local=trust",
            "--auth-host=scram-sha-256", "--no-locale", "-E", "UTF8", "--no-sync")
        run(bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60",
            "-o", f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off", "start")
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr + (log.read_text() if log.exists() else "")
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL from {bindir}: {detail}")
    try:
        run(bindir / "createdb", "-h", base, "-p", port, "-U", USER, DATABASE)
        yield f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _copy_rows(table, conn, keys, data_iter):
    """pandas ``to_sql`` method: COPY ... FROM STDIN, the bulk load PostgreSQL users use. It stores the rows
    in the frame's order; plain INSERTs may place rows in pages with free space left earlier, and a table
    has no order of its own (the loader returns rows in the order the server sends them)."""
    columns = ", ".join(f'"{k}"' for k in keys)
    with conn.connection.cursor() as cur, cur.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        for row in data_iter:
            copy.write_row(row)


@pytest.fixture(scope="module")
def sample_in_postgres(postgres_url, sample_tables):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    for name, frame in sample_tables.items():
        frame.to_sql(name, engine, index=False, if_exists="replace", method=_copy_rows)
    engine.dispose()
    return postgres_url


def _load(source, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(source, **kw)


def test_postgres_gives_the_same_dataset_as_csv(sample_in_postgres, sample_dir):
    from_pg, from_csv = _load(sample_in_postgres), _load(sample_dir)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(from_pg, name), getattr(from_csv, name), check_dtype=True, obj=name)
    assert PASSWORD not in from_pg.source and ":***@127.0.0.1" in from_pg.source


@pytest.mark.parametrize("filters", [
    {"teams": ["support"]},
    {"teams": ["hr", "eng-data"], "start": "2026-01-01", "end": "2026-06-30"},
    {"quarter": "2026Q2"},
    {"teams": "sales", "quarter": "2026Q3", "start": "2026-07-01"},
], ids=lambda f: ",".join(f))
def test_postgres_filters_give_the_same_subset_as_csv(filters, sample_in_postgres, sample_dir):
    from_pg, from_csv = _load(sample_in_postgres, **filters), _load(sample_dir, **filters)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(from_pg, name), getattr(from_csv, name), obj=name)


def test_postgres_filters_are_pushed_down(sample_in_postgres):
    import sqlalchemy as sa

    seen: list[tuple[str, object, int]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters, cursor.rowcount))

    sa.event.listen(sa.engine.Engine, "after_cursor_execute", record)
    try:
        full = _load(sample_in_postgres)
        n_full = len(seen)
        ds = _load(sample_in_postgres, teams=["support-tier2"], start="2026-04-01", quarter="2026Q2")
    finally:
        sa.event.remove(sa.engine.Engine, "after_cursor_execute", record)
    kpis = [s for s in seen[n_full:] if s[0].lstrip().startswith("SELECT") and "FROM kpis" in s[0]]
    assert len(kpis) == 1
    sql, params, fetched = kpis[0]
    assert "WHERE kpis.team_id IN" in sql and "kpis.date >=" in sql
    assert "support-tier2" in str(params) and "support-tier2" not in sql  # bound parameters
    assert fetched < len(full.kpis) / 10  # the server sent only the subset
    assert 0 < len(ds.kpis) <= fetched
    ci = [s for s in seen[n_full:] if "FROM checkins" in s[0]][0]
    assert "checkins.kr_id IN" in ci[0]


def test_wrong_password_is_a_clean_message_without_the_password(postgres_url):
    bad = postgres_url.replace(PASSWORD, "not-the-password")
    with pytest.raises(ValidationError) as err:
        load(bad)
    text = str(err.value)
    assert "cannot read the database (OperationalError" in text and "check the URL, the server and the credentials" in text
    assert "not-the-password" not in text and "okr:***@127.0.0.1" in text


def test_unreachable_server_is_a_clean_message():
    url = f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{_free_port()}/{DATABASE}"
    with pytest.raises(ValidationError, match=r"cannot read the database \(OperationalError") as err:
        load(url)
    assert PASSWORD not in str(err.value)
    assert len(err.value.problems) == 1 and "Traceback" not in str(err.value)


def test_missing_tables_are_listed(postgres_url):
    import sqlalchemy as sa

    url = postgres_url.rsplit("/", 1)[0] + "/postgres"  # the server's default database: no tables of ours
    with pytest.raises(ValidationError, match=r"teams\(.*\): table is missing"):
        load(url)
    sa.create_engine(url).dispose()
