"""System agents (policy, quota, schema, webhooks, ...): one package per agent.

``vibe_actors.agents.<agent>`` is the agent (its class, for the wiring's import
string) and re-exports its public names; ``vibe_actors.agents.<agent>.protocol``
holds its messages, replies and settings, the only module another agent
imports; the package's ``_modules`` are its own.
"""
