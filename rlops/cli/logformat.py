"""`--log-format text|json` of the long-running commands (the operator, the SLURM bridge).

JSON lines are kopf's own formatter (python-json-logger underneath): one object a line
with `message`, `severity`, `timestamp`, the logger's name and, for the operator's
per-object loggers, the object (`object`: apiVersion, kind, name, namespace, uid).
"""

from __future__ import annotations

import argparse
import logging

LOG_FORMATS = ("text", "json")


def add_log_format_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text (default) or json: one JSON object a line, for log collectors.",
    )


def configure_logging(log_format: str, verbose: bool = False, text_format: str = "") -> None:
    """Route the root logger to stderr in `log_format`; `text_format` overrides kopf's."""
    import kopf

    if log_format == "json":
        kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON, log_refkey="object")
        for handler in logging.getLogger().handlers:  # kopf's own handler and formatter,
            formatter = type(handler.formatter)  # with the logger's name added
            handler.setFormatter(formatter("%(name)s %(message)s", refkey="object"))  # type: ignore[call-arg,misc]
    elif text_format:
        kopf.configure(verbose=verbose, log_format=text_format)  # type: ignore[arg-type]
    else:
        kopf.configure(verbose=verbose)
