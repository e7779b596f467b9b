"""Scale-out: campaigns on taskflow's Redis jobboard, driven by ``lbswap conductor`` processes that share the
journal (one SQLite file on one host). board.py reaches the board, campaign.py posts and follows a campaign,
leases.py decides per swap in the journal (one driver per swap, canary, breaker, --parallel across
conductors), conductor.py is the claim loop."""
