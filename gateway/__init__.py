"""gateway: the HTTP front of a vibe_actors system.

``create_app(system)`` is a plain ASGI callable (mountable in any ASGI app);
``python -m gateway`` boots the system from wiring.yaml and serves it with
uvicorn (uvloop, httptools); ``uvicorn gateway:app_factory --factory`` serves
the same under uvicorn's (or gunicorn's) own command line, the system started
and stopped by the ASGI lifespan.
"""

from gateway._app import Gateway, create_app
from gateway._app_settings import AppSettings
from gateway._breaker import BreakerSettings
from gateway._factory import FactoryApp, app_factory
from gateway._server import GatewayServer, ServerLimits, tune_gc, uvicorn_config
from gateway._settings import GatewaySettings, SettingsError
from gateway._settings_cli import parse_settings

__all__ = [
    "AppSettings",
    "BreakerSettings",
    "FactoryApp",
    "Gateway",
    "GatewayServer",
    "GatewaySettings",
    "ServerLimits",
    "SettingsError",
    "app_factory",
    "create_app",
    "parse_settings",
    "tune_gc",
    "uvicorn_config",
]
