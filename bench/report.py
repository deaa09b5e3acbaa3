"""Write one benchmark's section of docs/benchmarks.md without touching the others.

Each benchmark owns the text between `<!-- BEGIN name -->` and `<!-- END name -->`; a missing
section is appended. Several benchmark scripts can therefore share the file.
"""

from __future__ import annotations

import platform
import re
from datetime import datetime, timezone
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / 'docs' / 'benchmarks.md'
HEADER = (
    '# Benchmarks\n\n'
    'Written by the scripts in `bench/` (`make bench` runs them all); each section says how\n'
    'it was measured. Numbers are from one run on the machine named in the section; ratios\n'
    'measured side by side in the same run are the figures to compare.\n'
)


def machine_line() -> str:
    import os

    return (
        f'{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, '
        f'Python {platform.python_version()}, '
        f'{datetime.now(timezone.utc).strftime("%Y-%m-%d")}'
    )


def update_section(name: str, markdown: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) section `name` of the benchmarks file with `markdown`."""
    text = path.read_text(encoding='utf-8') if path.exists() else HEADER
    block = f'<!-- BEGIN {name} -->\n{markdown.rstrip()}\n<!-- END {name} -->'
    pattern = re.compile(
        rf'<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->', re.DOTALL
    )
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + '\n\n' + block + '\n'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith('\n') else text + '\n', encoding='utf-8')
