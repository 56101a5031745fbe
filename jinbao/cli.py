"""The ``jinbao`` command line: demo, load, simulate, cities."""

from __future__ import annotations

import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from jinbao.errors import JinbaoError
from jinbao.targets import DEFAULT_TARGET

app = typer.Typer(
    help="jinbao: consolidate legacy city social-insurance systems into the provincial database.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# rich cuts tables to 80 columns when output is a file or a CI log; the verify table needs about 170
console = Console(width=None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 0) or 200)


class Driver(StrEnum):
    pymssql = "pymssql"
    pyodbc = "pyodbc"
    arrow_odbc = "arrow_odbc"


TargetOpt = Annotated[str, typer.Option("--target", help="duckdb:///PATH (default) or postgresql://...")]
ReportsOpt = Annotated[Path, typer.Option("--reports", help="directory for HTML reports")]


def _summary(runs) -> None:
    for run in runs:
        t = Table(title=f"{run.city} · batch {run.batch_id}")
        for col in ("entity", "extracted", "loaded", "quarantined", "merged", "money (yuan)", "reconciled"):
            t.add_column(col, justify="left" if col == "entity" else "right", no_wrap=True)
        for e in run.entities.values():
            t.add_row(
                e.entity,
                f"{e.extracted_rows:,}",
                f"{e.loaded_rows:,}",
                f"{e.quarantined_rows:,}",
                f"{e.merged_rows:,}",
                f"{e.extracted_money:,}" if e.extracted_money else "-",
                "[green]yes[/]" if e.reconciled else "[red]NO[/]",
            )
        console.print(t)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )


@app.command()
def demo(
    persons: Annotated[
        int, typer.Option(help="persons in the simulated province (shared across its cities)")
    ] = 20000,
    seed: Annotated[int, typer.Option(help="generator seed")] = 20261203,
    driver: Annotated[Driver | None, typer.Option(help="override the spec's driver")] = None,
    target: TargetOpt = DEFAULT_TARGET,
    reports: ReportsOpt = Path("reports"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve the simulated cities over TDS, load them through FreeTDS, write the report."""
    from jinbao.demo import run_demo

    _setup_logging(verbose)

    def progress(city: str, rec) -> None:
        console.print(
            f"  {city:<11} {rec.entity:<13} extracted {rec.extracted_rows:>9,} = loaded {rec.loaded_rows:>9,}"
            f" + quarantined {rec.quarantined_rows:>7,} + merged {rec.merged_rows:>6,}"
        )

    try:
        reports.mkdir(parents=True, exist_ok=True)  # before loading: a load must not end without its report
        with console.status("loading simulated cities through FreeTDS..."):
            result = run_demo(
                persons=persons,
                seed=seed,
                target_url=target,
                reports_dir=reports,
                driver=driver.value if driver else None,
                on_entity=progress,
            )
    except JinbaoError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    _summary(result.runs)
    console.print(f"province database: {target}", soft_wrap=True)
    for path in result.reports:
        console.print(f"report: {path}")
    if not result.reconciled:
        console.print("[red]NOT reconciled[/]: see the report")
        raise typer.Exit(1)
    console.print("[green]all entities reconciled[/]")


@app.command()
def load(
    city: str,
    target: TargetOpt = DEFAULT_TARGET,
    reports: ReportsOpt = Path("reports"),
    incremental: Annotated[
        bool, typer.Option(help="only rows changed since the last run (per-table watermarks)")
    ] = False,
    force: Annotated[bool, typer.Option(help="load even though the city's cutover is not executed")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Load one city from its live legacy database (endpoint from <PREFIX>_HOST/_PORT/_USER/_PASSWORD).

    Only a city whose cutover is executed (and not rolled back) is loaded, unless --force.
    """
    from extractors import endpoint_from_env
    from jinbao.cutover import city_held, load_refusal
    from jinbao.runner import run_city
    from jinbao.spec import city_spec
    from jinbao.targets import open_target
    from quality.report import write_report

    _setup_logging(verbose)
    try:
        spec = city_spec(city)
        endpoint = endpoint_from_env(spec.source.env_prefix, spec.source.database)
        reports.mkdir(parents=True, exist_ok=True)  # before loading: a load must not end without its report
        with open_target(target) as tgt:
            tgt.ensure_schema()
            with city_held(tgt, spec.city):
                why_not = load_refusal(tgt, spec.city)
                if why_not and not force:
                    console.print(f"[red]error:[/] {why_not}", soft_wrap=True)
                    raise typer.Exit(2)
                if why_not:
                    console.print(f"[yellow]forced:[/] {why_not}", soft_wrap=True)
                run = run_city(spec, endpoint, tgt, mode="incremental" if incremental else "full")
                path = write_report(run, tgt, reports, target_label=tgt.url)
    except JinbaoError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    _summary([run])
    console.print(f"report: {path}")
    raise typer.Exit(0 if run.reconciled else 1)


@app.command()
def cutover(
    city: str,
    rehearse: Annotated[
        bool, typer.Option("--rehearse", help="load into the test partition and reconcile")
    ] = False,
    execute: Annotated[bool, typer.Option("--execute", help="load into the business partitions")] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="reconcile the province against the live source")
    ] = False,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="remove exactly this city's contribution")
    ] = False,
    force: Annotated[bool, typer.Option(help="run even out of order")] = False,
    simulated: Annotated[
        bool, typer.Option("--simulated", help="use the simulated city instead of the live one")
    ] = False,
    persons: Annotated[int, typer.Option(help="with --simulated: persons in the simulated city")] = 5000,
    seed: Annotated[int, typer.Option(help="with --simulated: generator seed")] = 20261203,
    target: TargetOpt = DEFAULT_TARGET,
    reports: ReportsOpt = Path("reports"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """One cutover step for one city: --rehearse, then --execute, then --verify; --rollback undoes it."""
    import contextlib

    from extractors import SourceEndpoint, endpoint_from_env
    from jinbao.cutover import run_step
    from jinbao.spec import city_spec
    from jinbao.targets import open_target

    _setup_logging(verbose)
    chosen = [
        name
        for name, on in (
            ("rehearse", rehearse),
            ("execute", execute),
            ("verify", verify),
            ("rollback", rollback),
        )
        if on
    ]
    if len(chosen) != 1:
        console.print("[red]error:[/] give exactly one of --rehearse, --execute, --verify, --rollback")
        raise typer.Exit(2)
    step = chosen[0]
    try:
        spec = city_spec(city)
        reports.mkdir(parents=True, exist_ok=True)  # before the step: it must not end without its report
        with contextlib.ExitStack() as stack:
            if simulated:
                from fixtures.tds import TdsServer
                from jinbao.demo import simulated_city_db

                server = stack.enter_context(TdsServer(simulated_city_db(spec, persons, seed)))
                endpoint = SourceEndpoint(
                    "127.0.0.1", server.port, "jinbao", "simulated", spec.source.database
                )
            else:
                endpoint = endpoint_from_env(spec.source.env_prefix, spec.source.database)
            tgt = stack.enter_context(open_target(target))
            result = run_step(step, spec, endpoint, tgt, reports, force=force)
    except JinbaoError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if result.run:
        _summary([result.run])
    for key, value in result.detail.items():
        if key not in ("entities", "consolidated"):
            console.print(f"{key}: {value}", soft_wrap=True)
    if "consolidated" in result.detail:
        c = result.detail["consolidated"]
        orphans = ", ".join(f"{n} {entity}" for entity, n in c["orphans"].items())
        console.print(
            f"consolidated persons: {c['persons_missing']} missing, {c['persons_differing']} not as derived, "
            f"rows whose person is gone: {orphans} · " + ("[green]yes[/]" if c["matches"] else "[red]NO[/]"),
            soft_wrap=True,
        )
        for kind in ("persons_missing", "persons_differing"):
            if c[f"{kind}_ids"]:  # ID numbers already masked
                console.print(f"  {kind.replace('_', ' ')}: {', '.join(c[f'{kind}_ids'])}", soft_wrap=True)
    if "entities" in result.detail:
        t = Table(
            "entity",
            "rows source",
            "rows province",
            "missing",
            "extra",
            "changed",
            "quarantine diff",
            "money source",
            "money province",
            "matches",
        )
        for name, e in result.detail["entities"].items():
            q = e["quarantine_missing"] + e["quarantine_extra"] + e["quarantine_changed"]
            t.add_row(
                name,
                str(e["source_rows"]),
                str(e["province_rows"]),
                str(e["missing"]),
                str(e["extra"]),
                str(e["changed"]),
                str(q),
                e["source_money"],
                e["province_money"],
                "[green]yes[/]" if e["matches"] else "[red]NO[/]",
            )
        console.print(t)
        for name, e in result.detail["entities"].items():
            for kind in (
                "missing",
                "extra",
                "changed",
                "quarantine_missing",
                "quarantine_extra",
                "quarantine_changed",
            ):
                if e[f"{kind}_keys"]:  # ID numbers already masked
                    console.print(f"  {name} {kind.replace('_', ' ')}: {', '.join(e[f'{kind}_keys'])}")
    console.print(f"report: {result.report}")
    console.print(f"{step}: " + ("[green]passed[/]" if result.passed else "[red]FAILED[/]"))
    raise typer.Exit(0 if result.passed else 1)


@app.command("inspect-encoding")
def inspect_encoding(
    city: str,
    table: str,
    sample: Annotated[int, typer.Option(help="rows to sample")] = 500,
    simulated: Annotated[bool, typer.Option("--simulated", help="inspect the simulated city")] = False,
) -> None:
    """Sample a table's text and report which charset its bytes are really in (for the spec's charset.actual)."""
    import contextlib

    from extractors import SourceEndpoint, endpoint_from_env
    from extractors.drivers import connect
    from extractors.encoding import score_values
    from extractors.exceptions import driver_message
    from jinbao.spec import city_spec

    spec = city_spec(city)
    with contextlib.ExitStack() as stack:
        if simulated:
            from fixtures.tds import TdsServer
            from jinbao.demo import simulated_city_db

            server = stack.enter_context(TdsServer(simulated_city_db(spec, 5000, 20261203)))
            endpoint = SourceEndpoint("127.0.0.1", server.port, "jinbao", "simulated", spec.source.database)
        else:
            endpoint = endpoint_from_env(spec.source.env_prefix, spec.source.database)
        conn = connect(spec.source, endpoint)
        stack.callback(conn.close)
        cur = conn.cursor()
        name = ".".join(f"[{p}]" for p in table.split("."))
        limit = f"SET ROWCOUNT {sample} " if spec.source.dialect == "sybase" else f"TOP {sample} "
        sql = (
            f"{limit}SELECT * FROM {name}"
            if spec.source.dialect == "sybase"
            else f"SELECT {limit}* FROM {name}"
        )
        try:
            cur.execute(sql)
            rows = cur.fetchall()
        except Exception as exc:  # the driver's own error types: one line, not a traceback
            raise JinbaoError(f"{city}: cannot read {table}: {driver_message(exc)}") from exc
    values = [v for r in rows for v in r if isinstance(v, str)]
    scores = score_values(values, spec.source.charset.declared)
    t = Table("candidate", "decodable", "ideographs", "mojibake", "score", "sample")
    for s in scores:
        t.add_row(
            s.charset,
            f"{s.decodable:.0%}",
            f"{s.ideographs:.0%}",
            f"{s.mojibake:.0%}",
            f"{s.score:.2f}",
            # the first character of each value shows how the bytes decode without printing a person's data
            " | ".join(v[:1] + "…" for v in s.samples)[:60],
        )
    console.print(t)
    best = scores[0]
    console.print(
        f"declared {spec.source.charset.declared}; spec says actual {spec.source.charset.actual}; "
        f"the sample looks like [bold]{best.charset}[/]"
    )


@app.command()
def simulate(
    city: str,
    port: Annotated[
        int, typer.Option(help="TCP port on 127.0.0.1 (0 picks a free one)", min=0, max=65535)
    ] = 0,
    persons: int = 5000,
    seed: int = 20261203,
) -> None:
    """Serve one simulated legacy city until interrupted."""
    from fixtures.tds import TdsServer
    from jinbao.demo import simulated_city_db
    from jinbao.spec import city_spec

    spec = city_spec(city)
    db = simulated_city_db(spec, persons, seed)
    server = TdsServer(db, port=port, server_name=f"SIM_{city.upper()}")
    bound = server.start()
    v = spec.source.tds_version
    console.print(f"serving {city} ({persons} persons, seed {seed}) on 127.0.0.1:{bound}, TDS {v}")
    console.print(f"  tsql:    TDSVER={v} tsql -H 127.0.0.1 -p {bound} -U sa -P anything")
    if (
        v == "5.0"
    ):  # pymssql refuses tds_version="5.0"; its FreeTDS takes TDSVER, and ASE refuses its default SETs
        console.print(
            f"  pymssql: TDSVER=5.0 in the environment, then pymssql.connect(server='127.0.0.1', "
            f"port='{bound}', user='sa', password='anything', database='{spec.source.database}', "
            "conn_properties='')",
            soft_wrap=True,
        )
    else:
        console.print(
            f"  pymssql: pymssql.connect(server='127.0.0.1', port='{bound}', user='sa', password='anything', "
            f"database='{spec.source.database}', tds_version='{v}')"
        )
    console.print(
        f"  env:     export {spec.source.env_prefix}_HOST=127.0.0.1 {spec.source.env_prefix}_PORT={bound} "
        f"{spec.source.env_prefix}_USER=sa {spec.source.env_prefix}_PASSWORD=anything",
        soft_wrap=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@app.command()
def cities() -> None:
    """List the city specs in cities/."""
    from jinbao.spec import all_cities, city_spec, shared_settings

    t = Table("city", "name", "dialect", "driver", "TDS", "entities")
    names = all_cities()
    if not names:
        console.print("[red]error:[/] no city specs found (check JINBAO_CITIES_DIR)")
        raise typer.Exit(2)
    specs = []
    for c in names:
        try:
            s = city_spec(c)
        except JinbaoError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from exc
        specs.append(s)
        t.add_row(
            s.city,
            s.display_name,
            s.source.dialect,
            s.source.driver,
            s.source.tds_version,
            ", ".join(n for n, _ in s.ordered_entities()),
        )
    console.print(t)
    problems = shared_settings(specs)
    for problem in problems:
        console.print(f"[red]error:[/] {problem}", soft_wrap=True)
    if problems:
        raise typer.Exit(2)


def main() -> None:
    """The console script: errors jinbao raises on purpose, and the system's (a port taken, a directory
    that cannot be written), end in one line and exit 2; anything else is a bug and shows its traceback."""
    try:
        app()
    except (JinbaoError, OSError) as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
