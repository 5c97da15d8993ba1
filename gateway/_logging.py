"""Logging configuration, done once, at the edge (the CLI, the app factory). Libraries only emit.

structlog renders every event (JSON lines or a console format), and the
standard library's records (uvicorn's, asyncio's) go through the same
renderer: with the json format every line on stderr is one JSON object,
uvicorn's own lines, Python's warnings, an uncaught exception (in the main
thread or any other) and the process's fatal problems (:func:`report_problems`) included.
uvicorn's access logger is silenced: the gateway writes its own
(:mod:`gateway._access`), which in the json format skips structlog's
processor chain and writes pre-encoded lines through :func:`json_lines`.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from types import TracebackType

import structlog

from vibe_actors.tracing import add_trace_ids

__all__ = ["JsonLines", "configure_logging", "json_lines", "report_problems"]

_log = structlog.get_logger("gateway")


class JsonLines:
    """Writes already-encoded JSON lines to the log handler's stream, under its lock (so a
    line never interleaves with a record another thread is writing)."""

    def __init__(self, handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
        self._handler = handler

    def write(self, lines: bytes) -> None:
        handler = self._handler
        handler.acquire()
        try:
            stream = handler.stream
            buffer = getattr(stream, "buffer", None)  # a text stream's bytes underneath
            if buffer is None:
                stream.write(lines.decode())
            else:
                stream.flush()  # whatever text is pending goes first
                buffer.write(lines)
                buffer.flush()
        finally:
            handler.release()


#: The json format's writer of this process (None until configured, and with console).
_json_lines: JsonLines | None = None


def _route_uvicorn_loggers() -> None:
    # uvicorn's loggers (configured by uvicorn's own dictConfig when `uvicorn` starts the
    # process) go to the one handler; its access logger has none, so uvicorn skips it.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False


def json_lines() -> JsonLines | None:
    """Where pre-encoded JSON lines go: the process's log stream when configured by
    :func:`configure_logging` with the json format, else None (emit through structlog)."""
    return _json_lines


def configure_logging(level: str, fmt: str) -> None:
    """Configure structlog and stdlib logging for the process (see the module docstring)."""
    global _json_lines
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,  # trace_id and span_id while a span is current (tracing on)
    ]
    renderer: structlog.types.Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.filter_by_level,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if fmt == "json" else _keep,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    _route_uvicorn_loggers()
    logging.captureWarnings(True)  # a library's warning is a record too, not a raw stderr line
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread
    _json_lines = JsonLines(handler) if fmt == "json" else None


def report_problems(event: str, problems: Sequence[str], fmt: str) -> None:
    """The process's fatal problems, one line each: a ``gateway: ...`` line with the
    console format, an ``error`` event ``event`` with its ``problem`` with the json one
    (configuring the json format first if nothing is configured yet)."""
    if fmt == "console":
        for problem in problems:
            print(f"gateway: {problem}", file=sys.stderr)
        return
    if _json_lines is None:
        configure_logging("info", "json")
    for problem in problems:
        _log.error(event, problem=problem)


def _uncaught(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    _log.critical("uncaught_exception", exc_info=(kind, value, traceback))


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return  # a thread ending itself, as threading's own hook treats it
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    thread = None if args.thread is None else args.thread.name
    _log.critical("uncaught_exception", thread=thread, exc_info=exc_info)


def _keep(logger: object, name: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    return event
