import json

from lbswap.model import (
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancer,
    Member,
    Pool,
    from_json,
    to_json,
)


def test_graph_round_trips_through_json() -> None:
    pool = Pool(
        name="p1",
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        session_persistence={"type": "APP_COOKIE", "cookie_name": "c"},
        members=(Member(address="10.0.0.5", protocol_port=80, weight=3, backup=True, tags=("a",)),),
        healthmonitor=HealthMonitor(type="HTTP", delay=5, timeout=3, max_retries=2, http_version=1.1),
        id="pool-1",
    )
    listener = Listener(
        protocol="HTTP",
        protocol_port=80,
        default_pool_id="pool-1",
        allowed_cidrs=("10.0.0.0/8",),
        insert_headers={"X-Forwarded-For": "true"},
        l7policies=(
            L7Policy(
                action="REDIRECT_TO_POOL",
                redirect_pool_id="pool-1",
                rules=(L7Rule(type="PATH", compare_type="STARTS_WITH", value="/api"),),
            ),
        ),
    )
    lb = LoadBalancer(id="lb-1", name="web", vip_subnet_id="sub", listeners=(listener,), pools=(pool,), tags=("x",))
    text = json.dumps(to_json(lb))
    back = from_json(LoadBalancer, json.loads(text))
    assert back == lb
    assert back.pool_by_id("pool-1").healthmonitor == pool.healthmonitor


def test_marker_tags_are_read_back() -> None:
    lb = LoadBalancer(id="c", name="n", vip_subnet_id="s", tags=("lbswap:clone-of=src", "lbswap:campaign=c1"))
    assert lb.clone_of == "src"
    assert lb.campaign == "c1"
