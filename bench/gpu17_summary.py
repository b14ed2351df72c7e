"""Issue 17's table from the JSON files of one run: worker and plain-compiled side by side.

    python bench/gpu17_summary.py OUT    # bench/gpu17_run.sh's layout: plain/, single/, two-gpu/
    python bench/gpu17_summary.py FILE.json [FILE.json ...]   # any results.json, two_gpu.json

Phases found in several files: the last file given wins. Writes OUT/summary.json (beside
the first file when files are given) and prints the table as Markdown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import issue17  # bench/ is no package

LAYOUT = ("plain/results.json", "single/results.json", "two-gpu/two_gpu.json")


def merge(files: list[Path]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for path in files:
        data = json.loads(path.read_text())
        if path.name == "two_gpu.json":
            data = {"two-gpu": data}
        results |= {k: v for k, v in data.items() if k != "env"} | {f"env:{path}": data.get("env")}
    return results


def main() -> None:
    given = [Path(a) for a in sys.argv[1:]]
    if not given:
        sys.exit(__doc__)
    if len(given) == 1 and given[0].is_dir():
        files = [given[0] / name for name in LAYOUT if (given[0] / name).exists()]
        target = given[0] / "summary.json"
    else:
        files, target = given, given[0].parent / "summary.json"
    results = merge(files)
    issue17.print_summary(results)
    rows = [[name, value] for name, value in issue17.summary(results)]
    target.write_text(json.dumps({"rows": rows, "results": results}, indent=2, default=str))
    print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
