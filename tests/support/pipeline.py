"""Faults for the local pipeline's predict function: a wrapper around the real handler module it loads."""

from __future__ import annotations

from collections.abc import Callable

from fraudstream.local import handlers as local_handlers


def wrap_predict_handler(monkeypatch, before: Callable[[], None] = lambda: None,
                         after: Callable[[], None] = lambda: None) -> None:
    """The local pipeline's predict handler calls ``before()`` ahead of each invocation (which may raise, as an
    endpoint that is down, or wait, as a throttled one) and ``after()`` once it has done its work (which may raise,
    as a function that times out after writing its verdicts)."""
    real_load = local_handlers.load_handler

    def load(name, env):
        module = real_load(name, env)
        if name == local_handlers.PREDICT_HANDLER:
            handler = module.lambda_handler

            def wrapped(event, context):
                before()
                summary = handler(event, context)
                after()
                return summary
            module.lambda_handler = wrapped
        return module

    monkeypatch.setattr(local_handlers, "load_handler", load)
