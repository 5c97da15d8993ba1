"""What crosses between a :class:`~vibe_actors.agents.jobs.JobWorker` and its job process.

One connection per worker (a socket pair framed by
:class:`multiprocessing.connection.Connection`), carrying msgpack-encoded
tagged Structs, one request at a time:

* worker -> process: :class:`Hello` once (the import path and the parent's
  pid), then a :class:`Call` per job attempt, and an :class:`Answer` to each
  ask the job makes while it runs;
* process -> worker: :class:`Ready` once it has started (imports done), then
  per call :class:`AskRequest` / :class:`TellRequest` while the job runs
  (``ctx.system.ref(name).ask(...)``), then one :class:`Outcome`.

Messages a job sends through ``ctx.system`` travel as msgpack bytes named by
their type's import path (``module:QualName``); the worker resolves that name
among the modules already imported in its own process (see
:func:`resolve_struct`), it never imports one for the job.

Also here, because both sides use them: :func:`load_callable` (import strings
to functions) and :func:`job_args` (a job kind's argument schema).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from vibe_actors._imports import (
    ImportAttributeMissing,
    ImportModuleFailed,
    ImportModuleNotFound,
    MalformedImportString,
    resolve_import,
    split_import_string,
)

__all__ = [
    "Answer",
    "AskRequest",
    "Call",
    "Hello",
    "Outcome",
    "Ready",
    "TellRequest",
    "args_schema",
    "encode",
    "from_process",
    "from_worker",
    "job_args",
    "load_callable",
    "resolve_struct",
    "type_path",
]

F = TypeVar("F", bound=Callable[..., Any])


class Hello(msgspec.Struct, frozen=True, tag=True):
    """First message to a new process: import jobs as the worker's process would."""

    sys_path: list[str]
    parent_pid: int


class Call(msgspec.Struct, frozen=True, tag=True):
    """Run attempt ``attempt`` of job ``job_id``: ``target(args, context)``."""

    job_id: str
    kind: str
    target: str
    args: dict[str, Any]
    attempt: int


class Answer(msgspec.Struct, frozen=True, tag=True):
    """The reply to an :class:`AskRequest`: ``reply`` (msgpack of ``reply_type``, or of
    plain data when None) if ``ok``, else ``error`` (the ask could not be made)."""

    ok: bool
    reply_type: str | None = None
    reply: bytes = b""
    error: str | None = None


class Ready(msgspec.Struct, frozen=True, tag=True):
    """The process has started and waits for calls (a job's timeout counts from here)."""

    pid: int


class Outcome(msgspec.Struct, frozen=True, tag=True):
    """How an attempt ended: ``result`` (JSON-like) if ``ok``, else ``error`` (and the
    job's ``traceback`` when it raised)."""

    ok: bool
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    traceback: str | None = None


class AskRequest(msgspec.Struct, frozen=True, tag=True):
    """The running job asks agent ``agent``; ``timeout`` None: the system's default."""

    agent: str
    message_type: str
    message: bytes
    timeout: float | None = None


class TellRequest(msgspec.Struct, frozen=True, tag=True):
    agent: str
    message_type: str
    message: bytes


encode = msgspec.msgpack.Encoder().encode
#: Decoders of each direction (a message of the other direction is a DecodeError).
from_worker = msgspec.msgpack.Decoder(Hello | Call | Answer)
from_process = msgspec.msgpack.Decoder(Ready | Outcome | AskRequest | TellRequest)


def type_path(cls: type) -> str:
    """``module:QualName`` of ``cls``: how a message type is named on the wire."""
    return f"{cls.__module__}:{cls.__qualname__}"


def load_callable(target: str) -> Callable[..., Any]:
    """Import ``"package.module:name"`` (``name`` may be dotted) and return it.

    Raises ValueError saying what is wrong: not an import string, module not
    importable (missing, or it raised while importing), no such attribute, or
    not callable.
    """
    found = _resolve(target, f"{target!r} is not an import string 'module:function'")
    if not callable(found):
        raise ValueError(f"{target!r} is not callable (it is a {type(found).__name__})")
    return found  # type: ignore[no-any-return]


def resolve_struct(path: str, *, may_import: bool) -> type[msgspec.Struct]:
    """The msgspec Struct type named ``module:QualName``.

    With ``may_import`` False (the worker resolving what a job names) the
    module must already be imported in this process. Raises ValueError if the
    name is malformed, its module is not (or cannot be) imported, or it does
    not name a Struct type.
    """
    parts = split_import_string(path)
    malformed = f"{path!r} is not a type name 'module:QualName'"
    if parts is None:
        raise ValueError(malformed)
    if not may_import and sys.modules.get(parts[0]) is None:
        raise ValueError(f"module {parts[0]!r} is not loaded in the worker's process")
    found = _resolve(path, malformed)
    if not (isinstance(found, type) and issubclass(found, msgspec.Struct)):
        raise ValueError(f"{path!r} is not a message type")
    return found


def _resolve(path: str, malformed: str) -> Any:
    """:func:`~vibe_actors.resolve_import`, its errors as ValueErrors worded for jobs
    (``malformed`` when ``path`` is not an import string). A job kind or message type
    naming a module that is missing or broken is a configuration error, reported."""
    try:
        return resolve_import(path)
    except MalformedImportString as exc:
        raise ValueError(malformed) from exc
    except (ImportModuleNotFound, ImportModuleFailed) as exc:
        raise ValueError(f"cannot import module {exc.module!r} ({exc.__cause__})") from exc
    except ImportAttributeMissing as exc:
        raise ValueError(f"module {exc.module!r} has no attribute {exc.attribute!r}") from exc


#: Job function -> its argument schema (registered by :func:`job_args` at import).
_SCHEMAS: dict[Callable[..., Any], type[msgspec.Struct]] = {}


def job_args(schema: type[msgspec.Struct]) -> Callable[[F], F]:
    """Declare the arguments a job function takes, as a msgspec Struct type.

    ``Submit`` of that kind then converts its ``args`` to ``schema`` first, and
    answers ``InvalidJob`` (422) with msgspec's reason when they do not fit
    (a bound exceeded, a wrong type, an unknown field if the schema forbids
    them); the function itself still receives the args as a dict.
    """

    def register(fn: F) -> F:
        _SCHEMAS[fn] = schema
        return fn

    return register


def args_schema(fn: Callable[..., Any]) -> type[msgspec.Struct] | None:
    """The schema ``fn`` declared with :func:`job_args`, else None."""
    return _SCHEMAS.get(fn)
