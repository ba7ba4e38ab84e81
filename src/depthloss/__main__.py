"""``python -m depthloss``: list the registered losses (one line each); ``demo`` trains on synthetic scenes."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from depthloss import __version__
from depthloss.registry import list_losses, loss_info


def list_command(pattern: str = "*") -> str:
    """The listing printed by ``python -m depthloss`` (``list``)."""
    names = list_losses(pattern)
    width = max((len(n) for n in names), default=0)
    lines = [f"depthloss {__version__}: {len(names)} registered losses (get_loss(name, **kwargs))", ""]
    for name in names:
        info = loss_info(name)
        tags = [info.loss_space]
        if info.invariances:
            tags.append("invariant to " + "+".join(info.invariances))
        if info.uses_progress:
            tags.append("uses progress")
        alias = f" (alias: {', '.join(info.aliases)})" if info.aliases else ""
        lines.append(f"  {name:<{width}}  {info.summary} [{'; '.join(tags)}]{alias}")
    lines.append("")
    lines.append("Prefix any name with 'sparse-' for sparse (LiDAR) targets in SupervisedLoss.")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m depthloss", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    p_list = sub.add_parser("list", help="list the registered losses (default)")
    p_list.add_argument("pattern", nargs="?", default="*", help="wildcard, e.g. 'ssi*'")
    p_demo = sub.add_parser("demo", help="train a small depth network on synthetic scenes with a loss")
    from depthloss import demo

    demo.add_arguments(p_demo)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.run_from_args(args)
    print(list_command(getattr(args, "pattern", "*")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
