"""The one plain-text table format of the package (summary, compare, tuning).

Keras-free: the CLI prints these tables for every command.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]],
               right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell, a dashed rule under the header.

    Args:
        header: Column titles.
        rows: One sequence of cells per row (converted with ``str``; ``None``
            prints as an empty cell).
        right: Indexes of the columns to right-align (numbers).

    Returns:
        The table, without a trailing newline.

    Example:

    >>> print(text_table(["model", "params"], [["r20", "269,722"]], right=[1]))
    model   params
    -----  -------
    r20    269,722
    """
    table = [[str(h) for h in header]]
    for row in rows:
        cells = ["" if c is None else str(c) for c in row]
        if len(cells) != len(header):
            raise ValueError(f"row has {len(cells)} cells, the header {len(header)}. "
                             f"Received: row={list(row)!r}")
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    aligned_right = set(right)

    def line(cells: list) -> str:
        return "  ".join(c.rjust(w) if i in aligned_right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [line(table[0]), "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in table[1:]]
    return "\n".join(lines)
