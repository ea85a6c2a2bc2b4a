"""Sphinx configuration of the metamers documentation site.

Build it from the repository root (what CI runs; every warning is an error):

    .venv/bin/python -m sphinx -W --keep-going -q -b html docs /tmp/docs-html
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the package as checked out, installed or not

import metamers  # noqa: E402

project = "metamers"
author = "the metamers authors"
copyright = "the metamers authors"
release = metamers.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# docs/README.md is the folder's page for browsing the repository on GitHub; it points here.
exclude_patterns = ["_build", "README.md", "Thumbs.db", ".DS_Store"]

# Markdown (MyST): anchors for headings down to level 3, so pages link to each other's sections.
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# API reference: numpydoc docstrings with reST roles.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}
# A docstring inherited from torch (Function.forward, Module.forward) refers to torch's own
# documentation; document what this package says about its own members only.
autodoc_inherit_docstrings = False

html_theme = "furo"
html_title = f"metamers {release}"
