"""phoenix: loads and validates wiring.yaml and builds the supervision tree from it."""
