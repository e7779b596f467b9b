"""Who else holds a load balancer's id or name: a clone has new ids, so each of them must be told. Pure.

Detected from the cloud: Kubernetes' cloud-provider-openstack (name ``kube_service_...`` or its tags),
Cluster API OpenStack (its API-server load balancer is found by the name
``k8s-clusterapi-cluster-<namespace>-<cluster>-kubeapi``, first match), Heat and Magnum (a stack resource whose
physical id is the load balancer), and any tag an operator declares with ``--owned-tag``. Terraform cannot be
detected from the cloud: it keeps ids in its own state (see the README).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lbswap.clone import KUBERNETES_ANNOTATION, is_kubernetes_managed
from lbswap.model import LoadBalancer, StackResource

KINDS = ("kubernetes", "cluster-api", "heat", "magnum", "tagged")
CLUSTER_API_NAME = re.compile(r"^k8s-clusterapi-cluster-(?P<rest>.+)-kubeapi$")


@dataclass(frozen=True)
class Owner:
    kind: str
    detail: str
    follow_up: str


def owners(lb: LoadBalancer, stacks: Sequence[StackResource], owned_tags: Sequence[str]) -> list[Owner]:
    found = []
    if is_kubernetes_managed(lb):
        found.append(
            Owner(
                "kubernetes",
                "Kubernetes cloud-provider-openstack",
                f"after the swap set the Service annotation {KUBERNETES_ANNOTATION}=<clone id> (the result names "
                "it); the clone takes the source's name once the source is retired",
            )
        )
    match = CLUSTER_API_NAME.match(lb.name)
    if match:
        found.append(
            Owner(
                "cluster-api",
                f"Cluster API OpenStack (cluster {match.group('rest')})",
                "Cluster API finds this API-server load balancer by its name and takes the first match: the clone "
                "keeps the name; after the swap check the OpenStackCluster's status.apiServerLoadBalancer.id and "
                "let the controller reconcile (it must not see two load balancers of that name for long)",
            )
        )
    for resource in stacks:
        if resource.physical_id == lb.id:
            found.append(
                Owner(
                    resource.owner,
                    f"{'Magnum cluster' if resource.owner == 'magnum' else 'Heat stack'} {resource.stack_name} "
                    f"(resource {resource.resource_name})",
                    f"the stack {resource.stack_name} still names the source's id: after the swap, update the stack "
                    "(or abandon and adopt the resource) so a stack update does not recreate or delete it",
                )
            )
    for tag in owned_tags:
        if tag in lb.tags:
            found.append(
                Owner(
                    "tagged",
                    f"declared owner (tag {tag})",
                    f"the tool behind tag {tag} holds the source's id: point it at the clone after the swap",
                )
            )
    return found
