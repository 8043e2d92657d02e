"""redis-harness: stand the reference up, look at it, tear it down, run the gating job.

Bad input and unusable environments end with one sentence on stderr and exit
status 2; nothing is left running.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import gate, lanes, observe
from harness.errors import HarnessError
from harness.platforms import registry
from harness.platforms.base import Platform
from harness.platforms.kubernetes import incluster
from harness.topology import PodState, check_invariants

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
console = Console(stderr=True)
out = Console(width=140)

MAX_WORKERS = 64  # a bound on the loadgen Deployment a bench scales
PlatformOpt = Annotated[str, typer.Option("--platform", help="local, kind or kubernetes")]
OverlayOpt = Annotated[str, typer.Option("--overlay", help="an overlay under reference/overlays")]
ClusterOpt = Annotated[str | None, typer.Option("--cluster", help="local: name of the cluster [default: redis-harness]")]
NetworkOpt = Annotated[str | None, typer.Option("--network", help="local: pod network, auto, netns (root) or loopback")]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubernetes: the kubeconfig context")]
KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", help="kubernetes: the kubeconfig file")]
KindBinOpt = Annotated[str | None, typer.Option("--kind-bin", help="kind: the kind binary to use")]
KeepClusterOpt = Annotated[bool, typer.Option("--keep-cluster", help="kind: keep (or reuse) the kind cluster")]
ImageOpt = Annotated[
    str | None,
    typer.Option("--image", help="kind, kubernetes: the harness image the runner Job uses (kind without it: built and loaded)"),
]
SubnetOpt = Annotated[str | None, typer.Option("--subnet", help="address range for local pods (default: a free /20 of 198.18.0.0/15)")]
StateOpt = Annotated[Path | None, typer.Option("--state-dir", help="where local clusters keep their state")]


def _platform(platform: str, **options) -> Platform:
    """The platform by name; an option it does not take (given on the command line) is refused."""
    return registry.create(platform, **options)


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
    cluster: ClusterOpt = None,
    network: NetworkOpt = None,
    subnet: SubnetOpt = None,
    state_dir: StateOpt = None,
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
    kind_bin: KindBinOpt = None,
    keep_cluster: KeepClusterOpt = False,
) -> None:
    """Stand the reference up and leave it running."""
    p = _platform(
        platform,
        overlay=overlay,
        cluster=cluster,
        network=network,
        subnet=subnet,
        state_dir=state_dir,
        context=context,
        kubeconfig=kubeconfig,
        kind_bin=kind_bin,
        keep_cluster=keep_cluster or None,
    )
    start = time.monotonic()
    p.up()  # cleans up after itself when it fails
    try:
        _, states = observe.wait_healthy(p)
    except BaseException:
        p.down(keep_volumes=True)
        raise
    p.detach()
    console.print(f"cluster '{p.options().get('cluster', p.name)}' is up in {time.monotonic() - start:.1f}s")
    out.print(status_table(states))  # the snapshot that found it healthy, not another one


@app.command()
def status(
    platform: PlatformOpt = "local",
    overlay: OverlayOpt = "kind",
    cluster: ClusterOpt = None,
    state_dir: StateOpt = None,
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Pods, nodes, roles, addresses, slots and replication links; exit 1 when an invariant fails."""
    p = _platform(platform, overlay=overlay, cluster=cluster, state_dir=state_dir, context=context, kubeconfig=kubeconfig)
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
    cluster: ClusterOpt = None,
    state_dir: StateOpt = None,
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
    kind_bin: KindBinOpt = None,
    keep_cluster: KeepClusterOpt = False,
    keep_volumes: Annotated[bool, typer.Option("--keep-volumes", help="keep data for the next up")] = False,
) -> None:
    """Remove every process, namespace, link and rule of the cluster (on kind, the cluster too unless kept)."""
    p = _platform(
        platform,
        overlay=overlay,
        cluster=cluster,
        state_dir=state_dir,
        context=context,
        kubeconfig=kubeconfig,
        kind_bin=kind_bin,
        keep_cluster=keep_cluster or None,
    )
    start = time.monotonic()
    p.down(keep_volumes=keep_volumes)
    console.print(f"cluster '{p.options().get('cluster', p.name)}' is down in {time.monotonic() - start:.1f}s")


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
    allow_skip: Annotated[
        bool, typer.Option("--allow-skip", help="exploratory runs: a skipped test does not fail its suite (the report says so)")
    ] = False,
    jobs: Annotated[
        int,
        typer.Option("--jobs", min=1, help="local: run the suites in this many lanes side by side, each on a cluster of its own"),
    ] = 1,
    image: ImageOpt = None,
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
    kind_bin: KindBinOpt = None,
    keep_cluster: KeepClusterOpt = False,
) -> None:
    """The gating job: every gating suite against one stood-up reference, one report; exit 1 when a gate fails.
    The negative controls, which prove the harness rather than the deployment, run with --suite negative_controls.
    On kind and kubernetes the suites run inside the cluster as a Job; its log is the progress, its report comes back."""
    options = {"context": context, "kubeconfig": kubeconfig, "kind_bin": kind_bin, "keep_cluster": keep_cluster or None}
    options = {k: v for k, v in options.items() if v is not None}
    gate.check_input(platform, overlay, suite, cluster, subnet, options)  # bad input fails before anything starts
    if incluster.runs_as_job(platform, options):
        result = gate.run_in_cluster(
            platform, overlay, image, suite, reports, keep, options,
            say=lambda line: console.print(line, markup=False, highlight=False), allow_skip=allow_skip,
        )  # fmt: skip
    else:
        incluster.refuse_image(platform, image)
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
                allow_skip=allow_skip,
                jobs=jobs,
                # Not a terminal (the runner Job's log, CI): one line per test instead of a live display.
                echo=None if console.is_terminal else lambda line: console.print(line, markup=False, highlight=False),
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
        if s["outcome"] != "pass" and not s["failures"] and s.get("why"):
            out.print(f"[red]✗[/] {s['suite']}: {s['why']}")
    for check in result.report.get("unrun_checks", []):
        mark = "[yellow]-[/]" if check["allowed"] else "[red]✗[/]"
        out.print(f"{mark} not run: {escape(check['test'])}: {escape(check['reason'])}", highlight=False)
    for difference in result.report.get("unrun_differences", []):
        out.print(f"[red]✗[/] {escape(difference)}", highlight=False)
    if allow_skip:
        console.print("--allow-skip: skipped tests did not fail their suites; this is an exploratory run, not a gating verdict")
    tight = result.report.get("tightest")
    if tight:
        console.print(
            f"tightest margin: {tight['test']}: {tight['check']} {tight['figure']:g} against {tight['limit']:g} "
            f"({tight['margin']:+g})"
        )
    console.print(f"report: {result.run_dir / 'index.html'}")
    if result.outcome == "error":
        raise HarnessError(f"the gate could not run; see {result.run_dir / 'pytest.log'}")
    if result.outcome != "pass":
        raise typer.Exit(1)


def _run_in_cluster(platform: str, overlay: str, image: str | None, args: list[str], reports: Path | None,
                    options: dict, stand_up: bool, keep: bool = False, extra=None) -> None:  # fmt: skip
    """`redis-harness ARGS` as the runner Job, its log as progress; exits with the Job's code."""
    code, run_dir = incluster.run(
        platform, overlay, image, args, reports, options,
        say=lambda line: console.print(line, markup=False, highlight=False), stand_up=stand_up, keep=keep, extra=extra,
    )  # fmt: skip
    console.print(f"reports: {run_dir.parent if run_dir else reports}")
    if code:
        raise typer.Exit(code)


@app.command()
def chaos(
    experiments: Annotated[
        list[str] | None, typer.Argument(help="experiments by name (scenarios/chaos) or file; none: the whole catalogue")
    ] = None,
    platform: PlatformOpt = "local",
    overlay: OverlayOpt = "kind",
    cluster: ClusterOpt = "rh-chaos",
    subnet: SubnetOpt = None,
    keep: Annotated[bool, typer.Option("--keep", help="leave the cluster up for inspection")] = False,
    reports: Annotated[Path | None, typer.Option("--reports", help="reports directory")] = None,
    image: ImageOpt = None,
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
    kind_bin: KindBinOpt = None,
    keep_cluster: KeepClusterOpt = False,
) -> None:
    """The chaos catalogue (or the experiments named) through chaostoolkit: stand the reference up, run each
    experiment in turn, judge it, write a summary, tear down; exit 1 when an experiment failed. On kind and
    kubernetes the experiments run inside the cluster as the runner Job; its report comes back."""
    import logging

    from harness.chaos import runner as chaos_runner

    paths = chaos_runner.resolve(experiments or [], platform)  # bad input fails before anything starts
    options = {"context": context, "kubeconfig": kubeconfig, "kind_bin": kind_bin, "keep_cluster": keep_cluster or None}
    options = {k: v for k, v in options.items() if v is not None}
    if incluster.runs_as_job(platform, options):
        from harness.platforms.kubernetes import runner

        names = chaos_runner.catalogue_names(paths)
        registry.create(platform, overlay=overlay, **options)  # bad options fail before anything starts
        args = ["chaos", "--platform", "kubernetes", "--overlay", overlay, "--reports", runner.REPORTS, *names]
        _run_in_cluster(platform, overlay, image, args, reports, options, stand_up=True, keep=keep)
        return
    incluster.refuse_image(platform, image)
    given = {"cluster": cluster, "subnet": subnet} if platform == "local" else {}
    p = _platform(platform, overlay=overlay, **given, **options)
    logging.basicConfig(level=logging.WARNING)
    keep = keep or bool(os.environ.get("REDIS_HARNESS_KEEP"))  # the runner Job: its caller tears down
    p.up()
    try:
        results, summary = chaos_runner.run_catalogue(paths, p, reports)
    finally:
        if not keep:
            p.down()
    for r in results:
        figures = {k: r.figures.get(k) for k in ("recovery_s", "unavailable_s", "lost_waited", "lost_unwaited")}
        colour = "yellow" if r.not_run else ("green" if r.verdict.passed else "red")
        out.print(f"[{colour}]{r.outcome:7}[/]  {r.name:24} " + " ".join(f"{k} {v}" for k, v in figures.items()))
        for reason in r.verdict.reasons:
            out.print(f"      {reason}", markup=False, highlight=False)
    console.print(f"summary: {summary / 'index.html'}")
    if not all(r.verdict.passed for r in results):  # a fault the platform could not apply is not a pass either
        raise typer.Exit(1)


report_app = typer.Typer(no_args_is_help=True, help="Work with run reports.")
app.add_typer(report_app, name="report")


@app.command()
def bench(
    platform: PlatformOpt = "local",
    overlay: OverlayOpt = "kind",
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
    kind_bin: KindBinOpt = None,
    image: ImageOpt = None,
    workers: Annotated[
        int, typer.Option("--workers", help="kind, kubernetes: Locust workers as pods of their own (0: load processes in the runner pod)")
    ] = 0,
    workload: Annotated[
        list[str] | None, typer.Option("--workload", help="a workload under benchmarks/workloads, or a file; repeatable")
    ] = None,
    cluster: ClusterOpt = None,
    state_dir: StateOpt = None,
    duration: Annotated[float, typer.Option("--duration", help="seconds of the closed (or open) loop")] = 10.0,
    rate: Annotated[float, typer.Option("--rate", help="open loop at this total ops/s instead of closed loop")] = 0.0,
    capacity: Annotated[
        str, typer.Option("--capacity", help="capacity search: 'auto' or START[:FACTOR[:STEP_SECONDS[:MAX_STEPS]]]")
    ] = "",
    processes: Annotated[int, typer.Option("--processes", help="load processes (0: one per core)")] = 0,
    users: Annotated[int, typer.Option("--users", help="concurrent users (0: the workload's)")] = 0,
    pipeline: Annotated[list[int] | None, typer.Option("--pipeline", help="operations per round trip; repeatable")] = None,
    value_size: Annotated[str | None, typer.Option("--value-size", help="BYTES, MIN-MAX or SIZE:WEIGHT,...")] = None,
    keys: Annotated[int | None, typer.Option("--keys", help="key space size")] = None,
    key_distribution: Annotated[str | None, typer.Option("--key-distribution", help="uniform, zipf or hot")] = None,
    mix: Annotated[str | None, typer.Option("--mix", help="operation weights, e.g. get=90,set=10")] = None,
    hash_tags: Annotated[int | None, typer.Option("--hash-tags", help="group keys under N hash tags")] = None,
    read_from_replicas: Annotated[
        bool | None, typer.Option("--read-from-replicas/--read-from-masters", help="reads to replicas (READONLY)")
    ] = None,
    ttl: Annotated[int | None, typer.Option("--ttl", help="SET with EX seconds")] = None,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="run redis-benchmark (and memtier) too")] = True,
    reports: Annotated[Path | None, typer.Option("--reports", help="reports directory")] = None,
) -> None:
    """Benchmark a running reference: Locust load, HdrHistogram latency, baselines; one report per workload.
    On kind and kubernetes the bench runs in the cluster as the runner Job (its pod the Locust master,
    --workers pods beside it), the baselines from that pod; the reports come back."""
    from harness import slo as slo_file
    from harness.bench import workload as workloads
    from harness.bench.run import BenchOptions, benchmark, percentile_line

    knobs = {
        "value_size": workloads.parse_value_size_text(value_size) if value_size else None,
        "keys.count": keys,
        "keys.distribution": key_distribution,
        "mix": workloads.parse_mix(mix) if mix else None,
        "keys.hash_tags": hash_tags,
        "read_from_replicas": read_from_replicas,
        "ttl_seconds": ttl,
    }
    chosen = [
        workloads.load(name, {**knobs, "pipeline": depth})
        for name in (workload or ["cache-read-heavy"])
        for depth in (pipeline or [None])
    ]
    options = BenchOptions(
        seconds=duration, processes=processes, users=users, rate=rate, capacity=capacity,
        slo_p99_ms=slo_file.load().benchmark("capacity_p99_ms"), baseline=baseline,
    )  # fmt: skip
    options.validate()
    if workers < 0 or workers > MAX_WORKERS:
        raise HarnessError(f"--workers must be between 0 and {MAX_WORKERS}, not {workers}")
    cluster_options = {"context": context, "kubeconfig": kubeconfig, "kind_bin": kind_bin}
    cluster_options = {k: v for k, v in cluster_options.items() if v is not None}
    if incluster.runs_as_job(platform, cluster_options):
        from harness.platforms.kubernetes import runner

        registry.create(platform, overlay=overlay, **cluster_options)  # bad options fail before anything starts
        args = runner.bench_args(
            overlay, workload or ["cache-read-heavy"], pipeline or [], workers,
            {"--duration": duration, "--rate": rate, "--capacity": capacity, "--processes": processes, "--users": users,
             "--value-size": value_size, "--keys": keys, "--key-distribution": key_distribution, "--mix": mix,
             "--hash-tags": hash_tags, "--ttl": ttl},
            {"--read-from-replicas": read_from_replicas, "--baseline": baseline},
        )  # fmt: skip
        extra = (lambda namespace, image: runner.loadgen_objects(namespace, image, workers)) if workers else None
        _run_in_cluster(platform, overlay, image, args, reports, cluster_options, stand_up=False, extra=extra)
        return
    incluster.refuse_image(platform, image)
    if workers and platform not in incluster.IN_CLUSTER_PLATFORMS:
        raise HarnessError(f"--workers is for kind and kubernetes: on the {platform} platform, --processes sets the load processes")
    p = _platform(platform, overlay=overlay, cluster=cluster, state_dir=state_dir, **cluster_options)
    p.pods()  # a cluster that is not up fails here, in one sentence
    failed = False
    for w in chosen:
        run_dir, body = benchmark(
            p, w, options, reports, say=lambda msg: console.print(msg, markup=False, highlight=False), workers=workers
        )
        for phase in body["phases"]:
            out.print(
                f"{body['kind']} {phase['name']}: {phase['throughput']:.0f} ops/s, {phase['errors']} errors, {percentile_line(phase)}"
            )
        if body["capacity"]:
            c = body["capacity"]
            knee = f"{c['knee']['throughput']:.0f} ops/s" if c["knee"] else "none"
            out.print(f"  capacity at p99 ≤ {options.slo_p99_ms:g} ms: {c['capacity_at_slo']:.0f} ops/s; knee {knee}; "
                      f"limited by {c['saturation']['limited_by']} ({c['saturation']['why']})")  # fmt: skip
        if body["baseline"]:
            for tool, ratio in body["baseline"]["ratios"].items():
                b = body["baseline"]["tools"][tool]
                out.print(f"  vs {tool}: {b['rps']:.0f} ops/s p50 {b['p50_ms']:.3f} ms → harness/{tool} throughput "
                          f"{ratio['throughput']:.2f}, p50 {ratio['p50']:.2f}")  # fmt: skip
        console.print(f"report: {run_dir / 'index.html'}")
        failed = failed or body["outcome"] != "pass"
    if failed:
        raise typer.Exit(1)


@app.command("bench-self")
def bench_self(
    runs: Annotated[int, typer.Option("--runs", help="how many times to time each (the report gives medians)")] = 5,
    gate_too: Annotated[bool, typer.Option("--gate", help="also time the gating suites (several minutes a run)")] = False,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="with --gate: lanes side by side, as `run --jobs`")] = 1,
    cluster: ClusterOpt = "rh-bench-self",
    subnet: SubnetOpt = None,
    reports: Annotated[Path | None, typer.Option("--reports", help="reports directory")] = None,
) -> None:
    """Time the harness itself on the local platform: `up` and `down`, phase by phase, over several runs
    (and with --gate the gating suites); medians, minima and maxima in reports/<time>-bench-self/."""
    from harness.bench.self_timing import bench_self as measure

    lanes.check_jobs(jobs)

    run_dir, body = measure(
        runs, cluster, subnet, gate_too, reports, say=lambda m: console.print(m, markup=False, highlight=False), jobs=jobs
    )
    for part in ("up", "command line", "gate"):
        if part not in body:
            continue
        table = Table(title=f"{part}: seconds over {runs} run(s)")
        for col in ("phase", "median", "min", "max"):
            table.add_column(col)
        for name, s in body[part]["phases"].items():
            table.add_row(name, f"{s['median']:.2f}", f"{s['min']:.2f}", f"{s['max']:.2f}")
        out.print(table)
    console.print(f"report: {run_dir / 'report.json'}")


@report_app.command("compare")
def report_compare(
    old: Annotated[Path, typer.Argument(help="the earlier benchmark run directory")],
    new: Annotated[Path, typer.Argument(help="the later benchmark run directory")],
    slo_path: Annotated[Path | None, typer.Option("--slo", help="SLO file with the benchmark thresholds")] = None,
) -> None:
    """Deltas between two benchmark reports of the same workload, users and pipeline (others: exit 2); exit 1 when
    throughput dropped or p99 rose past the SLO file's thresholds, a phase ran in one report only, or either had errors."""
    from harness import slo as slo_file
    from harness.bench import compare

    slo = slo_file.load(slo_path)
    drop, rise = slo.benchmark("max_throughput_drop_percent"), slo.benchmark("max_p99_rise_percent")
    before, after = compare.load_report(old), compare.load_report(new)
    results = compare.deltas(before, after, drop, rise)
    table = Table(title=f"{old.name} → {new.name}")
    for col in ("phase", "metric", "old", "new", "change", "limit", "verdict"):
        table.add_column(col)
    for d in results:
        limit = (
            ""
            if d.limit_percent is None
            else (f"-{d.limit_percent:g} %" if d.metric == "throughput" else f"+{d.limit_percent:g} %")
        )
        colour = "red" if d.failed else "green"
        verdict = f"[{colour}]{d.verdict}[/]" if d.verdict else ""
        if d.missing:
            cells = ("absent" if d.old is None else "ran", "absent" if d.new is None else "ran", "")
        elif d.metric == "errors":
            cells = (f"{d.old:.0f}", f"{d.new:.0f}", "")
        else:
            cells = (f"{d.old:.3f}", f"{d.new:.3f}", f"{d.change_percent:+.1f} %")
        table.add_row(d.phase, d.metric, *cells, limit, verdict)
    out.print(table)
    missing = [d for d in results if d.missing]
    regressions = [d for d in results if d.regressed]
    out.print(
        f"errors: OLD {compare.errors(before)}, NEW {compare.errors(after)}; "
        f"phases in one report only: {len(missing)}{' (' + ', '.join(f'{d.phase}: {d.verdict}' for d in missing) + ')' if missing else ''}; "
        f"regressions: {len(regressions)}"
    )
    if any(d.failed for d in results):
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
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted; everything this run started was removed")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
