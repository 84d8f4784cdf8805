"""Reference pages generated from the code when the documentation is built.

`docs/gen/hooks.py` is the MkDocs hook (named in mkdocs.yml) that adds them to the site:
each module here renders one page as Markdown from the code it documents, so a page cannot
drift from the code, and `tests/docs/` compares each page with the code once more.

| page | module | read from |
|---|---|---|
| reference/errors.md | errors | core.api.error_codes and the DomainError classes |
| reference/settings.md | settings_ref | heldout/settings.py (parsed, not imported) |
| reference/challenge-yaml.md | bundle_keys | the bundle importer's key sets and defaults |
| reference/container-contract.md | contract | one contract module (contract.CONTRACT_MODULE) |
| reference/api.md, reference/openapi.yaml | openapi | drf-spectacular's schema |

None needs a database. Those that import the server set Django up with development
settings (django_setup), which need no service: SQLite is the default and is never opened.
"""
