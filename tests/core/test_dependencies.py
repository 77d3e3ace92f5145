"""Every dependency a route runs is a coroutine: FastAPI runs a plain `def` dependency in a
worker thread, a hop to another thread and back on every request for what is an attribute
read (a page of messages paid three of them)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

# Classes FastAPI builds from the request (a form body), not functions it calls.
BUILT_FROM_THE_REQUEST = {"OAuth2PasswordRequestForm"}


def _in_a_thread(call: Callable[..., Any]) -> bool:
    """FastAPI awaits coroutines and runs generators as they are; anything else goes through
    run_in_threadpool."""
    if inspect.isclass(call):
        return call.__name__ not in BUILT_FROM_THE_REQUEST
    function = call if inspect.isroutine(call) else type(call).__call__
    kinds = (inspect.iscoroutinefunction, inspect.isasyncgenfunction, inspect.isgeneratorfunction)
    return not any(kind(function) for kind in kinds)


def _sync_dependencies(dependant: Dependant) -> set[str]:
    found: set[str] = set()
    for sub in dependant.dependencies:
        if sub.call is not None and _in_a_thread(sub.call):
            found.add(sub.call.__qualname__)
        found |= _sync_dependencies(sub)
    return found


def _api_routes(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """Routes of included routers too (FastAPI keeps those in the router it included)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif (included := getattr(route, "original_router", None)) is not None:
            found += _api_routes(included.routes)
    return found


def test_no_route_runs_a_dependency_in_a_thread(app: FastAPI) -> None:
    routes = _api_routes(app.routes)
    assert len(routes) > 50
    sync = {route.path: _sync_dependencies(route.dependant) for route in routes}
    assert {path: names for path, names in sync.items() if names} == {}
