"""lbswap: upgrade Octavia load balancers blue/green without dropping new connections."""

__version__ = "0.1.0"
