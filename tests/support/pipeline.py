"""Faults for the local pipeline's predict function: a wrapper around the real handler module it loads."""

from __future__ import annotations

from collections.abc import Callable

from fraudstream.local import handlers as local_handlers


def wrap_predict_handler(monkeypatch, before: Callable[[], None]) -> None:
    """The local pipeline's predict handler calls ``before()`` ahead of each invocation (which may raise, as an
    endpoint that is down, or wait, as a throttled one)."""
    real_load = local_handlers.load_handler

    def load(name, env):
        module = real_load(name, env)
        if name == local_handlers.PREDICT_HANDLER:
            handler = module.lambda_handler

            def wrapped(event, context):
                before()
                return handler(event, context)
            module.lambda_handler = wrapped
        return module

    monkeypatch.setattr(local_handlers, "load_handler", load)
