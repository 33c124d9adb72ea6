"""`orderdesk backup DEST` and `orderdesk restore SRC`: every database of the suite, at one point in time.

    orderdesk backup DEST                    while the suite runs; DEST is a new (or empty) folder
    orderdesk restore SRC [--force] [--no-stream-reset]
                                             into a STOPPED suite (refused while a process answers)
    orderdesk restore --recovered-to TIME    after CloudNativePG recovered the cluster to TIME (Kubernetes)

One point for the whole suite. Each service has its own database and they talk through events, so copies
taken one after the other would not fit together (inventory could hold a reservation for an order the
orders copy never saw). The backup therefore freezes writes on every database at once for a moment (SQLite:
`BEGIN IMMEDIATE` on each file; PostgreSQL: `LOCK TABLE … IN EXCLUSIVE MODE`, which readers pass), opens a
read snapshot of each while they are all frozen (SQLite: a read transaction; PostgreSQL: an exported
REPEATABLE READ snapshot), and lets writers go again: the freeze lasts milliseconds, the copy then reads the
snapshots (SQLite's online backup API; `pg_dump --format=custom --snapshot=…`) while the suite keeps working.
Every event a database had consumed at that point was committed by its publisher before, so it is in the
publisher's copy too.

JetStream is not backed up: the databases are the truth. An event committed in a publisher's outbox but not
yet consumed at the point is re-published after a restore: restore marks the outbox rows published within
the stream's duplicate window before the point as unpublished again, and the consumers' inboxes skip the
ones they had already handled. The stream itself is deleted on restore (its consumers' positions are past
the point, and JetStream would drop the re-published events as duplicates of ones it kept); every process
re-creates the stream and its consumers at start.

The manifest (manifest.json, written last: a folder without it is no backup) records the orderdesk
version, the point, each database's alembic revision, size and sha256. Restore verifies every checksum and
refuses a backup whose revisions are not this code's heads (made by another version: restore it with that
version, then upgrade) before it changes anything.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from sqlalchemy.engine import make_url

from cli.main import CliError
from orderdesk.config import SERVICES, NatsCredentials, database_url, env, service_addr
from orderdesk.logs import redact

# The services' databases and the two edges' own: the gateway's (partners, keys, webhooks) and the console's
# (desk accounts; sessions come back too, so a restore signs nobody out who was signed in at the point).
EDGES = ("gateway", "console")
COMPONENTS = (*SERVICES, *EDGES)
# A suite may run without the console (a partner API only): its database is backed up where it is in use.
OPTIONAL = ("console",)
ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "manifest.json"
FORMAT = 1
LOCK_TIMEOUT_SECONDS = 10
# Outbox rows published this long before the point are published again after a restore: events the
# consumers may not have taken yet. The inboxes remember handled events at least this long.
REPUBLISH_SECONDS = float(env("ORDERDESK_DUPLICATE_WINDOW_SECONDS", "900"))


def migrations_dir(component: str) -> Path:
    return ROOT / (component if component in EDGES else f"services/{component}") / "migrations"


def head_revision(component: str) -> str:
    from alembic.script import ScriptDirectory

    from orderdesk.migrations import alembic_config

    heads = ScriptDirectory.from_config(alembic_config(migrations_dir(component), "sqlite://")).get_heads()
    return heads[0] if len(heads) == 1 else ",".join(sorted(heads))


def orderdesk_version() -> str:
    try:
        return metadata.version("orderdesk")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "unknown"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")


@dataclass
class Target:
    """One component's database, as the services' configuration names it."""

    component: str
    url: str

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.url).get_backend_name() == "sqlite"

    @property
    def path(self) -> Path:
        return Path(make_url(self.url).database or "")

    @property
    def libpq_url(self) -> str:
        """The URL for asyncpg, pg_dump and pg_restore (no SQLAlchemy driver name)."""
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    @property
    def file_name(self) -> str:
        return f"{self.component}.db" if self.is_sqlite else f"{self.component}.dump"


def targets(restoring: Iterable[str] = ()) -> list[Target]:
    """Every component's database; an optional one only where it is in use (PostgreSQL configured, or its
    SQLite file there) or when `restoring` a backup that holds it."""
    found = []
    for component in COMPONENTS:
        t = Target(component, database_url(component))
        if component in OPTIONAL and component not in restoring and t.is_sqlite and not t.path.is_file():
            continue
        found.append(t)
    return found


# --- backup ----------------------------------------------------------------------------------------
class Frozen:
    """Read snapshots of every database, opened while writes to all of them were held for a moment."""

    def __init__(self) -> None:
        self.sqlite: dict[str, sqlite3.Connection] = {}
        self.pg: dict[str, object] = {}  # component -> asyncpg connection holding the snapshot
        self.snapshots: dict[str, str] = {}  # component -> exported snapshot id
        self.revisions: dict[str, str] = {}
        self.point = 0.0
        self.frozen_seconds = 0.0

    async def open(self, all_targets: list[Target]) -> None:
        import asyncpg

        writers_pg, writers_sqlite = [], []
        frozen_at = time.monotonic()
        try:
            # PostgreSQL first: its locks may wait for running transactions; SQLite's are taken last so
            # the services on SQLite wait the shortest time.
            for t in all_targets:
                if t.is_sqlite:
                    continue
                conn = await asyncpg.connect(t.libpq_url)
                writers_pg.append(conn)
                tables = [
                    r[0]
                    for r in await conn.fetch(
                        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                    )
                ]
                if not tables:
                    raise CliError(
                        f"{t.component}: the database {make_url(t.url).database} has no tables; "
                        "has the service ever started?"
                    )
                await lock_all(conn, t, tables)
            for t in all_targets:
                if not t.is_sqlite:
                    continue
                if not t.path.is_file():
                    raise CliError(f"{t.component}: no database at {t.path}; is ORDERDESK_DATA_DIR right?")
                conn = sqlite3.connect(t.path, isolation_level=None, timeout=LOCK_TIMEOUT_SECONDS)
                writers_sqlite.append(conn)
                conn.execute("BEGIN IMMEDIATE")
            # Every database is frozen: this is the point. A snapshot of each, then writers go again.
            self.point = time.time()
            for t in all_targets:
                if t.is_sqlite:
                    reader = sqlite3.connect(
                        t.path, isolation_level=None, check_same_thread=False
                    )  # copied in a thread
                    self.sqlite[t.component] = reader
                    reader.execute("BEGIN")
                    self.revisions[t.component] = _revision(reader.execute, t)
                else:
                    reader = await asyncpg.connect(t.libpq_url)
                    self.pg[t.component] = reader
                    await reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    self.snapshots[t.component] = await reader.fetchval("SELECT pg_export_snapshot()")
                    rows = await reader.fetch("SELECT version_num FROM alembic_version")
                    self.revisions[t.component] = ",".join(sorted(r[0] for r in rows))
        finally:
            for conn in writers_sqlite:
                conn.close()  # rolls the empty write transaction back
            for conn in writers_pg:
                await conn.close()
            if writers_pg or writers_sqlite:
                self.frozen_seconds = time.monotonic() - frozen_at

    async def close(self) -> None:
        for conn in self.sqlite.values():
            conn.close()
        for conn in self.pg.values():
            await conn.close()


async def lock_all(conn, t: Target, tables: list[str]) -> None:
    """Every table of one database at once, or none: NOWAIT, retried. Waiting for one table while holding
    another would deadlock with a service transaction that wrote them in the other order (PostgreSQL then
    aborts one of the two); a writer waits at most for our few milliseconds."""
    import asyncpg

    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    while True:
        await conn.execute("BEGIN")
        try:
            await conn.execute(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE NOWAIT")
            return
        except asyncpg.LockNotAvailableError:
            await conn.execute("ROLLBACK")
            if time.monotonic() > deadline:
                raise CliError(
                    f"{t.component}: could not pause writes for {LOCK_TIMEOUT_SECONDS}s "
                    "(a long transaction holds its tables); try again"
                ) from None
            await asyncio.sleep(0.005)


def _revision(execute, t: Target) -> str:
    try:
        rows = execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.OperationalError:
        raise CliError(
            f"{t.component}: {t.path} has no alembic_version table; not an orderdesk database"
        ) from None
    return ",".join(sorted(r[0] for r in rows))


def copy_sqlite(source: sqlite3.Connection, dest: Path) -> None:
    """SQLite's online backup API, reading the source through its open snapshot."""
    out = sqlite3.connect(dest)
    try:
        source.backup(out, pages=4096)
    finally:
        out.close()


def pg_dump(t: Target, snapshot: str, dest: Path) -> None:
    binary = shutil.which("pg_dump")
    if binary is None:
        raise CliError("pg_dump is not installed (PostgreSQL client tools of the server's major version)")
    done = subprocess.run(
        [
            binary,
            "--format=custom",
            f"--snapshot={snapshot}",
            "--no-owner",
            f"--file={dest}",
            f"--dbname={t.libpq_url}",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise CliError(f"pg_dump of {t.component} failed", done.stderr.strip().splitlines()[-5:])


def prepare(dest: Path) -> None:
    if dest.exists() and any(dest.iterdir()):
        raise CliError(f"{dest} is not empty; a backup goes into a new folder")
    dest.mkdir(parents=True, exist_ok=True)


def describe(t: Target, path: Path, revision: str, began: float) -> dict:
    return {
        "file": t.file_name,
        "engine": "sqlite" if t.is_sqlite else "postgresql",
        "database": str(t.path) if t.is_sqlite else make_url(t.url).database,
        "revision": revision,
        "bytes": path.stat().st_size,
        "sha256": sha256(path),
        "seconds": round(time.time() - began, 3),
    }


def write_manifest(dest: Path, manifest: dict) -> None:
    temporary = dest / (MANIFEST + ".partial")
    temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary, dest / MANIFEST)


async def take_backup(dest: Path, *, log=print) -> dict:
    """Backs the whole suite up into `dest` (a new or empty folder); returns the manifest."""
    prepare(dest)
    all_targets = targets()
    started = time.time()
    frozen = Frozen()
    databases = {}
    try:
        await frozen.open(all_targets)
        for t in all_targets:
            began = time.time()
            path = dest / t.file_name
            if t.is_sqlite:
                await asyncio.to_thread(copy_sqlite, frozen.sqlite[t.component], path)
            else:
                await asyncio.to_thread(pg_dump, t, frozen.snapshots[t.component], path)
            databases[t.component] = await asyncio.to_thread(
                describe, t, path, frozen.revisions[t.component], began
            )
            log(
                f"{t.component:<10} {databases[t.component]['bytes']:>12,} bytes  "
                f"revision {frozen.revisions[t.component]}"
            )
    finally:
        await frozen.close()
    manifest = {
        "format": FORMAT,
        "orderdesk_version": orderdesk_version(),
        "point": utc(frozen.point),
        "point_epoch": frozen.point,
        "writes_paused_seconds": round(frozen.frozen_seconds, 4),
        "started": utc(started),
        "finished": utc(time.time()),
        "bytes": sum(d["bytes"] for d in databases.values()),
        "databases": databases,
        "jetstream": "not backed up: the databases are the truth (outbox rows near the point are re-published "
        "on restore, inboxes skip repeats, the stream is re-created at start)",
    }
    write_manifest(dest, manifest)
    return manifest


def cmd_backup(args: argparse.Namespace) -> int:
    manifest = asyncio.run(take_backup(Path(args.dest)))
    print(
        f"backup of {len(manifest['databases'])} databases, {manifest['bytes']:,} bytes, at {manifest['point']} "
        f"(writes paused {manifest['writes_paused_seconds'] * 1000:.0f} ms) in {args.dest}"
    )
    return 0


# --- restore ---------------------------------------------------------------------------------------
def read_manifest(src: Path) -> dict:
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except FileNotFoundError:
        raise CliError(f"{src / MANIFEST} not found: not a backup, or an unfinished one") from None
    except ValueError as exc:
        raise CliError(f"{src / MANIFEST} is not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise CliError(f"backup format {manifest.get('format')!r} is not one this orderdesk reads ({FORMAT})")
    return manifest


def verify(src: Path, manifest: dict) -> None:
    """Everything a restore needs, checked before anything changes."""
    problems = []
    databases = manifest.get("databases", {})
    missing = [c for c in COMPONENTS if c not in databases and c not in OPTIONAL]
    if missing:
        problems.append(f"no database in the backup for {', '.join(missing)}")
    for component, entry in databases.items():
        if component not in COMPONENTS:
            problems.append(f"{component}: not a component of this orderdesk")
            continue
        path = src / entry["file"]
        if not path.is_file():
            problems.append(f"{component}: {entry['file']} is missing")
        elif path.stat().st_size != entry["bytes"] or sha256(path) != entry["sha256"]:
            problems.append(f"{component}: {entry['file']} does not match its checksum (damaged or changed)")
        head = head_revision(component)
        if entry["revision"] != head:
            problems.append(
                f"{component}: schema revision {entry['revision']!r}, this orderdesk's is {head!r} "
                f"(the backup was made by orderdesk {manifest.get('orderdesk_version')}: restore it "
                "with that version, then start this one to upgrade)"
            )
    if problems:
        raise CliError("refusing to restore: nothing was changed", problems)


def _listening(address: str) -> bool:
    """Whether something accepts connections at host:port."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except (OSError, ValueError):
        return False


def answering() -> list[str]:
    """The suite's processes that answer on their configured addresses (a restore needs them stopped)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from orderdesk import tls

    settings = tls.TlsSettings.from_env()
    found = []
    for service in SERVICES:
        address = service_addr(service)
        with tls.channel(address, settings, peer=service) as channel:
            try:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                found.append(f"{service} at {address}")
            except grpc.RpcError as exc:
                if (
                    exc.code() != grpc.StatusCode.UNAVAILABLE
                    and exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED
                ) or _listening(address):  # e.g. a handshake refused (mTLS): still running
                    found.append(f"{service} at {address}")
    edges = {
        "gateway": env("ORDERDESK_GATEWAY_URL", "http://127.0.0.1:8080"),
        "console": "http://" + env("ORDERDESK_CONSOLE_ADDR", "127.0.0.1:8090"),
    }
    for edge, url in edges.items():
        try:
            with urllib.request.urlopen(f"{url}/livez", timeout=1):
                found.append(f"{edge} at {url}")
        except urllib.error.HTTPError:  # something answers there, even if not ready
            found.append(f"{edge} at {url}")
        except Exception:  # nothing answers there: stopped
            pass
    return found


def restore_sqlite(src: Path, entry: dict, t: Target) -> None:
    t.path.parent.mkdir(parents=True, exist_ok=True)
    staged = t.path.with_name(t.path.name + ".restoring")
    staged.unlink(missing_ok=True)
    shutil.copyfile(src / entry["file"], staged)
    for stale in (t.path.with_name(t.path.name + "-wal"), t.path.with_name(t.path.name + "-shm")):
        stale.unlink(missing_ok=True)  # the old file's journal must not be replayed into the restored one
    os.replace(staged, t.path)


async def restore_postgres(src: Path, entry: dict, t: Target) -> None:
    import asyncpg

    binary = shutil.which("pg_restore")
    if binary is None:
        raise CliError("pg_restore is not installed (PostgreSQL client tools of the server's major version)")
    name = make_url(t.url).database
    admin = make_url(t.libpq_url).set(database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:  # a destroyed database is made again (needs CREATEDB); an existing one keeps its owner and grants
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    done = await asyncio.to_thread(
        subprocess.run,
        [
            binary,
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            *(("--clean", "--if-exists") if exists else ()),
            f"--dbname={t.libpq_url}",
            str(src / entry["file"]),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise CliError(f"pg_restore of {t.component} failed", done.stderr.strip().splitlines()[-5:])
    # pg_restore brings the rows but not the planner's statistics (PostgreSQL's own advice: analyze after a
    # restore). Without them the planner takes each key of a lookup by a list of keys to match 0.5% of the
    # table and may scan it whole, until autovacuum's first visit: just when the suite starts again and
    # catches up.
    conn = await asyncpg.connect(t.libpq_url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def rearm_outbox(t: Target, since: dt.datetime) -> int:
    """Outbox rows published near the point are published again (their consumers may not have them)."""
    if t.is_sqlite:
        conn = sqlite3.connect(t.path)
        try:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'outbox'").fetchone():
                return 0
            # UtcDateTime stores SQLite text as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): it compares as text.
            count = conn.execute(
                "UPDATE outbox SET published_at = NULL WHERE published_at >= ?",
                (since.strftime("%Y-%m-%d %H:%M:%S.%f"),),
            ).rowcount
            conn.commit()
            return count
        finally:
            conn.close()
    import asyncpg

    conn = await asyncpg.connect(t.libpq_url)
    try:
        if not await conn.fetchval("SELECT to_regclass('outbox') IS NOT NULL"):
            return 0
        result = await conn.execute("UPDATE outbox SET published_at = NULL WHERE published_at >= $1", since)
        return int(result.split()[-1])
    finally:
        await conn.close()


async def _operator_connection(nats_url: str):
    """One NATS connection as the operators' user (it deletes the stream), no reconnecting: a failure is the
    caller's to explain. nats-py takes max_reconnect_attempts=0 as no limit (its first connect then retries an
    unreachable server forever, allow_reconnect or not), so: one retry, soon, and then NoServersError; its
    errors are not printed (the caller's message says what to do)."""
    import nats

    async def quiet(_exc: Exception) -> None:
        return None

    return await nats.connect(
        nats_url,
        connect_timeout=3,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.2,
        allow_reconnect=False,
        error_cb=quiet,
        **NatsCredentials.from_env().connect_options(),
    )


async def reset_stream(nats_url: str) -> bool:
    """Deletes the event stream (and so its consumers); the processes re-create both at start."""
    from nats.js.errors import NotFoundError

    from orderdesk import events

    try:
        nc = await _operator_connection(nats_url)
    except Exception as exc:
        raise CliError(
            f"cannot reach NATS at {redact(nats_url)} ({exc.__class__.__name__}) to reset the event stream",
            ["start NATS, or pass --no-stream-reset if this NATS has no ORDERDESK stream"],
        ) from None
    try:
        try:
            await nc.jetstream().delete_stream(events.STREAM)
            return True
        except NotFoundError:
            return False
    finally:
        await nc.close()


async def restore(src: Path, *, force: bool = False, stream_reset: bool = True, log=print) -> dict:
    manifest = read_manifest(src)
    verify(src, manifest)
    if not force:
        running = answering()
        if running:
            raise CliError(
                "refusing to restore while the suite runs: nothing was changed",
                [f"answering: {r}" for r in running] + ["stop every process first"],
            )
    nats_url = env("ORDERDESK_NATS_URL", "nats://127.0.0.1:4222")
    if stream_reset:  # reachable before anything changes
        await reset_stream_check(nats_url)
    point = dt.datetime.fromtimestamp(manifest["point_epoch"], dt.UTC)
    since = point - dt.timedelta(seconds=REPUBLISH_SECONDS)
    rearmed = {}
    restoring = [t for t in targets(manifest["databases"]) if t.component in manifest["databases"]]
    for t in restoring:
        entry = manifest["databases"][t.component]
        if (entry["engine"] == "sqlite") != t.is_sqlite:
            raise CliError(
                f"{t.component}: the backup holds a {entry['engine']} database, the configuration "
                f"points at {'SQLite' if t.is_sqlite else 'PostgreSQL'} ({t.url})"
            )
    for t in restoring:
        entry = manifest["databases"][t.component]
        if t.is_sqlite:
            await asyncio.to_thread(restore_sqlite, src, entry, t)
        else:
            await restore_postgres(src, entry, t)
        rearmed[t.component] = await rearm_outbox(t, since)
        log(f"{t.component:<10} restored, {rearmed[t.component]} outbox events to publish again")
    deleted = await reset_stream(nats_url) if stream_reset else False
    return {"point": manifest["point"], "rearmed": rearmed, "stream_deleted": deleted}


async def reset_stream_check(nats_url: str) -> None:
    try:
        nc = await _operator_connection(nats_url)
    except Exception as exc:
        raise CliError(
            f"cannot reach NATS at {redact(nats_url)} ({exc.__class__.__name__}); the restore resets the "
            "event stream: nothing was changed",
            ["start NATS, or pass --no-stream-reset if this NATS is new (no ORDERDESK stream)"],
        ) from None
    await nc.close()


async def after_recovery(point: dt.datetime, *, force: bool = False, stream_reset: bool = True) -> dict:
    """The suite's half of a restore the database operator made (CloudNativePG's point-in-time recovery
    of the cluster): the outbox rows near the point re-armed, the stream reset."""
    if not force and (running := answering()):
        raise CliError(
            "refusing while the suite runs: nothing was changed", [f"answering: {r}" for r in running]
        )
    nats_url = env("ORDERDESK_NATS_URL", "nats://127.0.0.1:4222")
    if stream_reset:
        await reset_stream_check(nats_url)
    since = point - dt.timedelta(seconds=REPUBLISH_SECONDS)
    rearmed = {t.component: await rearm_outbox(t, since) for t in targets()}
    deleted = await reset_stream(nats_url) if stream_reset else False
    return {"point": point.isoformat(), "rearmed": rearmed, "stream_deleted": deleted}


def cmd_restore(args: argparse.Namespace) -> int:
    if (args.src is None) == (args.recovered_to is None):
        raise CliError("give a backup folder, or --recovered-to TIME after the database operator's recovery")
    if args.recovered_to is not None:
        try:
            point = dt.datetime.fromisoformat(args.recovered_to.replace("Z", "+00:00"))
        except ValueError:
            raise CliError(f"--recovered-to {args.recovered_to!r} is not an ISO 8601 time") from None
        if point.tzinfo is None:
            raise CliError("--recovered-to needs a time zone (for example 2026-12-01T02:00:00Z)")
        done = asyncio.run(after_recovery(point, force=args.force, stream_reset=not args.no_stream_reset))
    else:
        done = asyncio.run(restore(Path(args.src), force=args.force, stream_reset=not args.no_stream_reset))
    print(
        f"restored the suite to {done['point']}; "
        f"{sum(done['rearmed'].values())} events will be published again at start"
        + ("; the event stream was deleted (re-created at start)" if done["stream_deleted"] else "")
    )
    return 0


def register(sub) -> None:
    backup = sub.add_parser("backup", help="a consistent backup of every database while the suite runs")
    backup.add_argument("dest", help="a new or empty folder")
    backup.set_defaults(run=cmd_backup)
    restore_cmd = sub.add_parser("restore", help="bring a stopped suite back to a backup's point")
    restore_cmd.add_argument("src", nargs="?", help="a folder made by orderdesk backup")
    restore_cmd.add_argument(
        "--recovered-to",
        metavar="TIME",
        help="no folder: the databases were recovered to TIME by the database operator "
        "(CloudNativePG); only re-arm the outboxes and reset the stream",
    )
    restore_cmd.add_argument(
        "--force",
        action="store_true",
        help="skip the check that no process answers (you stopped them yourself)",
    )
    restore_cmd.add_argument(
        "--no-stream-reset",
        action="store_true",
        help="leave NATS alone (only when it is new: no ORDERDESK stream)",
    )
    restore_cmd.set_defaults(run=cmd_restore)
