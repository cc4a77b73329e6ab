"""CSP hashes of the inline scripts and styles in a third-party app's templates.

Zenith's own pages have no inline code (a nonce where a template needs some), but django-rq's
dashboard ships a few fixed inline `<script>` and `<style>` blocks (the job lists' select-all
box, the statistics page's layout). A 'sha256-...' source admits exactly one such block and
nothing else, so those pages work under the policy without 'unsafe-inline'. The hashes are
computed from the installed templates at startup, so an upgrade of the app cannot leave
stale ones behind. Blocks containing template syntax are skipped: what they render varies.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
from pathlib import Path

_BLOCK = {
    "script": re.compile(r"<script(?:\s+type=\"text/javascript\")?>(.*?)</script>", re.S),
    "style": re.compile(r"<style>(.*?)</style>", re.S),
}


def inline_hashes(package: str, kind: str) -> list[str]:
    """CSP sources ('sha256-...') for each distinct inline `kind` ("script" or "style") block
    in the templates of `package`; none when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    sources = set()
    for root in spec.submodule_search_locations:
        for template in sorted(Path(root, "templates").rglob("*.html")):
            for body in _BLOCK[kind].findall(template.read_text(encoding="utf-8")):
                if "{%" in body or "{{" in body:
                    continue
                digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
                sources.add(f"'sha256-{digest}'")
    return sorted(sources)
