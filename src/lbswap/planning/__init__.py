"""Pure rules the plan applies beyond strategy: client-visible addresses, owners, fleet capacity."""
