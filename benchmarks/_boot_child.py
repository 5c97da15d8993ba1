"""Child process for benchmarks/boot.py: boot the wiring, print 'ready', stop."""

from __future__ import annotations

import sys

import phoenix

if __name__ == "__main__":
    system = phoenix.boot(sys.argv[1], data_dir=sys.argv[2])
    print("ready", len(system.names()), flush=True)
    system.shutdown()
