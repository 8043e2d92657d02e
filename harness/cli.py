"""redis-harness: stand the reference up, look at it, tear it down, run the gating job.

Bad input and unusable environments end with one sentence on stderr and exit
status 2; nothing is left running.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import gate, observe, reference
from harness.errors import HarnessError
from harness.platforms import get_platform
from harness.platforms.base import Platform
from harness.topology import PodState, check_invariants

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
console = Console(stderr=True)
out = Console(width=140)

PlatformOpt = Annotated[str, typer.Option("--platform", help="local or kubernetes")]
OverlayOpt = Annotated[str, typer.Option("--overlay", help="an overlay under reference/overlays")]
ClusterOpt = Annotated[str, typer.Option("--cluster", help="name of the local cluster (state and device names)")]
NetworkOpt = Annotated[str, typer.Option("--network", help="local pod network: auto, netns (root) or loopback")]
SubnetOpt = Annotated[str | None, typer.Option("--subnet", help="address range for local pods")]
StateOpt = Annotated[Path | None, typer.Option("--state-dir", help="where local clusters keep their state")]


def _platform(platform: str, overlay: str, cluster: str, network: str, subnet: str | None, state_dir: Path | None) -> Platform:
    if platform == "local":
        return get_platform("local", overlay=overlay, cluster=cluster, network=network, subnet=subnet, state_dir=state_dir)
    return get_platform(platform, overlay=overlay)


def status_table(states: list[PodState]) -> Table:
    by_id = {n.id: n for s in states for n in s.nodes if n.is_myself}
    pod_of = {s.address: s.pod for s in states}
    table = Table(title="Redis Cluster")
    for col in ("pod", "address", "node", "role", "slots", "master", "link"):
        table.add_column(col)
    for s in states:
        me = s.myself()
        if s.error or me is None:
            table.add_row(s.pod, s.address, s.node, "[red]down[/]", "", "", s.error or "")
            continue
        master = by_id.get(me.master_id or "")
        link = s.replication.get("master_link_status", "") if me.is_replica else ""
        table.add_row(
            s.pod,
            s.address,
            s.node,
            "master" if me.is_master else "replica",
            str(me.slot_count()) if me.is_master else "",
            pod_of.get(master.ip, master.ip) if master else "",
            f"[green]{link}[/]" if link == "up" else link,
        )
    return table


@app.command()
def up(
    platform: PlatformOpt = "local",
    overlay: OverlayOpt = "kind",
    cluster: ClusterOpt = "redis-harness",
    network: NetworkOpt = "auto",
    subnet: SubnetOpt = None,
    state_dir: StateOpt = None,
) -> None:
    """Stand the reference up and leave it running."""
    p = _platform(platform, overlay, cluster, network, subnet, state_dir)
    start = time.monotonic()
    p.up()  # cleans up after itself when it fails
    try:
        observe.wait_healthy(p)
    except BaseException:
        p.down(keep_volumes=True)
        raise
    if hasattr(p, "detach"):
        p.detach()
    console.print(f"cluster '{cluster}' is up in {time.monotonic() - start:.1f}s")
    out.print(status_table(observe.snapshot(p)))


@app.command()
def status(
    platform: PlatformOpt = "local",
    overlay: OverlayOpt = "kind",
    cluster: ClusterOpt = "redis-harness",
    state_dir: StateOpt = None,
) -> None:
    """Pods, roles, addresses, slots and replication links; exit 1 when an invariant fails."""
    p = _platform(platform, overlay, cluster, "auto", None, state_dir)
    states = observe.snapshot(p)
    out.print(status_table(states))
    masters, replicas = p.layout()
    violations = check_invariants(states, expected_masters=masters, replicas_per_master=replicas)
    for v in violations:
        out.print(f"[red]✗[/] {v.code}: {v.message}")
    if violations:
        raise typer.Exit(1)
    out.print("[green]✓[/] all invariants hold")


@app.command()
def down(
    platform: PlatformOpt = "local",
    overlay: OverlayOpt = "kind",
    cluster: ClusterOpt = "redis-harness",
    state_dir: StateOpt = None,
    keep_volumes: Annotated[bool, typer.Option("--keep-volumes", help="keep data for the next up")] = False,
) -> None:
    """Remove every process, namespace, link and rule of the cluster."""
    p = _platform(platform, overlay, cluster, "auto", None, state_dir)
    start = time.monotonic()
    p.down(keep_volumes=keep_volumes)
    console.print(f"cluster '{cluster}' is down in {time.monotonic() - start:.1f}s")


@app.command()
def run(
    platform: PlatformOpt = "local",
    overlay: OverlayOpt = "kind",
    suite: Annotated[
        list[str] | None, typer.Option("--suite", help=f"a gating suite ({', '.join(gate.SUITES)}); repeatable")
    ] = None,
    cluster: ClusterOpt = "redis-harness-run",
    subnet: SubnetOpt = None,
    keep: Annotated[bool, typer.Option("--keep", help="leave the cluster up for inspection")] = False,
    reports: Annotated[Path | None, typer.Option("--reports", help="reports directory")] = None,
) -> None:
    """The gating job: every gating suite against one stood-up reference, one report; exit 1 when a gate fails."""
    gate.suite_paths(suite)  # bad input fails before anything starts
    reference.overlay_path(overlay)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} tests"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("standing the reference up", total=None)
        result = gate.run_gate(
            platform,
            overlay,
            suite,
            reports,
            keep,
            cluster,
            subnet,
            progress=lambda test, done: progress.update(task, description=test, completed=done),
        )
    table = Table(title=f"gate: {result.outcome}")
    for col in ("suite", "outcome", "passed", "failed", "error", "skipped", "seconds"):
        table.add_column(col)
    for s in result.report["suites"]:
        c = s["counts"]
        colour = "green" if s["outcome"] == "pass" else "red"
        table.add_row(
            s["suite"],
            f"[{colour}]{s['outcome']}[/]",
            str(c["passed"]),
            str(c["failed"]),
            str(c["error"]),
            str(c["skipped"]),
            f"{s['duration_s']:.0f}",
        )
    out.print(table)
    for s in result.report["suites"]:
        for failure in s["failures"]:
            out.print(f"[red]✗[/] {s['suite']}: {failure['test']} ({failure['outcome']})")
    console.print(f"report: {result.run_dir / 'index.html'}")
    if result.outcome == "error":
        raise HarnessError(f"the gate could not run; see {result.run_dir / 'pytest.log'}")
    if result.outcome != "pass":
        raise typer.Exit(1)


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Usage errors exit 2 (typer's own); HarnessError exits 2 with its sentence."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app(args=argv, prog_name="redis-harness")
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except HarnessError as exc:
        console.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted; everything this run started was removed")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
