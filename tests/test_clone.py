"""clone.py: the create body, and the property behind I5: a clone read back equals its source."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbswap import clone
from lbswap.clouds import fake
from lbswap.model import HealthMonitor, L7Policy, L7Rule, Listener, LoadBalancer, Member, Pool

names = st.text(alphabet="abcdefghij-", min_size=0, max_size=6)
tags = st.lists(st.text(alphabet="abcxyz=", min_size=1, max_size=8), max_size=3, unique=True).map(tuple)
ports = st.integers(min_value=1, max_value=65535)


@st.composite
def monitors(draw: st.DrawFn) -> HealthMonitor:
    kind = draw(st.sampled_from(["HTTP", "TCP", "UDP-CONNECT", "PING"]))
    http = kind == "HTTP"
    return HealthMonitor(
        type=kind,
        delay=draw(st.integers(1, 60)),
        timeout=draw(st.integers(1, 30)),
        max_retries=draw(st.integers(1, 10)),
        max_retries_down=draw(st.integers(1, 10)),
        http_method="GET" if http else None,
        url_path=draw(st.sampled_from(["/", "/healthz"])) if http else None,
        expected_codes="200-299" if http else None,
        name=draw(names),
        tags=draw(tags),
        id=draw(st.uuids()).hex,
    )


@st.composite
def members(draw: st.DrawFn) -> Member:
    return Member(
        address=f"10.0.{draw(st.integers(0, 3))}.{draw(st.integers(2, 250))}",
        protocol_port=draw(ports),
        weight=draw(st.integers(0, 256)),
        backup=draw(st.booleans()),
        monitor_address=draw(st.none() | st.just("10.0.9.9")),
        monitor_port=draw(st.none() | ports),
        name=draw(names),
        admin_state_up=draw(st.booleans()),
        tags=draw(tags),
        id=draw(st.uuids()).hex,
    )


@st.composite
def pools(draw: st.DrawFn, index: int) -> Pool:
    return Pool(
        name=draw(st.sampled_from(["", "web", "api", f"pool{index}"])),
        protocol=draw(st.sampled_from(["HTTP", "TCP", "UDP", "PROXY"])),
        lb_algorithm=draw(st.sampled_from(["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"])),
        session_persistence=draw(st.none() | st.just({"type": "HTTP_COOKIE"}) | st.just({"type": "SOURCE_IP"})),
        members=tuple(draw(st.lists(members(), max_size=4))),
        healthmonitor=draw(st.none() | monitors()),
        tls_enabled=draw(st.booleans()),
        tags=draw(tags),
        id=f"pool-{index}",
    )


@st.composite
def load_balancers(draw: st.DrawFn) -> LoadBalancer:
    n_pools = draw(st.integers(0, 4))
    pool_list = tuple(draw(pools(i)) for i in range(n_pools))
    pool_ids = [p.id for p in pool_list]
    listeners = []
    for port in draw(st.lists(ports, max_size=3, unique=True)):
        policies = []
        for position in range(draw(st.integers(0, 2)) if pool_ids else 0):
            rules = tuple(
                L7Rule(
                    type=draw(st.sampled_from(["PATH", "HOST_NAME", "HEADER"])),
                    compare_type=draw(st.sampled_from(["STARTS_WITH", "EQUAL_TO", "REGEX"])),
                    value=draw(st.text(alphabet="/abc", min_size=1, max_size=5)),
                    key=draw(st.none() | st.just("X-Env")),
                    invert=draw(st.booleans()),
                    tags=draw(tags),
                    id=draw(st.uuids()).hex,
                )
                for _ in range(draw(st.integers(0, 2)))
            )
            redirect = draw(st.sampled_from(["pool", "url"]))
            policies.append(
                L7Policy(
                    action="REDIRECT_TO_POOL" if redirect == "pool" else "REDIRECT_TO_URL",
                    position=position + 1,
                    name=draw(names),
                    redirect_pool_id=draw(st.sampled_from(pool_ids)) if redirect == "pool" else None,
                    redirect_url="https://example.com/" if redirect == "url" else None,
                    redirect_http_code=None if redirect == "pool" else 302,
                    rules=rules,
                    id=draw(st.uuids()).hex,
                )
            )
        hsts = draw(st.none() | st.integers(0, 31536000))
        listeners.append(
            Listener(
                protocol=draw(st.sampled_from(["HTTP", "TCP", "UDP", "TERMINATED_HTTPS"])),
                protocol_port=port,
                name=draw(names),
                connection_limit=draw(st.sampled_from([-1, 1000])),
                default_pool_id=draw(st.none() | st.sampled_from(pool_ids)) if pool_ids else None,
                timeout_client_data=draw(st.integers(0, 100000)),
                timeout_member_connect=draw(st.integers(0, 100000)),
                timeout_member_data=draw(st.integers(0, 100000)),
                timeout_tcp_inspect=draw(st.integers(0, 100000)),
                allowed_cidrs=draw(st.none() | st.just(("10.0.0.0/8", "192.168.0.0/16"))),
                insert_headers=draw(st.none() | st.just({}) | st.just({"X-Forwarded-For": "true"})),
                default_tls_container_ref=draw(st.none() | st.just("https://kms/v1/containers/a")),
                sni_container_refs=draw(st.sampled_from([(), ("https://kms/v1/containers/b",)])),
                client_authentication=draw(st.sampled_from(["NONE", "OPTIONAL", "MANDATORY"])),
                tls_versions=draw(st.none() | st.just(("TLSv1.2", "TLSv1.3"))),
                alpn_protocols=draw(st.none() | st.just(("h2", "http/1.1"))),
                hsts_max_age=hsts,
                hsts_include_subdomains=draw(st.booleans()) if hsts is not None else False,
                hsts_preload=draw(st.booleans()) if hsts is not None else False,
                l7policies=tuple(policies),
                admin_state_up=draw(st.booleans()),
                tags=draw(tags),
                id=draw(st.uuids()).hex,
            )
        )
    return LoadBalancer(
        id=draw(st.uuids()).hex,
        name=draw(names),
        description=draw(names),
        project_id="demo-project",
        vip_subnet_id="subnet-tenant",
        vip_network_id="net-tenant",
        vip_qos_policy_id=draw(st.none() | st.just("qos-1")),
        availability_zone=draw(st.none() | st.just("az1")),
        flavor_id=draw(st.none() | st.just("flavor-single")),
        admin_state_up=draw(st.booleans()),
        vip_sg_ids=draw(st.none() | st.just(("sg-1",))),
        tags=draw(tags),
        listeners=tuple(listeners),
        pools=pool_list,
    )


_CLOUD_DIR = tempfile.TemporaryDirectory()
_CLOUD = Path(_CLOUD_DIR.name) / "cloud.json"
fake.seed_sample(_CLOUD, 0)
fake.FakeCloud(_CLOUD).mutate(lambda s: s["subnets"]["subnet-tenant"].update(capacity=100000, cidr="10.0.0.0/8"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(load_balancers())
def test_a_clone_read_back_equals_its_source(source: LoadBalancer) -> None:
    cloud = fake.FakeCloud(_CLOUD)
    body = clone.build_clone_body(source, campaign_id="c-prop")
    created = cloud.create_load_balancer(body)
    cloud.clock.sleep(5)
    copy = cloud.read_graph(created.id)
    assert copy.clone_of == source.id and copy.campaign == "c-prop"
    assert clone.comparable(copy) == clone.comparable(source)


def test_the_body_references_pools_by_name_and_carries_no_ids() -> None:
    pool = Pool(
        name="", protocol="HTTP", lb_algorithm="ROUND_ROBIN", id="p1", members=(Member("10.0.0.5", 80, id="m"),)
    )
    listener = Listener(protocol="HTTP", protocol_port=80, default_pool_id="p1", id="l1")
    lb = LoadBalancer(id="lb1", name="web", vip_subnet_id="s", listeners=(listener,), pools=(pool,), tags=("a",))
    body = clone.build_clone_body(lb, campaign_id="c1")
    assert body["listeners"][0]["default_pool"] == {"name": "lbswap-pool-0"}
    assert body["pools"][0]["name"] == "lbswap-pool-0"
    assert body["tags"] == ["a", "lbswap:clone-of=lb1", "lbswap:campaign=c1"]

    def keys(value: object) -> set[str]:
        if isinstance(value, dict):
            return set(value) | set().union(*(keys(v) for v in value.values()))
        if isinstance(value, list):
            return set().union(*(keys(v) for v in value)) if value else set()
        return set()

    assert not keys(body) & {"id", "provisioning_status", "operating_status", "vip_port_id", "vip_address"}


def test_target_changes_are_declared_differences() -> None:
    lb = LoadBalancer(id="lb1", name="web", vip_subnet_id="s", flavor_id="small", availability_zone="az1")
    target = clone.TargetChanges(flavor_id="large", availability_zone="az2")
    body = clone.build_clone_body(lb, campaign_id="c1", target=target)
    assert body["flavor_id"] == "large" and body["availability_zone"] == "az2"
    moved = LoadBalancer(id="lb2", name="web", vip_subnet_id="s", flavor_id="large", availability_zone="az2")
    assert clone.comparable(moved, target) == clone.comparable(lb, target)
    assert clone.comparable(moved) != clone.comparable(lb)


def test_kubernetes_managed_clones_carry_a_temporary_name() -> None:
    lb = LoadBalancer(id="x", name="kube_service_prod_default_web", vip_subnet_id="s")
    assert clone.is_kubernetes_managed(lb)
    assert clone.clone_name(lb) == "kube_service_prod_default_web-lbswap"
    assert not clone.is_kubernetes_managed(LoadBalancer(id="y", name="web", vip_subnet_id="s"))
