#!/bin/sh
# The tutorial's HTTP calls (docs/tutorial.md), against
#   PYTHONPATH=examples .venv/bin/python -m gateway --wiring examples/tutorial_wiring.yaml --chaos
# examples/test_tutorial.py runs every curl line below against the same wiring.

# --8<-- [start:vote]
curl -s -X POST -H 'content-type: application/json' -d '{"option":"tea"}' localhost:8000/v1/agents/poll/Vote
curl -s -X POST -H 'content-type: application/json' -d '{"option":"tea"}' localhost:8000/v1/agents/poll/Vote
# --8<-- [end:vote]

# --8<-- [start:error]
curl -s -X POST -H 'content-type: application/json' -d '{"option":"milk"}' localhost:8000/v1/agents/poll/Vote
# --8<-- [end:error]

# --8<-- [start:results]
curl -s -X POST -H 'content-type: application/json' -d '{}' localhost:8000/v1/agents/poll/Results
# --8<-- [end:results]

# --8<-- [start:agents]
curl -s localhost:8000/v1/agents
# --8<-- [end:agents]

# --8<-- [start:crash]
curl -s -X POST localhost:8000/v1/chaos/poll/crash
# --8<-- [end:crash]

# --8<-- [start:after]
curl -s localhost:8000/v1/agents/poll
curl -s -X POST -H 'content-type: application/json' -d '{}' localhost:8000/v1/agents/poll/Results
# --8<-- [end:after]
