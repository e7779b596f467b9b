"""The lab: tools that measure lbswap with real packets on the local cloud, apart from the core.

``probe`` (the traffic probe and its downtime math), ``shapes`` (the sample load balancers), ``demo`` (``lbswap
demo``) and ``timeline`` (its PNG, which needs matplotlib: the ``lab`` extra, ``pip install 'lbswap[lab]'``).
"""
