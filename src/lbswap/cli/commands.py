"""One function per command: open what it needs, call the core, and hand back what to show.

The cliff command classes (campaign.py, inventory.py, lab.py, fake.py) own the options and call these; a
handler returns an :class:`lbswap.cli.Output` (document, rich table, flat rows, exit code) or, for a document
that is no table, writes it with :func:`lbswap.cli.emit` and returns its exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tempfile
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lbswap import model
from lbswap.cli import Output, _rich_table, backend_spec, columns, emit, journal_path, state_home
from lbswap.cli.progress import ProgressView
from lbswap.clouds import Cloud, open_cloud
from lbswap.errors import BadInput, ConfigError
from lbswap.textsafe import rich_text, shown


@contextmanager
def stop_on_signals(campaigns: Callable[[], Sequence[str]]) -> Iterator[Any]:
    """SIGINT and SIGTERM ask every swap to stop at its next step boundary; a second SIGINT stops at once.

    ``campaigns`` names the campaigns under way when the signal comes, for the one line the operator reads.
    """
    import os
    import signal

    from lbswap.workflow.guard import StopRequest

    stop = StopRequest()
    codes = {signal.SIGINT: 130, signal.SIGTERM: 143}

    def resume_command() -> str:
        names = list(campaigns())
        return f"lbswap resume {names[0]}" if len(names) == 1 else "lbswap resume"

    def handler(signum: int, _frame: Any) -> None:
        names = " ".join(campaigns()) or "(none started)"
        if stop.is_set():
            if signum == signal.SIGINT:  # the second Ctrl-C forces: what is in flight is left to resume
                line = f"lbswap: campaign {names} stopped at once; `{resume_command()}` finishes it\n"
                os.write(2, line.encode())
                os._exit(130)
            return
        what = signal.Signals(signum).name
        stop.set(
            f"interrupted ({what}): campaign {names} stopped at its next step boundary; "
            f"`{resume_command()}` finishes it",
            codes[signal.Signals(signum)],
        )

    previous = {sig: signal.signal(sig, handler) for sig in codes}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def cloud_from(args: argparse.Namespace) -> Iterator[Cloud]:
    cloud = open_cloud(backend_spec(args))
    try:
        yield cloud
    finally:
        cloud.close()


# --- selection ---------------------------------------------------------------------------------------------


def _criteria(args: argparse.Namespace) -> Any:
    from lbswap.rotation import Criteria

    return Criteria(
        stale_image=args.stale_image,
        older_than_days=args.older_than,
        cert_expiring_within_days=args.cert_expiring_within,
        force=args.force,
        repair=args.repair,
    )


def _has_selection(args: argparse.Namespace) -> bool:
    return bool(args.lb or args.all or args.project or args.tag or args.provider or _criteria(args).any)


def select(cloud: Cloud, args: argparse.Namespace, *, default_all: bool) -> list[model.LBSummary]:
    from lbswap.plan import resolve_selection

    if not _has_selection(args) and not default_all:
        raise BadInput(
            "select load balancers with --lb ID_OR_NAME, --all, --tag, --project, or why to rotate: --stale-image, "
            "--older-than DAYS, --cert-expiring-within DAYS, --force, --repair"
        )
    everything = not args.lb and not args.tag and not args.project
    chosen = resolve_selection(
        cloud, names_or_ids=list(args.lb), all_=args.all or everything, project_id=args.project, tag=args.tag
    )
    if args.provider:
        chosen = [lb for lb in chosen if lb.provider == args.provider]
    criteria = _criteria(args)
    if criteria.any:  # why rotate: any one reason selects a load balancer
        from lbswap.rotation import ImageCatalog, reasons

        catalog = ImageCatalog(cloud, args.image_tag, args.image_owner)
        now = cloud.clock.now()
        kept = []
        for lb in chosen:
            newest = catalog.newest(lb.flavor_id)
            amphorae = cloud.list_amphorae(lb.id) if lb.provider == "amphora" else []
            if reasons(lb, amphorae, newest.id if newest else None, criteria, now):
                kept.append(lb)
        chosen = kept
    return chosen


def _newest_image(cloud: Cloud, tag: str) -> str | None:
    images = cloud.list_images(tag)
    return images[0].id if images else None


def _is_stale(amphorae: Sequence[model.Amphora], newest: str | None) -> bool | None:
    if newest is None or not amphorae:
        return None
    return any(a.image_id != newest for a in amphorae)


# --- inventory and snapshot --------------------------------------------------------------------------------


def cmd_inventory(args: argparse.Namespace) -> Output:
    from lbswap.rotation import ImageCatalog, age_days, cert_days_left, reasons

    with cloud_from(args) as cloud:
        catalog = ImageCatalog(cloud, args.image_tag, args.image_owner)
        now = cloud.clock.now()
        rows: list[dict[str, Any]] = []
        for summary in select(cloud, args, default_all=True):
            graph = cloud.read_graph(summary.id)
            tag = catalog.tag_for(graph.flavor_id)
            images = {i.id: i for i in catalog.images(tag)}
            newest = catalog.newest(graph.flavor_id)
            newest_id = newest.id if newest else None
            rows.append(
                {
                    "id": graph.id,
                    "name": graph.name,
                    "provisioning_status": graph.provisioning_status,
                    "operating_status": graph.operating_status,
                    "topology": graph.topology,
                    "provider": graph.provider,
                    "vip_address": graph.vip_address,
                    "vip_port_id": graph.vip_port_id,
                    "floating_ips": [
                        {"id": f.id, "floating_ip_address": f.floating_ip_address, "port_id": f.port_id}
                        for f in graph.floating_ips
                    ],
                    "tags": list(graph.tags),
                    "image_tag": tag,
                    "amphorae": [_amphora_row(a, images, now, age_days, cert_days_left) for a in graph.amphorae],
                    "newest_image_id": newest_id,
                    "stale_image": _is_stale(graph.amphorae, newest_id),
                    "rotate_because": reasons(summary, graph.amphorae, newest_id, _criteria(args), now),
                }
            )

    def table(data: list[dict[str, Any]]) -> None:
        _rich_table(
            "load balancers",
            columns.INVENTORY_TABLE,
            [
                (
                    r["id"],
                    r["name"],
                    f"{r['provisioning_status']}/{r['operating_status']}",
                    r["topology"],
                    r["vip_address"],
                    " ".join(f["floating_ip_address"] for f in r["floating_ips"]) or "-",
                    "\n".join(_amphora_cell(a) for a in r["amphorae"]) or "-",
                    _STALE[r["stale_image"]],
                )
                for r in data
            ],
        )

    flat = [
        (
            r["id"],
            r["name"],
            r["provisioning_status"],
            r["operating_status"],
            r["topology"],
            r["provider"],
            r["vip_address"],
            " ".join(f["floating_ip_address"] for f in r["floating_ips"]),
            " ".join(f"{a['role']}:{a['image_name'] or a['image_id']}" for a in r["amphorae"]),
            _STALE[r["stale_image"]],
            "; ".join(r["rotate_because"]),
        )
        for r in rows
    ]
    return Output(rows, table, columns.INVENTORY, flat)


_STALE = {True: "yes", False: "no", None: "unknown"}


def _amphora_row(amphora: Any, images: dict[str, Any], now: float, age: Any, cert: Any) -> dict[str, Any]:
    image = images.get(amphora.image_id)
    image_age = None
    if image is not None and image.created_at:
        from lbswap.rotation import epoch

        created = epoch(image.created_at)
        image_age = None if created is None else round((now - created) / 86400, 1)
    amphora_age, cert_left = age(amphora, now), cert(amphora, now)
    return {
        "id": amphora.id,
        "role": amphora.role,
        "image_id": amphora.image_id,
        "image_name": image.name if image else None,
        "image_age_days": image_age,
        "age_days": None if amphora_age is None else round(amphora_age, 1),
        "cert_expires_in_days": None if cert_left is None else round(cert_left, 1),
    }


def _amphora_cell(a: dict[str, Any]) -> str:
    def days(value: float | None) -> str:
        return "?" if value is None else f"{value:.0f}d"

    image = a["image_name"] or a["image_id"]
    return f"{a['role']}: {image} ({days(a['image_age_days'])} old), up {days(a['age_days'])}, " + (
        f"cert {days(a['cert_expires_in_days'])}"
    )


def cmd_snapshot(args: argparse.Namespace) -> int:
    target = _snapshot_target(args.output) if args.output else None  # before reading a whole fleet
    with cloud_from(args) as cloud:
        graphs = [model.to_json(cloud.read_graph(lb.id)) for lb in select(cloud, args, default_all=True)]
    text = json.dumps({"lbswap_snapshot": 1, "load_balancers": graphs}, indent=2) + "\n"
    if target is None:
        sys.stdout.write(text)
        return 0
    _write_whole(target, text, what="the snapshot")
    print(f"wrote {len(graphs)} load balancer graph(s) to {shown(args.output)}", file=sys.stderr)
    if args.format != "table":  # a JSON or YAML reader still gets its one document
        emit({"output": str(target), "load_balancers": len(graphs)}, args.format)
    return 0


def _snapshot_target(output: str) -> Path:
    """Where ``-o`` writes, checked up front: a missing directory or a read-only one is bad input."""
    target = Path(os.path.realpath(output))  # a symlink is followed, not replaced by the new file
    if target.is_dir():
        raise BadInput(f"cannot write the snapshot to {output}: it is a directory; name a file")
    if not target.parent.is_dir():
        raise BadInput(f"cannot write the snapshot to {output}: directory {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write the snapshot to {output}: directory {target.parent} is not writable")
    return target


def _write_whole(target: Path, text: str, *, what: str) -> None:
    """Write ``text`` to ``target`` all or nothing (a temporary file in the same directory, renamed; 0600).
    A device or FIFO (``-o /dev/stdout``) is written directly, never replaced."""
    try:
        if target.exists() and not target.is_file():
            with target.open("w", encoding="utf-8") as f:
                f.write(text)
            return
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise BadInput(f"cannot write {what} to {target}: {exc.strerror or exc}; nothing was written") from None


def read_snapshot(path: str) -> list[model.LoadBalancer]:
    """The load balancers of an ``lbswap snapshot`` file, every field checked against the model first, so
    a bad file is one line naming the load balancer and the field (exit 2), never a Python error."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"snapshot file {path} does not exist") from None
    except OSError as exc:
        raise BadInput(f"cannot read snapshot file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # JSON syntax, or not UTF-8
        raise BadInput(f"snapshot file {path} is not JSON: {exc}") from None
    graphs = document.get("load_balancers") if isinstance(document, dict) else None
    if not isinstance(graphs, list):
        raise BadInput(f"snapshot file {path} is not an `lbswap snapshot` document: no list of load_balancers")
    seen: dict[str, int] = {}
    fips: dict[str, int] = {}
    for index, graph in enumerate(graphs):
        where = f"load_balancers[{index}]"
        if isinstance(graph, dict) and isinstance(graph.get("id"), str):
            where += f" (id {_quoted(graph['id'])})"
        problem = _field_problem(model.LoadBalancer, graph, "") or _reference_problem(graph)
        if problem:
            raise BadInput(f"snapshot file {path}: {where}: {problem}")
        if graph["id"] in seen:
            raise BadInput(
                f"snapshot file {path}: load_balancers[{seen[graph['id']]}] and load_balancers[{index}] have the "
                f"same id {_quoted(graph['id'])}; ids must be unique"
            )
        seen[graph["id"]] = index
        for j, fip in enumerate(graph.get("floating_ips", [])):
            if fip["id"] in fips:
                other = fips[fip["id"]]
                also = "appears twice" if other == index else f"is also a floating IP of load_balancers[{other}]"
                raise BadInput(
                    f"snapshot file {path}: {where}: field floating_ips[{j}].id {_quoted(fip['id'])} {also}; "
                    "a floating IP points at one load balancer"
                )
            fips[fip["id"]] = index
    return [model.from_json(model.LoadBalancer, g) for g in graphs]


def _reference_problem(graph: dict[str, Any]) -> str | None:
    """A pool id that a listener or an L7 policy names but the load balancer does not have (a clone or a
    seeded copy is built by pool name, so it could not say which pool was meant)."""
    pools = {pool.get("id") for pool in graph.get("pools", [])}
    for i, listener in enumerate(graph.get("listeners", [])):
        refs = [(f"listeners[{i}].default_pool_id", listener.get("default_pool_id"))]
        refs += [
            (f"listeners[{i}].l7policies[{j}].redirect_pool_id", policy.get("redirect_pool_id"))
            for j, policy in enumerate(listener.get("l7policies", []))
        ]
        for field, pool_id in refs:
            if pool_id is not None and pool_id not in pools:
                return f"field {field} names pool {_quoted(pool_id)}, which is not in its pools"
    return None


def _quoted(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


_SCALARS: dict[Any, tuple[tuple[type, ...], str]] = {
    str: ((str,), "a string"),
    int: ((int,), "a whole number"),
    float: ((int, float), "a number"),
    bool: ((bool,), "true or false"),
}


def _field_problem(tp: Any, data: Any, field: str) -> str | None:
    """What is wrong with ``data`` as a ``tp`` (the model's types, as ``model.from_json`` reads them), or None."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        problems = [_field_problem(a, data, field) for a in options]
        return None if any(p is None for p in problems) else problems[0]
    if data is None:
        return f"field {field} is null"
    if origin is tuple:
        if not isinstance(data, list):
            return f"field {field} must be a list, not {_quoted(data)}"
        (item,) = typing.get_args(tp)[:1]
        for i, value in enumerate(data):
            problem = _field_problem(item, value, f"{field}[{i}]")
            if problem:
                return problem
        return None
    if origin is dict or tp is dict:
        return None if isinstance(data, dict) else f"field {field} must be an object, not {_quoted(data)}"
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(data, dict):
            return f"{('field ' + field) if field else 'it'} must be an object, not {_quoted(data)}"
        hints = typing.get_type_hints(tp)
        for f in dataclasses.fields(tp):
            name = f"{field}.{f.name}" if field else f.name
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if f.name not in data:
                if required:
                    return f"field {name} is missing"
                continue
            problem = _field_problem(hints[f.name], data[f.name], name)
            if problem:
                return problem
        return None
    if tp in _SCALARS:
        kinds, wanted = _SCALARS[tp]
        if (isinstance(data, bool) and tp is not bool) or not isinstance(data, kinds):
            return f"field {field} must be {wanted}, not {_quoted(data)}"
    return None


# --- plan and run ------------------------------------------------------------------------------------------


def _plan_options(args: argparse.Namespace) -> Any:
    from lbswap.clone import TargetChanges
    from lbswap.plan import PlanOptions

    return PlanOptions(
        strategy=args.strategy,
        target=TargetChanges(availability_zone=args.target_az, provider=args.target_provider),
        target_flavor=args.target_flavor,
        allow_downtime=args.allow_downtime,
        image_tag=args.image_tag,
        parallel=args.parallel,
        accept_address_change=args.accept_address_change,
        image_owner=args.image_owner,
        force=args.force,
        repair=args.repair,
        owned_tags=tuple(args.owned_tag),
        allow_owned=tuple(args.allow_owned),
        max_creating=args.max_creating,
        verify=args.verify,
        verify_path=args.verify_path,
        verify_host=args.verify_host,
        verify_udp_payload=args.verify_udp_payload,
        watch=args.watch,
        watch_max_errors=args.watch_max_errors,
    )


def _plans(cloud: Cloud, args: argparse.Namespace, chosen: list[model.LBSummary] | None = None) -> list[Any]:
    from lbswap.plan import make_plans

    chosen = select(cloud, args, default_all=False) if chosen is None else chosen
    if not chosen:
        raise BadInput("the selection matches no load balancer")
    return make_plans(cloud, [lb.id for lb in chosen], _plan_options(args))


def _plan_rows(plans: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": p.lb_id,
            "name": p.lb_name,
            "strategy": p.strategy,
            "downtime": p.downtime,
            "blocking": p.blocking,
            "addresses": [a.to_json() for a in p.addresses],
            "owners": [{"kind": o.kind, "owner": o.detail, "follow_up": o.follow_up} for o in p.owners],
            "findings": [{"code": f.code, "message": f.message, "blocking": f.blocking} for f in p.findings],
            "verify": {
                "runs": p.checks.verify,
                "detail": p.checks.verify_detail,
                "listeners": dict(p.checks.listeners),
            },
            "watch": {"seconds": p.checks.watch_seconds, "detail": p.checks.watch_detail},
        }
        for p in plans
    ]


def _checks_lines(row: dict[str, Any]) -> list[str]:
    """The plan's verify and watch, a line each and one per listener verified: what runs, or why not."""
    verify = row["verify"]
    lines = [f"verify: {verify['detail'] or '-'}"]
    lines += [f"  {label}: {what}" for label, what in verify["listeners"].items()]
    return [*lines, f"watch: {row['watch']['detail'] or '-'}"]


def _plan_table(rows: list[dict[str, Any]]) -> None:
    from rich.text import Text

    newline = Text("\n")  # a line break between shown lines (rich_text would show it as an escape)
    _rich_table(
        "plan",
        columns.PLAN_TABLE,
        [
            (
                r["id"],
                r["name"],
                r["strategy"] or "-",
                r["downtime"],
                " ".join(a["address"] or "?" for a in r["addresses"] if not a["kept"]) or "none",
                newline.join(rich_text(line) for line in _checks_lines(r)),
                newline.join(rich_text(("BLOCKS: " if f["blocking"] else "") + f["message"]) for f in r["findings"])
                or "-",
            )
            for r in rows
        ],
    )


def _blocking_error(plans: Sequence[Any]) -> BadInput:
    lines = [f.message for p in plans for f in p.findings if f.blocking]
    first = lines[0]
    more = f" (and {len(lines) - 1} more blocking finding(s): see `lbswap plan`)" if len(lines) > 1 else ""
    return BadInput(first + more)


def _plan_output(plans: Sequence[Any], exit_code: int) -> Output:
    rows = _plan_rows(plans)
    flat = [
        (
            r["id"],
            r["name"],
            r["strategy"] or "",
            r["downtime"],
            r["blocking"],
            " ".join(a["address"] or "?" for a in r["addresses"] if not a["kept"]),
            "; ".join(("BLOCKS: " if f["blocking"] else "") + f["message"] for f in r["findings"]),
            "; ".join([r["verify"]["detail"], *(f"{k}: {v}" for k, v in r["verify"]["listeners"].items())]),
            r["watch"]["detail"],
        )
        for r in rows
    ]
    return Output(rows, _plan_table, columns.PLAN, flat, exit_code)


def cmd_plan(args: argparse.Namespace) -> Output:
    with cloud_from(args) as cloud:
        plans = _plans(cloud, args)
    return _plan_output(plans, 2 if any(p.blocking for p in plans) else 0)


def _swap_options(args: argparse.Namespace) -> Any:
    from lbswap.workflow.runner import SwapOptions

    return SwapOptions(
        drain_timeout=args.drain_timeout,
        keep_source_minutes=args.keep_source,
        image_tag=args.image_tag,
        image_owner=args.image_owner,
        force=args.force,
        repair=args.repair,
        verify=args.verify,
        verify_path=args.verify_path,
        verify_host=args.verify_host,
        verify_udp_payload=args.verify_udp_payload,
        watch=args.watch,
        watch_max_errors=args.watch_max_errors,
    )


def cmd_run(args: argparse.Namespace) -> Output:
    from lbswap.journal import Journal
    from lbswap.workflow.runner import new_campaign_id, run_campaign

    journal = Journal(journal_path(args))
    journal.backend  # noqa: B018 - taskflow's tables now, so that a full disk shows before anything changes
    with cloud_from(args) as cloud:
        chosen = select(cloud, args, default_all=False)
        journal.check_free([lb.id for lb in chosen])  # before planning: the holder is the clearest reason
        plans = _plans(cloud, args, chosen)
        if any(p.blocking for p in plans):
            raise _blocking_error(plans)
        if args.dry_run:
            return _plan_output(plans, 0)
        if not args.yes:
            _confirm(plans, args)
        campaign_id = new_campaign_id()
        with (
            stop_on_signals(lambda: [campaign_id]) as stop,
            ProgressView(plans, enabled=args.format == "table") as view,
        ):
            result = run_campaign(
                cloud,
                journal,
                plans,
                _swap_options(args),
                policy=_policy(args),
                on_event=view,
                campaign_id=campaign_id,
                stop=stop,
            )
    return _render_campaigns([result], args)


def _policy(args: argparse.Namespace) -> Any:
    from lbswap.workflow.runner import FleetPolicy

    return FleetPolicy(
        parallel=args.parallel,
        canary=args.canary,
        max_failures=args.max_failures or None,
        rate=args.rate,
        max_creating=args.max_creating,
    )


def _confirm(plans: Sequence[Any], args: argparse.Namespace) -> None:
    if not sys.stdin.isatty():
        raise BadInput("not a terminal: review `lbswap plan`, then run again with --yes")
    _plan_table(_plan_rows(plans))
    answer = input(f"Upgrade {len(plans)} load balancer(s) as planned? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise BadInput("cancelled; nothing changed")


# --- campaigns ---------------------------------------------------------------------------------------------


STATES = ("done", "running", "kept", "rolled_back", "failed", "skipped", "pending")
FAILURES = ("failed", "rolled_back")


def _counts(swaps: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for swap in swaps:
        counts[swap["state"]] = counts.get(swap["state"], 0) + 1
    return counts


def _render_campaigns(results: Sequence[Any], args: argparse.Namespace) -> Output:
    from lbswap.report import write_report

    data = [{**r.to_json(), "counts": _counts([s.to_json() for s in r.swaps])} for r in results]
    for result in results:
        if result.swaps:
            try:
                path = write_report(result, state_home() / "reports")
            except OSError as exc:  # the campaign itself is recorded; only the ticket attachment is missing
                print(f"lbswap: warning: no report written: {shown(exc)}", file=sys.stderr)
            else:
                print(f"report: {shown(path)}", file=sys.stderr)
    failed = any(s.state in ("failed", "rolled_back", "skipped") for r in results for s in r.swaps)
    flat = [
        (
            c["campaign_id"],
            s["id"],
            s["name"],
            s["strategy"],
            s["state"],
            s["clone_id"] or "",
            " ".join(f["floating_ip_address"] for f in s["flips"]),
            s["error"] or "",
        )
        for c in data
        for s in c["swaps"]
    ]
    return Output(
        data if len(data) != 1 or args.command in ("status", "resume") else data[0],
        lambda d: _campaign_tables(d if isinstance(d, list) else [d], args),
        columns.SWAPS,
        flat,
        1 if failed else 0,
    )


def _campaign_tables(campaigns: Sequence[dict[str, Any]], args: argparse.Namespace) -> None:
    """Per campaign: the count per state first, then failures, then the rest; the skipped (a whole fleet
    after the breaker opened) in one line unless ``--show-skipped``."""
    show_skipped = getattr(args, "show_skipped", False)
    for campaign in campaigns:
        swaps = sorted(campaign["swaps"], key=lambda s: FAILURES.index(s["state"]) if s["state"] in FAILURES else 2)
        skipped = [s for s in swaps if s["state"] == "skipped"]
        shown_swaps = swaps if show_skipped else [s for s in swaps if s["state"] != "skipped"]
        counts = ", ".join(f"{state} {n}" for state, n in campaign["counts"].items())
        print(f"campaign {shown(campaign['campaign_id'])}: {len(swaps)} load balancer(s): {shown(counts)}")
        if shown_swaps:
            _rich_table(
                f"campaign {campaign['campaign_id']} ({campaign['state']}, backend {campaign['backend']})",
                columns.SWAPS_TABLE,
                [
                    (
                        s["id"],
                        s["name"],
                        s["strategy"],
                        s["state"],
                        s["clone_id"] or "-",
                        " ".join(f"{f['floating_ip_address']}" for f in s["flips"]) or "-",
                        s["error"] or "",
                    )
                    for s in shown_swaps
                ],
            )
        if skipped and not show_skipped:
            print(_skipped_line(skipped, campaign["campaign_id"], listing=args.command == "status"))


def _skipped_line(skipped: Sequence[dict[str, Any]], campaign_id: str, *, listing: bool) -> str:
    reasons = {re.sub(r"; nothing was changed on it$", "", s["error"] or "") for s in skipped}
    why = reasons.pop() if len(reasons) == 1 and next(iter(reasons)) else "not started"
    how = "--show-skipped lists them" if listing else f"`lbswap status {campaign_id} --show-skipped` lists them"
    return shown(f"{len(skipped)} skipped: {why}; nothing was changed on them ({how})")


def _journal(args: argparse.Namespace, *, for_writing: bool = True) -> Any:
    from lbswap.journal import Journal

    path = journal_path(args)
    if not path.exists():
        raise BadInput(
            f"no journal at {path}: no campaign has run with it (use --journal PATH); "
            "if it was lost, `lbswap recover` finds unfinished swaps from the cloud's marker tags"
        )
    return Journal(path, for_writing=for_writing)


def _unfinished(journal: Any, campaign: str | None) -> list[str]:
    from lbswap.workflow.runner import status

    return [r.campaign_id for r in status(journal, campaign) if r.state == "unfinished"]


def _cloud_if_given(args: argparse.Namespace) -> Cloud | None:
    """Resume and rollback reopen the campaign's own backend unless the operator names one."""
    return open_cloud(backend_spec(args)) if (args.backend or args.os_cloud) else None


def cmd_status(args: argparse.Namespace) -> Output:
    from lbswap.workflow.runner import status

    results = status(_journal(args, for_writing=False), args.campaign)
    output = _render_campaigns(results, args)
    output.exit_code = 0
    return output


def cmd_resume(args: argparse.Namespace) -> Output:
    from lbswap.workflow.runner import resume

    journal = _journal(args)
    under_way = _unfinished(journal, args.campaign)
    with stop_on_signals(lambda: under_way) as stop, ProgressView([], enabled=args.format == "table") as view:
        results = resume(journal, args.campaign, on_event=view, cloud=_cloud_if_given(args), stop=stop)
    return _render_campaigns(results, args)


def cmd_rollback(args: argparse.Namespace) -> Output:
    """Exit 1 when a swap it was asked to roll back is not rolled back (refused, or the rollback failed)."""
    from lbswap.workflow.runner import rollback

    journal = _journal(args)
    with stop_on_signals(lambda: [args.campaign]) as stop, ProgressView([], enabled=args.format == "table") as view:
        result = rollback(journal, args.campaign, lb_id=args.lb, on_event=view, cloud=_cloud_if_given(args), stop=stop)
    output = _render_campaigns([result], args)
    if args.lb:  # asked for this one, whatever its state
        left = [s for s in result.swaps if args.lb in (s.id, s.name) and s.state != "rolled_back"]
    else:  # asked for every swap not already done or rolled back: those must now be rolled back
        left = [s for s in result.swaps if s.state not in ("rolled_back", "done")]
    output.exit_code = 1 if left else 0
    return output


def cmd_finalize(args: argparse.Namespace) -> Output:
    from lbswap.workflow.runner import finalize

    journal = _journal(args)
    with stop_on_signals(lambda: [args.campaign]) as stop, ProgressView([], enabled=args.format == "table") as view:
        result = finalize(journal, args.campaign, on_event=view, cloud=_cloud_if_given(args), stop=stop)
    return _render_campaigns([result], args)


def cmd_recover(args: argparse.Namespace) -> Output:
    from lbswap import recover
    from lbswap.journal import Journal
    from lbswap.workflow.tasks import SwapOptions

    with cloud_from(args) as cloud:
        found = recover.find(cloud, campaign=args.campaign)
        path = journal_path(args)
        if path.exists() and path.stat().st_size:  # a live driver of one of these campaigns: leave it be
            journal = Journal(path, for_writing=False)
            for item in found:
                lease = journal.lease(item.campaign) if item.campaign else None
                if lease is not None and lease.holder.alive():
                    raise BadInput(
                        f"campaign {item.campaign} is being driven by {lease.describe()}: "
                        "recover is for campaigns whose journal is lost; let it finish"
                    )
        rows = [r.to_json() for r in found]
        if args.dry_run or not found:
            return _recover_output(rows, 0)
        if not args.yes:
            if not sys.stdin.isatty():
                raise BadInput("not a terminal: review `lbswap recover --dry-run`, then run again with --yes")
            _recover_table(rows)
            if input(f"Carry out {len(rows)} recovery action(s)? [y/N] ").strip().lower() not in ("y", "yes"):
                raise BadInput("cancelled; nothing changed")
        view = ProgressView([], enabled=args.format == "table")
        with view:
            done = recover.carry_out(
                cloud,
                found,
                options=SwapOptions(drain_timeout=args.drain_timeout),
                emit=lambda lb, step, status, message: view(_RecoverEvent(lb, step, status, message)),
            )
    results = [{**item.to_json(), "error": error} for item, error in done]
    return _recover_output(results, 1 if any(error for _item, error in done) else 0)


def _recover_output(rows: list[dict[str, Any]], exit_code: int) -> Output:
    flat = [
        (
            r["action"],
            r["source_id"] or "",
            r["source_name"],
            r["clone_id"] or "",
            r["campaign"] or "",
            " ".join(r["floating_ips"]),
            r["reason"],
            r.get("error") or "",
        )
        for r in rows
    ]
    return Output(rows, _recover_table, columns.RECOVERY, flat, exit_code)


class _RecoverEvent:
    def __init__(self, lb_id: str, step: str, status: str, message: str) -> None:
        self.lb_id, self.lb_name, self.step, self.status, self.message = lb_id, "", step, status, message


def _recover_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("nothing to recover: no clone stands beside its source and no temporary floating IP is left")
        return
    _rich_table(
        "recovery",
        columns.RECOVERY_TABLE,
        [
            (
                r["action"],
                r["source_id"] or "-",
                r["source_name"],
                r["clone_id"] or "-",
                r["campaign"] or "-",
                " ".join(r["floating_ips"]) or "-",
                r["reason"],
                r.get("error") or "",
            )
            for r in rows
        ],
    )


def cmd_report(args: argparse.Namespace) -> Output:
    from lbswap.report import write_report
    from lbswap.workflow.runner import status

    (result,) = status(_journal(args), args.campaign)
    directory = Path(args.output) if args.output else state_home() / "reports"
    try:
        path = write_report(result, directory)
    except OSError as exc:
        raise BadInput(f"cannot write the report to {directory}: {exc.strerror or exc}") from None
    document = {"markdown": str(path), "json": str(path.with_suffix(".json"))}
    return Output(
        document, lambda d: print(shown(d["markdown"])), columns.REPORT, [(document["markdown"], document["json"])]
    )


# --- backends' own commands --------------------------------------------------------------------------------


def cmd_fake_seed(args: argparse.Namespace) -> int:
    from lbswap.clouds import fake

    graphs = None if args.sample else read_snapshot(args.from_snapshot)
    if Path(args.path).exists() and not args.force:
        raise ConfigError(
            f"{args.path} already exists and a campaign's journal may refer to the cloud in it: "
            "give --force to replace it, or another PATH"
        )
    if graphs is None:
        ids = fake.seed_sample(args.path, args.sample, seed=args.seed)
    else:
        ids = fake.seed_from_snapshot(args.path, graphs)
    emit(
        {"path": args.path, "load_balancers": ids},
        args.format,
        table=lambda d: print(f"seeded {len(d['load_balancers'])} load balancer(s) in {d['path']}"),
    )
    return 0


def cmd_fake_publish_image(args: argparse.Namespace) -> int:
    from lbswap.clouds import fake

    cloud = fake.FakeCloud(args.path)
    image = cloud.publish_image(
        args.name, tuple(args.tag or ["amphora"]), fault=args.fault, fault_after=args.fault_after
    )
    cloud.close()
    emit(model.to_json(image), args.format, table=lambda d: print(f"published image {d['id']} ({d['name']})"))
    return 0


def cmd_fake_faults(args: argparse.Namespace) -> int:
    from lbswap.clouds import fake

    if args.clear:
        fake.clear_faults(args.path)
    else:
        fake.set_faults(
            args.path,
            latency=args.latency,
            fail_at=args.fail_at,
            fail_kind=args.fail_kind,
            fail_probability=args.fail_probability,
            crash_at=args.crash_at,
            drain_seconds=args.drain_seconds,
            read_error_probability=args.fail_reads,
            subnet_free=dict(args.subnet_free),
        )
    return 0


def cmd_local(args: argparse.Namespace) -> int:
    from lbswap.clouds.local import LocalCloud

    spec = backend_spec(args)
    cloud = LocalCloud(spec.partition(":")[2] or None if spec.startswith("local") else None)
    if args.action == "up":
        result = cloud.up(boot_seconds=args.boot_seconds)
        if args.flush_conntrack:
            cloud.configure(flush_conntrack=True)
        if args.sample:
            from lbswap.demo import sample_shapes, seed

            existing = {lb.name for lb in cloud.list_load_balancers()}
            seed(cloud, [shape for shape in sample_shapes(args.sample) if shape[0] not in existing])
            result = cloud.status()
    elif args.action == "publish-image":
        image = cloud.publish_image(
            args.image or args.name,
            args.tag or ["amphora"],
            template=args.template,
            fault=args.fault,
            fault_after=args.fault_after,
        )
        result = to_plain(image)
    else:
        result = getattr(cloud, args.action)()
    emit(result, args.format)
    return 0


def to_plain(obj: Any) -> Any:
    return model.to_json(obj)


def _pair(rows: dict[str, dict[str, Any]], key: str, fmt: Callable[[dict[str, Any]], str]) -> list[str]:
    return [fmt(rows[s]) if s in rows else "-" for s in ("fip-swap", "failover")]


def cmd_demo(args: argparse.Namespace) -> int:
    from lbswap.demo import run_demo

    with ProgressView([], enabled=args.format == "table") as view:
        result = run_demo(args.state_dir, on_event=view, keep=args.keep, boot_seconds=args.boot_seconds, rate=args.rate)

    def table(data: dict[str, Any]) -> None:
        shapes: dict[str, dict[str, dict[str, Any]]] = {}
        for r in data["results"]:
            shape = r["lb"].removeprefix(r["strategy"] + "-")
            shapes.setdefault(shape, {})[r["strategy"]] = r
        rows = []
        for shape, by_strategy in shapes.items():
            first = next(iter(by_strategy.values()))
            rows.append(
                (
                    shape,
                    first["topology"],
                    *_pair(by_strategy, "failed", lambda r: f"{r['failed']}/{r['attempts']}"),
                    *_pair(by_strategy, "gap", lambda r: f"{r['longest_gap_ms']:.0f}"),
                    *_pair(by_strategy, "cut", lambda r: f"{r['long_lived_cut']}/{r['long_lived_total']}"),
                    *_pair(by_strategy, "seconds", lambda r: f"{r['upgrade_seconds']}"),
                )
            )
        from rich.console import Console
        from rich.table import Table

        grid = Table(
            title="fip-swap next to failover: twin load balancers, same probe",
            caption="failed: new connections failed/attempted; gap: longest time without a successful new "
            "connection; cut: long-lived streams cut/opened; seconds: time to upgrade",
        )
        grid.add_column("load balancer", no_wrap=True)
        grid.add_column("topology", no_wrap=True)
        for what in ("failed", "gap ms", "cut", "seconds"):
            grid.add_column(f"{what}\nfip-swap", justify="right", no_wrap=True)
            grid.add_column(f"{what}\nfailover", justify="right", no_wrap=True)
        for row in rows:
            grid.add_row(*row)
        Console(width=max(132, Console().width)).print(grid)
        print(
            f"failover includes a modeled rebuild window of {data['rebuild_window_seconds']:g} s "
            "(stands for Octavia's VM boot and plugging; real clouds take longer)"
        )
        for r in data["results"]:
            if r.get("scenario") == "bad-image":  # the fip-swap to a broken image: caught before the flip?
                print(f"bad image: {r['lb']} {r['state']} (verify {r['verify']}), {r['failed']} failed new connections")
        print(f"report: {data['report']}\ntimeline: {data['timeline']}")

    emit(result, args.format, table=table)
    return 0
