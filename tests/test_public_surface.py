"""The public surface, pinned: changing it is a visible decision with a CHANGELOG line.

Each package's ``__all__`` is compared with the names listed here, and every
listed name must be importable from the package. Adding or removing a name
means editing this file in the same change as CHANGELOG.md's line for it.
"""

from __future__ import annotations

import importlib

import pytest

SURFACE: dict[str, set[str]] = {
    "vibe_actors": {
        "ANONYMOUS",
        "ActorSystem",
        "Agent",
        "AgentAbandoned",
        "AgentCrashed",
        "AgentCrashedError",
        "AgentCrashedEvent",
        "AgentHung",
        "AgentRestarted",
        "AgentStatus",
        "ApplyReport",
        "AskError",
        "Authorizer",
        "BRUTAL_KILL",
        "BackoffSpec",
        "Caller",
        "CircuitOpened",
        "CodecError",
        "DeadLetter",
        "DeadLetterReason",
        "DeadLettered",
        "DeadLetters",
        "DeadlineExceeded",
        "DeadlineExceededError",
        "Deferred",
        "DynamicChildStarted",
        "DynamicChildTerminated",
        "ErrorReply",
        "EventStream",
        "Forbidden",
        "ForbiddenError",
        "ImportAttributeMissing",
        "ImportModuleFailed",
        "ImportModuleNotFound",
        "ImportStringError",
        "InjectedCrash",
        "MAX_NESTING",
        "MailboxFull",
        "MailboxFullError",
        "MailboxSpec",
        "MalformedImportString",
        "Message",
        "NameTaken",
        "NotDynamic",
        "Overflow",
        "Ping",
        "Pong",
        "PoolSpec",
        "Ref",
        "ReplyFuture",
        "RestartIntensityExceeded",
        "RestartType",
        "Routing",
        "RuntimeEvent",
        "SelfAsk",
        "StartFailed",
        "Strategy",
        "Supervisor",
        "SupervisorFull",
        "SupervisorGaveUp",
        "SupervisorSpec",
        "SystemConfig",
        "SystemFailed",
        "SystemNotRunning",
        "Terminated",
        "TreeNode",
        "TreeReloaded",
        "Unavailable",
        "UnavailableError",
        "UnknownAgent",
        "UnknownMessage",
        "UnknownMessageError",
        "VibeError",
        "WorkerSpec",
        "check_nesting",
        "decode_error",
        "decode_json",
        "decode_msgpack",
        "encode_json",
        "encode_msgpack",
        "handler",
        "json_brackets",
        "resolve_import",
    },
    "vibe_actors.testing": {
        "EventRecorder",
        "ManualClock",
        "ProbeAgent",
        "Release",
        "TestProbe",
        "add_probe",
        "crash",
        "fail_next",
        "hang",
        "probe_spec",
        "probes",
        "record_events",
        "release_all",
    },
    "gateway": {
        "AppSettings",
        "BreakerSettings",
        "Gateway",
        "GatewayServer",
        "GatewaySettings",
        "ServerLimits",
        "SettingsError",
        "create_app",
        "parse_settings",
        "tune_gc",
        "uvicorn_config",
    },
    "phoenix": {
        "SupervisorNode",
        "Wiring",
        "WiringError",
        "WiringFile",
        "WiringProblem",
        "WorkerNode",
        "boot",
        "build",
        "json_schema",
        "load",
        "load_text",
        "reload",
    },
}


@pytest.mark.parametrize("module", sorted(SURFACE))
def test_the_public_surface_is_what_is_pinned(module: str) -> None:
    package = importlib.import_module(module)
    exported = set(package.__all__)
    assert len(exported) == len(package.__all__), "a name listed twice in __all__"
    assert exported - SURFACE[module] == set(), "new public names: pin them (and CHANGELOG)"
    assert SURFACE[module] - exported == set(), "public names removed: unpin them (and CHANGELOG)"
    for name in exported:
        assert hasattr(package, name), f"{module}.{name} is in __all__ but not importable"
