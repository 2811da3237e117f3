"""The `shoplens` command line. Every failure the user can act on is one line on stderr."""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shoplens.config import default_db_path
from shoplens.warehouse import WarehouseError

if TYPE_CHECKING:
    from shoplens.stream.sink import SinkStats


def _warehouse_path(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """Every command refuses a --db that is neither a DuckDB file nor a new path (DuckDB would
    open an existing CSV/Parquet file as a throw-away in-memory database)."""
    from shoplens.warehouse import check_warehouse_path

    check_warehouse_path(value)
    return value


class FiniteFloatRange(click.FloatRange):
    """A click.FloatRange that also refuses nan and infinity (they pass its bounds checks)."""

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


db_option = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=default_db_path,
    callback=_warehouse_path,
    show_default="$SHOPLENS_DB or warehouse.duckdb in the project root",
    help="Warehouse file: a DuckDB file, or a new path.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shoplens")
def cli() -> None:
    """shoplens: an analytics warehouse for e-commerce user behaviour."""


@cli.command(short_help="Simulate a shop (events, orders, catalogue) into raw.*.")
@db_option
@click.option(
    "--sessions",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Sessions to simulate.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=42, show_default=True, help="Random seed."
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=365,
    show_default=True,
    help="Days of history, ending at --end.",
)
@click.option(
    "--end",
    "end",
    type=click.DateTime(["%Y-%m-%d"]),
    default=lambda: f"{dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)}",
    show_default="yesterday (UTC)",
    help="Last day of the simulated history.",
)
@click.option(
    "--defects",
    type=FiniteFloatRange(0, 0.5),
    default=0.01,
    show_default=True,
    help="Rate of realistic defects (duplicates, missing values, late and "
    "malformed events); 0 turns them off.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rees46"]),
    default=None,
    help="Write a clickstream file in this format to --out instead of loading raw.*.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write with --format (.csv, .csv.gz or .parquet; must not exist).",
)
@click.option(
    "--quirk",
    "quirks",
    multiple=True,
    metavar="NAME=RATE",
    help="With --format rees46: override a quirk rate (repeatable), e.g. duplicate=0.01; "
    "names: duplicate, missing_category_code, missing_brand, zero_price_view, "
    "zero_price_purchase, price_change, shared_session, long_session, purchase_without_cart, "
    "missing_session.",
)
@click.pass_context
def generate(
    ctx: click.Context,
    db: Path,
    sessions: int,
    seed: int,
    days: int,
    end: dt.datetime,
    defects: float,
    fmt: str | None,
    out: Path | None,
    quirks: tuple[str, ...],
) -> None:
    """Simulate customers, products, sessions (as events) and orders; load them into raw.*.

    With --format rees46 --out FILE, write the simulated product events as a REES46-format
    file (with the real files' quirks) instead; no warehouse is touched.
    """
    from shoplens.generate import generate_and_load
    from shoplens.generate.run import GenerateArgumentError, check_arguments, future_days

    args: dict[str, Any] = {"sessions": sessions, "seed": seed, "days": days, "end": end.date()}
    try:  # before anything is created: dates, days and sessions the machine can hold
        check_arguments(**args, defect_rate=defects)
    except GenerateArgumentError as exc:
        raise click.BadParameter(str(exc), param_hint=f"--{exc.argument}") from exc
    ahead = future_days(end.date(), days)
    if ahead:
        _err(
            f"shoplens: warning: {ahead} of the {days} simulated days are after today (UTC): "
            "dbt quarantines events more than future_event_tolerance_hours (24) after "
            "their load as future_event_time"
        )
    if fmt is not None or out is not None or quirks:
        _generate_file(ctx, sessions, seed, days, end, fmt, out, quirks)
        return
    click.echo(generate_and_load(db, **args, defect_rate=defects))


def _generate_file(
    ctx: click.Context,
    sessions: int,
    seed: int,
    days: int,
    end: dt.datetime,
    fmt: str | None,
    out: Path | None,
    quirks: tuple[str, ...],
) -> None:
    """`generate --format rees46 --out FILE`: write a REES46-format file."""
    from shoplens.generate.rees46_file import Rees46FileError, Rees46Quirks, write_rees46_file

    if fmt is None or out is None:
        raise click.UsageError("--format, --out and --quirk go together: give --format and --out")
    for name in ("db", "defects"):
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
            raise click.UsageError(f"--{name} does not apply with --format (a file is written)")
    try:
        summary = write_rees46_file(
            out,
            sessions=sessions,
            seed=seed,
            days=days,
            end=end.date(),
            quirks=Rees46Quirks.parse(quirks),
        )
    except Rees46FileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary)


@cli.command("load-events", short_help="Import REES46 clickstream files into raw.events.")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rees46"]),
    default="rees46",
    show_default=True,
    help="File format of the events.",
)
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def load_events(db: Path, fmt: str, files: tuple[Path, ...]) -> None:
    """Import clickstream files (REES46 CSV or Parquet) into raw.events; bad rows to raw.rejects."""
    from shoplens.rees46 import Rees46FormatError, load_rees46

    try:
        summary = load_rees46(db, files)
    except Rees46FormatError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary)


@cli.command("spark-load", short_help="Raw tables to Parquet, registered on the dbt spark target.")
@db_option
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    show_default="$SHOPLENS_SPARK_DIR/lake (spark/lake)",
    help="Folder for the Parquet files: <out>/<schema>/<table>/.",
)
@click.option(
    "--project-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The dbt project (its profiles.yml's spark output starts the session).",
)
def spark_load(db: Path, out: Path | None, project_dir: Path) -> None:
    """Write the warehouse's raw.* and live.* tables as Parquet and register them as Spark's
    raw.* and live.* tables (`dbt run-operation register_raw_tables --target spark`), so that
    `dbt build --target spark --selector spark` builds on them. Needs the spark extra."""
    from shoplens.spark import SparkLoadError, spark_load

    try:
        tables = spark_load(db, project_dir.resolve(), out)
    except (SparkLoadError, WarehouseError) as exc:
        raise click.ClickException(str(exc)) from exc
    for table in tables:
        click.echo(f"{table.schema}.{table.name}: {table.rows} rows -> {table.path.parent}")


@cli.command(short_help="Run a read-only SQL query against the warehouse.")
@db_option
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=2**63 - 1),  # DuckDB's LIMIT is a BIGINT
    default=200,
    show_default=True,
    help="Rows to print at most.",
)
def sql(db: Path, query: str, as_csv: bool, limit: int) -> None:
    """Run a SQL query against the warehouse and print the result.

    Read-only in fact: writing anything, reading any file but the warehouse, attaching other
    databases, loading extensions and changing settings are refused. Values are printed as
    data: markup is not interpreted and control characters are shown escaped (`\\x1b`);
    --csv writes them unchanged.
    """
    import duckdb

    from shoplens.query import is_refusal, lock_down, print_table, write_csv
    from shoplens.warehouse import connect

    with connect(db, read_only=True) as con:
        lock_down(con)
        try:
            rel = con.sql(query)
            if rel is None:
                return
            columns = rel.columns
            rows = rel.limit(limit).fetchall()
        except duckdb.Error as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            if is_refusal(exc):
                raise click.ClickException(
                    f"refused: `shoplens sql` only reads the warehouse {db} ({first})"
                ) from exc
            raise click.ClickException(f"query failed: {first}") from exc
    (write_csv if as_csv else print_table)(columns, rows, sys.stdout)


@cli.command(short_help="Build the static report site from the marts.")
@db_option
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Folder to write the site to: a new or empty folder, or an earlier shoplens site "
    "(replaced whole).",
)
@click.option(
    "--with-notebook",
    is_flag=True,
    help="Also execute notebooks/eda.ipynb on the warehouse (read-only) and publish it as the "
    "Notebook page (a kernel start and the notebook's queries: about 20 s).",
)
@click.option(
    "--marts-parquet",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Read the relations from Parquet folders <dir>/<schema>/<table>/ (a Spark build's "
    "export: dbt build --target spark --vars '{parquet_export_dir: <dir>}') instead of --db.",
)
def report(db: Path, out: Path, with_notebook: bool, marts_parquet: Path | None) -> None:
    """Build the static report site from the marts (read-only); print the index.html path.

    dbt's test results and source freshness come from the warehouse itself (ops.*, written by
    dbt's on-run-end hook), so a site never shows another warehouse's build. With
    --marts-parquet the warehouse is a temporary DuckDB file made from Parquet folders instead.
    """
    import tempfile

    from shoplens.reports import build_site
    from shoplens.reports.notebook import NotebookError
    from shoplens.reports.publish import SiteFolderError
    from shoplens.spark import SparkLoadError, warehouse_from_parquet

    try:
        with tempfile.TemporaryDirectory(prefix="shoplens-parquet-") as tmp:
            if marts_parquet is not None:
                db = Path(tmp) / "from-parquet.duckdb"
                warehouse_from_parquet(marts_parquet, db)
            result = build_site(db, out, with_notebook=with_notebook)
    except (SiteFolderError, NotebookError, SparkLoadError) as exc:
        raise click.ClickException(str(exc)) from exc
    charts = sum(result.charts.values())
    notices = sum(result.notices.values())
    click.echo(
        f"{len(result.charts)} pages, {charts} charts, {notices} sections without data, "
        f"{result.seconds:.1f} s",
        err=True,
    )
    click.echo(str(result.index.resolve()))


@cli.group(short_help="List and export campaign audiences (marts/audiences).")
def audience() -> None:
    """Campaign audiences: dbt marts a campaign tool imports (see README, Audiences)."""


@audience.command("list", short_help="Each audience with its size and what it holds.")
@db_option
def audience_list(db: Path) -> None:
    """Print each audience's name, rows (or 'not built') and description (read-only)."""
    from shoplens.audiences import AUDIENCES, audience_sizes

    for name, rows in audience_sizes(db).items():
        size = "not built" if rows is None else f"{rows:,} rows"
        click.echo(f"{name}\t{size}\t{AUDIENCES[name].description}")


@audience.command("export", short_help="Write an audience to a CSV or Parquet file.")
@db_option
@click.argument("name")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (.csv or .parquet unless --format); an existing file needs --force.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    default=None,
    show_default="from the --out extension",
    help="File format.",
)
@click.option(
    "--with-personal-data",
    is_flag=True,
    help="Add the customers' age, gender, city, country... (ids only without it).",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def audience_export(
    db: Path, name: str, out: Path, fmt: str | None, with_personal_data: bool, force: bool
) -> None:
    """Export audience NAME (see `shoplens audience list`) from the warehouse, read-only."""
    from shoplens.audiences import AudienceError, export_audience

    try:
        result = export_audience(
            db, name, out, fmt=fmt, with_personal_data=with_personal_data, force=force
        )
    except AudienceError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.summary())


# ------------------------------------------------------------------------------ streaming


def _kafka(bootstrap: str | None, embedded: bool) -> str | None:
    """The cluster to use: --bootstrap / $KAFKA_BOOTSTRAP_SERVERS, or None for embedded."""
    if bootstrap and embedded:
        raise click.UsageError("--embedded conflicts with --bootstrap / KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap and not embedded:
        raise click.UsageError(
            "no Kafka cluster: set KAFKA_BOOTSTRAP_SERVERS (e.g. to the "
            "address `shoplens broker` prints) or pass --embedded"
        )
    return bootstrap


def _err(line: str) -> None:
    click.echo(line, err=True)


bootstrap_option = click.option(
    "--bootstrap",
    "bootstrap",
    envvar="KAFKA_BOOTSTRAP_SERVERS",
    default=None,
    show_default="$KAFKA_BOOTSTRAP_SERVERS",
    help="Kafka bootstrap servers (host:port,...).",
)


@cli.command(short_help="Run the embedded Kafka-protocol broker.")
@click.option(
    "--partitions",
    type=click.IntRange(1, 64),
    default=16,
    show_default=True,
    help="Partitions per topic (each keeps about 13,000 events).",
)
def broker(partitions: int) -> None:
    """Run an embedded Kafka-protocol broker with the shoplens topics until Ctrl-C / SIGTERM.

    Each partition keeps at most 5 MiB or 100,000 message sets (librdkafka's mock, not
    configurable), about 13,000 shoplens events, and then deletes its oldest messages as
    retention would. With 16 partitions a topic buffers about 200,000 events: while the sink
    cannot write (a dbt build holds the warehouse), Kafka buffers about 200,000 / rate
    seconds, e.g. 3 minutes at 1,000 events/s. What is deleted unread is recorded in
    raw.sink_gaps and the sink exits 3.
    """
    from shoplens.config import kafka_bootstrap
    from shoplens.stream.broker import EmbeddedBroker, run_until_signalled

    if kafka_bootstrap():
        raise click.UsageError(
            "KAFKA_BOOTSTRAP_SERVERS is set: the commands use that cluster, "
            "no embedded broker needed (unset it to run one)"
        )

    def announce(address: str) -> None:
        click.echo(address)
        _err(
            f"embedded broker ready ({partitions} partitions per topic); in another shell:\n"
            f"  export KAFKA_BOOTSTRAP_SERVERS={address}"
        )

    run_until_signalled(EmbeddedBroker(partitions=partitions), announce)


@cli.command(short_help="Stream new sessions to Kafka (optionally sink and score them).")
@db_option
@bootstrap_option
@click.option(
    "--rate",
    type=FiniteFloatRange(min=0.1),
    default=500,
    show_default=True,
    help="Events per second.",
)
@click.option(
    "--duration",
    type=FiniteFloatRange(min=0.1),
    default=10,
    show_default=True,
    help="Seconds to stream (rate x duration events).",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed."
)
@click.option(
    "--defects",
    type=FiniteFloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="Rate of generator defects in the streamed events.",
)
@click.option(
    "--embedded", is_flag=True, help="Start an embedded broker for this run (needs --sink)."
)
@click.option(
    "--sink",
    "with_sink",
    is_flag=True,
    help="Also run the sink in this process until everything streamed is landed.",
)
@click.option("--score", is_flag=True, help="With --sink: score sessions live.")
@click.option(
    "--timestamps",
    type=click.Choice(["now", "simulated"]),
    default="now",
    show_default=True,
    help="now: sessions start while they are sent (wall clock). simulated: they continue the "
    "warehouse's history at its own pace (sessions a day of its last 28 days, the shop's hour, "
    "weekday and month curves) on a fast simulated clock that stops at the present.",
)
def stream(
    db: Path,
    bootstrap: str | None,
    rate: float,
    duration: float,
    seed: int,
    defects: float,
    embedded: bool,
    with_sink: bool,
    score: bool,
    timestamps: str,
) -> None:
    """Stream new sessions of the warehouse's customers to Kafka as JSON events."""
    from shoplens.stream.run import stream as run_stream

    bootstrap = _kafka(bootstrap, embedded)
    if embedded and not with_sink:
        raise click.UsageError(
            "--embedded needs --sink: the embedded broker lives only as long as this command"
        )
    if score and not with_sink:
        raise click.UsageError("--score needs --sink (or run `shoplens sink --score`)")
    result = run_stream(
        db,
        bootstrap,
        rate=rate,
        duration=duration,
        seed=seed,
        defect_rate=defects,
        with_sink=with_sink,
        score=score,
        report=_err,
        timestamps=timestamps,
    )
    if result.sunk is not None:
        _sink_outcome(result.sunk)
        if result.sunk.lag:
            raise click.ClickException(f"the sink stopped with {result.sunk.lag} messages unread")


def _sink_outcome(stats: SinkStats) -> None:
    """Fail with the sink's exit code (3 gaps, 4 Kafka unavailable) and one line, if it failed."""
    failure = stats.failure()
    if failure:
        error = click.ClickException(failure)
        # click declares exit_code a ClassVar; main() reads this instance's.
        error.exit_code = stats.exit_code  # type: ignore[misc]
        raise error


@cli.command(short_help="Land Kafka messages in the warehouse exactly once.")
@db_option
@bootstrap_option
@click.option(
    "--group",
    default="shoplens-sink",
    show_default=True,
    help="Name the sink's offsets are kept under in raw.sink_offsets.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=5_000,
    show_default=True,
    help="Messages per micro-batch at most.",
)
@click.option(
    "--batch-interval",
    type=FiniteFloatRange(min=0.01),
    default=0.25,
    show_default=True,
    help="Seconds a message may wait for its batch.",
)
@click.option(
    "--stop-when-idle",
    type=FiniteFloatRange(min=0.1),
    default=None,
    help="Exit after this many seconds with nothing new and no lag (a Kafka that does not "
    "answer for that long counts as idle, exit code 4).",
)
@click.option(
    "--connect-timeout",
    type=FiniteFloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait at start for Kafka to answer; then exit code 4, nothing written.",
)
@click.option(
    "--broker-timeout",
    type=FiniteFloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds without an answer from Kafka before the sink stops (exit code 4).",
)
@click.option(
    "--retry-forever",
    is_flag=True,
    help="Never stop for a silent Kafka: warn once per --broker-timeout and keep retrying.",
)
@click.option(
    "--score",
    is_flag=True,
    help="Score in-progress sessions with the purchase-intent model; alerts go to "
    "the high-intent topic.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on exit.")
def sink(
    db: Path,
    bootstrap: str | None,
    group: str,
    batch_size: int,
    batch_interval: float,
    stop_when_idle: float | None,
    connect_timeout: float,
    broker_timeout: float,
    retry_forever: bool,
    score: bool,
    as_json: bool,
) -> None:
    """Land Kafka events and order lines in raw.* exactly once (until Ctrl-C / SIGTERM).

    Exit codes: 0 done; 1 error; 3 messages were deleted by the broker (retention) before the
    sink read them, recorded in raw.sink_gaps; 4 Kafka did not answer (at start within
    --connect-timeout, while running for --broker-timeout, or when stopping idle: messages
    may be unread).
    """
    from shoplens.stream.run import make_hook
    from shoplens.stream.sink import Sink, SinkConfig, stats_json, stop_on_signals

    bootstrap = _kafka(bootstrap, embedded=False)
    assert bootstrap is not None
    config = SinkConfig(
        db=db,
        bootstrap=bootstrap,
        group=group,
        batch_size=batch_size,
        batch_interval=batch_interval,
        stop_when_idle=stop_when_idle,
        connect_timeout=connect_timeout,
        broker_timeout=broker_timeout,
        retry_forever=retry_forever,
    )
    # The model loads before SIGINT/SIGTERM are caught: until then they end the command.
    hook = make_hook(db, bootstrap, score, _err)
    stop = stop_on_signals()
    stats = Sink(config, hook=hook, report=_err).run(stop)
    if as_json:
        click.echo(stats_json(stats))
    _sink_outcome(stats)


def _fail(message: str, code: int) -> None:
    click.echo(f"shoplens: error: {message}", err=True)
    sys.exit(code)


def main() -> None:
    """Entry point: run the CLI and turn every expected failure into one line on stderr."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(exc.format_message().splitlines()[0] + hint, 2)
    except click.ClickException as exc:
        _fail(exc.format_message().splitlines()[0], exc.exit_code)
    except WarehouseError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # the last line of defence: still one line, never a traceback
        if os.environ.get("SHOPLENS_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        _fail(f"{type(exc).__name__}: {first} (set SHOPLENS_DEBUG=1 for the traceback)", 1)


if __name__ == "__main__":
    main()
