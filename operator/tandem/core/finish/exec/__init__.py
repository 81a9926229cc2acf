"""The exec road: stopping sidecars by exec along their ladders, the helper, and verifying how
each exited."""
