"""`rlops completion bash|zsh|fish`: the shell code that completes rlops and kubectl-rlops.

    source <(rlops completion bash)                         # ~/.bashrc
    source <(rlops completion zsh)                          # ~/.zshrc
    rlops completion fish > ~/.config/fish/completions/rlops.fish

Completion is argcomplete's: the shell runs the command with `_ARGCOMPLETE` set and
the command answers from its own argparse parser (subcommands, options, choices such
as `-o json|yaml|wide`, file names), so it never falls behind the parser.
"""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh", "fish")
EXECUTABLES = ("rlops", "kubectl-rlops")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "completion",
        help="Print shell completion code (bash, zsh, fish).",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("shell", choices=SHELLS, help="The shell to complete in.")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(list(EXECUTABLES), shell=args.shell))
    return 0


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell and exit when asked to complete (`_ARGCOMPLETE` set), else nothing."""
    import os

    if "_ARGCOMPLETE" in os.environ:
        import argcomplete

        argcomplete.autocomplete(parser)
