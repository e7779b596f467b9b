"""An Octavia compute driver whose servers are network namespaces running Octavia's own amphora agent.

Octavia loads it through the ``octavia.compute.drivers`` entry point (``lbswap_namespace_compute``, declared
by scripts/local-cloud.sh for the cloud's virtualenv). What Nova and a VM would do, done on this host:

- a server is a network namespace ``lcamp-<compute id>`` with a private mount namespace inside it (its own
  /run as a tmpfs, overlays on /etc and /var, its own /usr/local/bin and systemd unit directory), the config
  drive's files copied where the agent expects them, and ``amphora-agent`` started in it (assets/amphora-boot.sh);
- every process of a server lives in its own cgroup (cgroup v2), so delete and failover kill all of it,
  including haproxy in the agent's nested ``amphora-haproxy`` namespace;
- a Neutron port is plugged as a veth (lbswap.localcloud.ovs): the server's end carries the port's MAC (the
  agent finds its NICs by MAC), the host's end joins Open vSwitch's integration bridge with the port's id, so
  Neutron's Open vSwitch agent binds it (ACTIVE); the port's device_id is set to the server and its binding
  host to the agents' host, as Nova does (Octavia's network driver finds a server's ports by device_id);
- the management port gets its fixed IP on the server's side, as cloud-init would from DHCP;
- images: a small catalog (JSON) kept by the driver, with tags, owners and creation times; Octavia asks for the
  newest image with a tag (and owner), as from Glance.

The driver never raises from delete for what is already gone; a server whose cgroup emptied is ERROR with the
end of its console as the fault.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from octavia.common import clients, constants, data_models, exceptions
from octavia.compute import compute_base
from oslo_config import cfg
from oslo_log import log as logging

from lbswap.localcloud import ovs
from lbswap.localcloud.names import find_image, host_veth_name, netns_name

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

OPTS = [
    cfg.StrOpt("integration_bridge", default="lcbr-int", help="Open vSwitch bridge that ports are plugged into."),
    cfg.StrOpt("ovsdb", default="unix:/opt/lbswap-localcloud/run/ovs/db.sock", help="Open vSwitch's database."),
    cfg.StrOpt("host", default="lbswap-localcloud", help="The agents' host: ports are bound to it."),
    cfg.StrOpt("state_dir", default="/opt/lbswap-localcloud/servers", help="One directory per server."),
    cfg.StrOpt("cgroup_dir", default="/sys/fs/cgroup/unified/lbswap-localcloud", help="Parent of server cgroups."),
    cfg.StrOpt("image_catalog", default="/opt/lbswap-localcloud/images.json", help="The image catalog (JSON)."),
    cfg.StrOpt("agent_bin_dir", default=os.path.dirname(sys.executable), help="Where amphora-agent is."),
]
CONF.register_opts(OPTS, group="lbswap_localcloud")

ASSETS = Path(__file__).resolve().parent / "assets"
DEVICE_OWNER = "compute:lbswap-localcloud"
BOOT_TIMEOUT = 10.0
KILL_TIMEOUT = 10.0


_run = ovs.run
_quiet = ovs.quiet


class NamespaceCompute(compute_base.ComputeBase):  # type: ignore[misc]
    """Servers as namespaces on this host (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.conf = CONF.lbswap_localcloud
        self._neutron: Any = None

    # -- helpers -------------------------------------------------------------------------------------------
    @property
    def network(self) -> Any:
        if self._neutron is None:
            self._neutron = clients.NeutronAuth.get_neutron_client().network
        return self._neutron

    def _dir(self, compute_id: str) -> Path:
        return Path(self.conf.state_dir) / compute_id

    def _cgroup(self, compute_id: str) -> Path:
        return Path(self.conf.cgroup_dir) / compute_id

    @contextlib.contextmanager
    def _locked(self, compute_id: str) -> Iterator[dict[str, Any]]:
        """The server's record, read and written back under a lock (threads and processes)."""
        path = self._dir(compute_id)
        if not path.is_dir():
            raise exceptions.NotFound(resource="Instance", id=compute_id)
        with open(path / "lock", "a") as lock:  # one open file each: flock excludes threads too
            fcntl.flock(lock, fcntl.LOCK_EX)
            meta = json.loads((path / "server.json").read_text())
            try:
                yield meta
            finally:  # what was plugged before a failure is recorded, so that delete releases it
                tmp = path / "server.json.tmp"
                tmp.write_text(json.dumps(meta, indent=1))
                tmp.replace(path / "server.json")

    def _populated(self, compute_id: str) -> bool:
        try:
            events = (self._cgroup(compute_id) / "cgroup.events").read_text()
        except OSError:
            return False
        return "populated 1" in events

    def _plug(self, compute_id: str, port: Any) -> dict[str, Any]:
        """A veth for the port: the server's end with the port's MAC, the host's end on the integration bridge."""
        ns = netns_name(compute_id)
        existing = _run("ip", "-n", ns, "-o", "link", "show")
        index = 0
        while f": eth{index}:" in existing or f": eth{index}@" in existing:
            index += 1
        inner, outer = f"eth{index}", host_veth_name(port.id)
        ovs.plug(
            ns,
            inner,
            outer,
            self.conf.integration_bridge,
            self.conf.ovsdb,
            mac=port.mac_address,
            port_id=port.id,
        )
        fixed_ips = [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]} for ip in port.fixed_ips]
        return {"port_id": port.id, "network_id": port.network_id, "fixed_ips": fixed_ips, "inner": inner}

    def _release_port(self, compute_id: str, plugged: dict[str, Any]) -> None:
        ovs.unplug(host_veth_name(plugged["port_id"]), self.conf.integration_bridge, self.conf.ovsdb)
        try:
            if plugged.get("created"):
                self.network.delete_port(plugged["port_id"], ignore_missing=True)
                return
            port = self.network.get_port(plugged["port_id"])
            if port.device_id == compute_id:
                self.network.update_port(port.id, device_id="")  # unbound; its owner (Octavia) keeps it
        except Exception as e:  # a port Octavia deleted already
            LOG.debug("port %s of %s: %s", plugged["port_id"], compute_id, e)

    # -- ComputeBase ---------------------------------------------------------------------------------------
    def build(
        self,
        name: str = "amphora_name",
        amphora_flavor: str | None = None,
        image_tag: str | None = None,
        image_owner: str | None = None,
        key_name: str | None = None,
        sec_groups: list[str] | None = None,
        network_ids: list[str] | None = None,
        port_ids: list[str] | None = None,
        config_drive_files: dict[str, Any] | None = None,
        user_data: str | None = None,
        server_group_id: str | None = None,
        availability_zone: dict[str, Any] | None = None,
    ) -> str:
        compute_id = str(uuid.uuid4())
        path = self._dir(compute_id)
        try:
            image = find_image(json.loads(Path(self.conf.image_catalog).read_text()), image_tag, image_owner)
            path.mkdir(parents=True)
            meta: dict[str, Any] = {
                "id": compute_id,
                "name": name,
                "flavor": amphora_flavor,
                "image_id": image["id"],
                "created_at": time.time(),
                "ports": [],
            }
            (path / "server.json").write_text(json.dumps(meta, indent=1))
            self._write_drive(path, config_drive_files or {}, user_data)
            _run("ip", "netns", "add", netns_name(compute_id))
            _run("ip", "-n", netns_name(compute_id), "link", "set", "lo", "up")
            with self._locked(compute_id) as meta:
                for net_id in network_ids or []:
                    port = self.network.create_port(
                        network_id=net_id,
                        name=f"{name}-{net_id[:8]}",
                        device_id=compute_id,
                        device_owner=DEVICE_OWNER,
                        binding_host_id=self.conf.host,
                    )
                    meta["ports"].append({**self._plug(compute_id, port), "created": True})
                for port_id in port_ids or []:
                    port = self.network.update_port(port_id, device_id=compute_id, binding_host_id=self.conf.host)
                    meta["ports"].append(self._plug(compute_id, port))
                self._address_management(compute_id, meta)
            self._boot(compute_id)
        except Exception as e:
            LOG.exception("building server %s (%s) failed", compute_id, name)
            self.delete(compute_id)
            raise exceptions.ComputeBuildException(fault=str(e)) from e
        LOG.info("server %s (%s) booted from image %s", compute_id, name, image["id"])
        return compute_id

    def _write_drive(self, path: Path, files: dict[str, Any], user_data: str | None) -> None:
        drive = path / "drive"
        for target, content in files.items():
            dest = drive / target.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = content.read() if hasattr(content, "read") else content
            if isinstance(data, str):
                data = data.encode()
            dest.write_bytes(data)
            dest.chmod(0o600)
        if user_data:
            (path / "user-data").write_text(user_data if isinstance(user_data, str) else str(user_data))
        bindir = path / "usr-local-bin"
        bindir.mkdir()
        for tool in ("systemctl", "lvs-masquerade.sh"):
            shutil.copy(ASSETS / tool, bindir / tool)
            (bindir / tool).chmod(0o755)
        # keepalived's check script (ACTIVE_STANDBY) runs haproxy-vrrp-check by name, as the image installs it
        (bindir / "haproxy-vrrp-check").symlink_to(Path(self.conf.agent_bin_dir) / "haproxy-vrrp-check")
        (path / "systemd-units").mkdir()

    def _management_networks(self) -> list[str]:
        return list(CONF.controller_worker.amp_boot_network_list or [])

    def _address_management(self, compute_id: str, meta: dict[str, Any]) -> None:
        """The management address on the server's side, as cloud-init would set it from DHCP."""
        boot = self._management_networks()
        for plugged in meta["ports"]:
            if boot and plugged["network_id"] not in boot:
                continue
            fixed = plugged["fixed_ips"][0]
            cidr = self.network.get_subnet(fixed["subnet_id"]).cidr
            prefix = cidr.split("/")[1]
            _run(
                "ip",
                "-n",
                netns_name(compute_id),
                "addr",
                "add",
                f"{fixed['ip_address']}/{prefix}",
                "dev",
                plugged["inner"],
            )
            meta["lb_network_ip"] = fixed["ip_address"]
            meta["management_network_id"] = plugged["network_id"]
            return
        raise RuntimeError("no port on a management network")

    def _boot(self, compute_id: str) -> None:
        path, cgroup = self._dir(compute_id), self._cgroup(compute_id)
        cgroup.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "AGENT_BIN": self.conf.agent_bin_dir,
        }
        script = (
            'echo $$ > "$1/cgroup.procs" && exec ip netns exec "$2" unshare --mount --propagation private sh "$3" "$4"'
        )
        with open(path / "console.log", "ab") as console:
            _run_detached(
                [
                    "setsid",
                    "-f",
                    "sh",
                    "-c",
                    script,
                    "lc-boot",
                    str(cgroup),
                    netns_name(compute_id),
                    str(ASSETS / "amphora-boot.sh"),
                    str(path),
                ],
                console,
                env,
            )
        deadline = time.monotonic() + BOOT_TIMEOUT
        while not self._populated(compute_id):
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self._console_tail(compute_id)}")
            time.sleep(0.05)

    def _console_tail(self, compute_id: str) -> str:
        try:
            return (self._dir(compute_id) / "console.log").read_text(errors="replace")[-600:]
        except OSError:
            return ""

    def delete(self, compute_id: str) -> None:
        """Kill every process of the server (its cgroup), remove its namespace, veths and the ports it made."""
        cgroup = self._cgroup(compute_id)
        if cgroup.is_dir():
            with contextlib.suppress(OSError):
                (cgroup / "cgroup.kill").write_text("1")
            deadline = time.monotonic() + KILL_TIMEOUT
            while self._populated(compute_id) and time.monotonic() < deadline:
                time.sleep(0.05)
            with contextlib.suppress(OSError):
                cgroup.rmdir()
        _quiet("ip", "netns", "del", netns_name(compute_id))
        path = self._dir(compute_id)
        try:
            meta = json.loads((path / "server.json").read_text())
        except (OSError, ValueError):
            meta = {"ports": []}
        for plugged in meta.get("ports", []):
            self._release_port(compute_id, plugged)
        shutil.rmtree(path, ignore_errors=True)
        LOG.info("server %s deleted", compute_id)

    def status(self, compute_id: str) -> str:
        amp, _ = self.get_amphora(compute_id)
        return str(constants.UP if amp.status == constants.ACTIVE else constants.DOWN)

    def get_amphora(self, compute_id: str, management_network_id: str | None = None) -> tuple[Any, str | None]:
        path = self._dir(compute_id)
        try:
            meta = json.loads((path / "server.json").read_text())
        except (OSError, ValueError):
            raise exceptions.ComputeGetException() from None
        fault = None
        if self._populated(compute_id):
            status = constants.ACTIVE
        else:
            status, fault = constants.ERROR, f"server stopped: {self._console_tail(compute_id)}"
        lb_network_ip = meta.get("lb_network_ip")
        if management_network_id:
            for plugged in meta["ports"]:
                if plugged["network_id"] == management_network_id:
                    lb_network_ip = plugged["fixed_ips"][0]["ip_address"]
                    break
        amp = data_models.Amphora(
            compute_id=compute_id,
            status=status,
            lb_network_ip=lb_network_ip,
            cached_zone=None,
            image_id=meta.get("image_id"),
            compute_flavor=meta.get("flavor"),
        )
        return amp, fault

    def create_server_group(self, name: str, policy: str) -> Any:
        return SimpleNamespace(id=str(uuid.uuid4()), name=name, policy=policy)

    def delete_server_group(self, server_group_id: str) -> None:
        return None

    def attach_network_or_port(
        self,
        compute_id: str,
        network_id: str | None = None,
        ip_address: str | None = None,
        port_id: str | None = None,
    ) -> Any:
        with self._locked(compute_id) as meta:
            if port_id:
                port = self.network.get_port(port_id)
                for plugged in meta["ports"]:
                    if plugged["port_id"] == port_id:
                        return _interface(plugged)
                if port.device_id and port.device_id != compute_id:
                    raise exceptions.ComputePortInUseException(port=port_id)
                port = self.network.update_port(port_id, device_id=compute_id, binding_host_id=self.conf.host)
                created = False
            else:
                fixed = [{"ip_address": ip_address}] if ip_address else None
                kwargs: dict[str, Any] = {
                    "network_id": network_id,
                    "device_id": compute_id,
                    "device_owner": DEVICE_OWNER,
                    "binding_host_id": self.conf.host,
                }
                if fixed:
                    kwargs["fixed_ips"] = fixed
                port = self.network.create_port(**kwargs)
                created = True
            plugged = {**self._plug(compute_id, port), "created": created}
            meta["ports"].append(plugged)
            return _interface(plugged)

    def detach_port(self, compute_id: str, port_id: str) -> None:
        try:
            with self._locked(compute_id) as meta:
                for plugged in [p for p in meta["ports"] if p["port_id"] == port_id]:
                    self._release_port(compute_id, plugged)
                    meta["ports"].remove(plugged)
        except exceptions.NotFound:
            LOG.warning("detach of port %s: no server %s", port_id, compute_id)

    def validate_flavor(self, flavor_id: str) -> None:
        return None

    def validate_availability_zone(self, availability_zone: str) -> None:
        return None


def _interface(plugged: dict[str, Any]) -> Any:
    """What Nova's interface_attach answers, as far as Octavia's network driver reads it."""
    return SimpleNamespace(
        net_id=plugged["network_id"], port_id=plugged["port_id"], fixed_ips=[dict(ip) for ip in plugged["fixed_ips"]]
    )


def _run_detached(cmd: list[str], console: Any, env: dict[str, str]) -> None:
    """Start cmd in a new session (setsid -f forks and returns at once: no zombie is left to the caller)."""
    proc = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=console, env=env, check=False, timeout=30
    )
    if proc.returncode:
        raise RuntimeError(f"could not start the server: exit {proc.returncode}")
