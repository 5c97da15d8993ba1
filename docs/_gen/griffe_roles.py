"""A griffe extension: reST roles in docstrings (``:class:`Foo```) rendered as code.

The code base writes docstrings in reST style; Markdown would show the role
name literally. This rewrites ``:role:`~a.b.C``` to ```C``` before rendering.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`]+)`")


class ReSTRoles(griffe.Extension):
    """Rewrite reST cross-reference roles as inline code."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(
                lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", obj.docstring.value
            )
