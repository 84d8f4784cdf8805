"""The documentation site: Markdown pages, and docs.gen, which generates the reference pages
from the code (mkdocs.yml at the repository root builds them)."""
