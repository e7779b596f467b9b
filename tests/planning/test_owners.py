"""owners: who else holds a load balancer's id or name."""

from __future__ import annotations

import pytest

from lbswap.model import LoadBalancer, StackResource
from lbswap.planning.owners import KINDS, owners

STACK = StackResource("stack-1", "webstack", "the_lb", "lb-1")


def lb(name: str = "web", tags: tuple[str, ...] = ()) -> LoadBalancer:
    return LoadBalancer(id="lb-1", name=name, vip_subnet_id="sub", tags=tags)


@pytest.mark.parametrize(
    ("source", "stacks", "owned_tags", "kinds"),
    [
        (lb(), (), (), []),
        (lb("kube_service_c1_default_web"), (), (), ["kubernetes"]),
        (lb(tags=("kube_cluster_c1",)), (), (), ["kubernetes"]),
        (lb("k8s-clusterapi-cluster-default-mycluster-kubeapi"), (), (), ["cluster-api"]),
        (lb("k8s-clusterapi-cluster-default-mycluster"), (), (), []),  # no -kubeapi suffix
        (lb("my-k8s-clusterapi-cluster-default-mycluster-kubeapi"), (), (), []),  # anchored at the start
        (lb(), (STACK,), (), ["heat"]),
        (lb(), (StackResource("s", "magnum-c1", "api_lb", "lb-1", owner="magnum"),), (), ["magnum"]),
        (lb(), (StackResource("s", "other", "lb", "lb-2"),), (), []),  # another load balancer's stack
        (lb(tags=("tf",)), (), ("tf",), ["tagged"]),
        (lb(tags=("tf",)), (), ("pulumi",), []),
        (lb(tags=()), (), ("tf",), []),
        (
            lb("k8s-clusterapi-cluster-ns-c-kubeapi", tags=("kube_service_x", "tf")),
            (STACK,),
            ("tf",),
            ["kubernetes", "cluster-api", "heat", "tagged"],
        ),
    ],
)
def test_owners(
    source: LoadBalancer, stacks: tuple[StackResource, ...], owned_tags: tuple[str, ...], kinds: list[str]
) -> None:
    found = owners(source, stacks, owned_tags)
    assert [o.kind for o in found] == kinds
    assert all(o.kind in KINDS and o.detail and o.follow_up for o in found)


def test_cluster_api_names_the_cluster() -> None:
    (owner,) = owners(lb("k8s-clusterapi-cluster-default-mycluster-kubeapi"), (), ())
    assert "default-mycluster" in owner.detail
    assert "apiServerLoadBalancer" in owner.follow_up


def test_a_stack_owner_names_the_stack_and_resource() -> None:
    (owner,) = owners(lb(), (STACK,), ())
    assert owner.detail == "Heat stack webstack (resource the_lb)"
    assert "webstack" in owner.follow_up


def test_kubernetes_follow_up_names_the_annotation() -> None:
    (owner,) = owners(lb("kube_service_c1_default_web"), (), ())
    assert "loadbalancer.openstack.org/load-balancer-id" in owner.follow_up
