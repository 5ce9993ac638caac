"""A Griffe extension for the API reference: Sphinx roles in docstrings as code.

The package's docstrings name other objects the Sphinx way (``:func:`~keras_resnet.as_spec```);
Markdown would show the role itself. This turns ``:func:`~a.b.c``` into ``c`` and
``:class:`a.b``` into ``a.b``, set as code, as Sphinx shows them.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|data|meth|attr|mod|exc|obj):`(~?)([^`]+)`")


def _plain(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"``{target.rsplit('.', 1)[-1] if tilde else target}``"


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_plain, obj.docstring.value)
