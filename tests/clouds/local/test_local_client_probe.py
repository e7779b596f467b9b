"""The local backend's client probe reads who served a connection from the member's answer (member.py echoes
the peer address it saw: the amphora's), and maps that address to a load balancer. No root needed."""

from __future__ import annotations

from lbswap.clouds.local.client_probe import parse_peer
from lbswap.clouds.local.state import lb_of_amphora_address


def test_parse_peer_reads_the_member_body() -> None:
    response = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n\r\nmember m0 peer 10.0.3.12\n"
    assert parse_peer(response) == "10.0.3.12"


def test_parse_peer_without_a_member_answer() -> None:
    assert parse_peer(b"HTTP/1.0 503 Service Unavailable\r\n\r\n<html>No server is available</html>\n") is None
    assert parse_peer(b"") is None
    assert parse_peer(b"HTTP/1.0 200 OK\r\n\r\nmember m0 peer") is None  # cut short


def test_an_amphora_address_names_its_load_balancer_now_or_in_the_log() -> None:
    state = {
        "lbs": {"lb-2": {"id": "lb-2", "amphorae": [{"address": "10.0.3.11"}]}},
        "amphora_log": [
            {"address": "10.0.3.10", "lb_id": "lb-0"},
            {"address": "10.0.3.10", "lb_id": "lb-1"},  # the address was given again later
            {"address": "10.0.3.11", "lb_id": "lb-old"},
            {"address": "10.0.3.11", "lb_id": "lb-2"},
        ],
    }
    assert lb_of_amphora_address(state, "10.0.3.11") == "lb-2"  # runs now
    assert lb_of_amphora_address(state, "10.0.3.10") == "lb-1"  # retired since: the last one it was given to
    assert lb_of_amphora_address(state, "10.0.9.9") is None
