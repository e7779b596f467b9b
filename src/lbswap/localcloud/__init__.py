"""The local cloud: real OpenStack services on one host (scripts/local-cloud.sh).

Modules here run inside the cloud's own virtualenv (Octavia's processes import them through PYTHONPATH), not
in lbswap's: they may import Octavia and oslo.
"""
