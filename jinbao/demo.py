"""``jinbao demo``: simulated legacy cities served over TDS, loaded through FreeTDS into the target."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from extractors import SourceEndpoint
from jinbao.errors import JinbaoError
from jinbao.runner import CityRun, run_city
from jinbao.spec import CitySpec, all_cities, city_spec
from jinbao.targets import open_target

SIM_DIR = Path(".jinbao") / "sim"


@dataclass(frozen=True)
class DemoResult:
    runs: list[CityRun]
    reports: list[Path]

    @property
    def reconciled(self) -> bool:
        return all(r.reconciled for r in self.runs)


def simulated_city_db(spec: CitySpec, persons: int, seed: int, sim_dir: Path = SIM_DIR) -> Path:
    """Generate (once) the simulated legacy database for one city on its own; reused while inputs are unchanged."""
    from fixtures.generator import GENERATOR_VERSION, generate_city

    variant = spec.simulator.variant if spec.simulator else spec.city
    sim_dir.mkdir(parents=True, exist_ok=True)
    path = sim_dir / f"{variant}-{persons}-{seed}-v{GENERATOR_VERSION}.duckdb"  # a new generator, new files
    if not path.exists():
        tmp = path.with_suffix(".tmp.duckdb")
        tmp.unlink(missing_ok=True)
        try:
            generate_city(variant, tmp, persons=persons, seed=seed)
        except ValueError as exc:  # too few persons to make the city
            raise JinbaoError(f"cannot simulate {spec.city}: {exc}; give more persons") from exc
        tmp.rename(path)
    return path


def simulated_province(
    specs: list[CitySpec], persons: int, seed: int, sim_dir: Path = SIM_DIR
) -> dict[str, Path]:
    """Generate (once) one province of simulated cities sharing persons; city → legacy database file."""
    import shutil

    from fixtures.generator import GENERATOR_VERSION, generate_province

    variants = tuple(s.simulator.variant for s in specs)
    out = sim_dir / f"province-{'-'.join(variants)}-{persons}-{seed}-v{GENERATOR_VERSION}"
    if not (out / "province_truth.duckdb").exists():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            generate_province(tmp, persons=persons, seed=seed, cities=variants)
        except ValueError as exc:  # too few persons to make every city
            raise JinbaoError(f"cannot simulate the province: {exc}; give more persons") from exc
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return {s.city: out / f"{s.simulator.variant}.duckdb" for s in specs}


def demo_cities() -> list[CitySpec]:
    return [s for s in (city_spec(c) for c in all_cities()) if s.simulator is not None]


def with_driver(spec: CitySpec, driver: str | None) -> CitySpec:
    if not driver:
        return spec
    return spec.model_copy(update={"source": spec.source.model_copy(update={"driver": driver})})


def run_demo(
    *,
    persons: int,
    seed: int,
    target_url: str,
    reports_dir: Path,
    driver: str | None = None,
    cities: list[str] | None = None,
    on_entity=None,
) -> DemoResult:
    """Load the simulated province; ``on_entity(city, reconciliation)`` after each entity of each city."""
    from fixtures.tds import TdsServer
    from quality.checks import PageChecker
    from quality.report import write_report

    specs = [with_driver(s, driver) for s in demo_cities() if not cities or s.city in cities]
    checker = PageChecker()
    runs, reports = [], []
    password = os.environ.get("JINBAO_SIM_PASSWORD") or secrets.token_urlsafe(12)
    databases = simulated_province(specs, persons, seed)
    with open_target(target_url) as target, checker:
        for spec in specs:
            db = databases[spec.city]
            with TdsServer(db, server_name=f"SIM_{spec.city.upper()}") as server:
                endpoint = SourceEndpoint("127.0.0.1", server.port, "jinbao", password, spec.source.database)
                run = run_city(
                    spec,
                    endpoint,
                    target,
                    checker=checker,
                    on_entity=(lambda rec, city=spec.city: on_entity(city, rec)) if on_entity else None,
                )
            runs.append(run)
            reports.append(write_report(run, target, reports_dir, target_label=target.url))
    return DemoResult(runs=runs, reports=reports)
