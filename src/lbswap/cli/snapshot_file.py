"""The snapshot file: ``lbswap snapshot -o FILE`` writes it whole or not at all, and ``lbswap fake seed
--from-snapshot FILE`` reads it back, every field checked against the model first."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

from lbswap import model
from lbswap.errors import BadInput


def snapshot_target(output: str) -> Path:
    """Where ``-o`` writes, checked up front: a missing directory or a read-only one is bad input."""
    target = Path(os.path.realpath(output))  # a symlink is followed, not replaced by the new file
    if target.is_dir():
        raise BadInput(f"cannot write the snapshot to {output}: it is a directory; name a file")
    if not target.parent.is_dir():
        raise BadInput(f"cannot write the snapshot to {output}: directory {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write the snapshot to {output}: directory {target.parent} is not writable")
    return target


def write_whole(target: Path, text: str, *, what: str) -> None:
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
