"""Make kubernetes-validate's JSON schemas stand-alone, for kubeconform.

kubernetes-validate (PyPI) ships one schema per Kubernetes kind whose "$ref"s point into a shared
`_definitions.json` by an absolute URL (`/api/_definitions.json#/$defs/...`). kubeconform loads
each kind's file on its own and cannot follow those references, so this copies into each file the
definitions it reaches and points its references at them (`#/$defs/...`). Recursive types (the
CRD's JSONSchemaProps) stay references, which is why the definitions are copied rather than
inlined.

Usage: python3 standalone_schemas.py SOURCE_DIR TARGET_DIR
"""

import json
import sys
from pathlib import Path
from typing import Any

SHARED_PREFIX = "/api/_definitions.json#/$defs/"
LOCAL_PREFIX = "#/$defs/"
SHARED_FILE = "_definitions.json"
SKIPPED_FILES = {SHARED_FILE, "all.json"}  # not kinds: the shared definitions and their index


def references(node: Any) -> set[str]:
    """The names of the shared definitions that a schema (or part of one) refers to."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                for prefix in (SHARED_PREFIX, LOCAL_PREFIX):
                    if value.startswith(prefix):
                        found.add(value.removeprefix(prefix))
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def localize(node: Any) -> Any:
    """A copy of the schema with its references to the shared file made local."""
    if isinstance(node, dict):
        return {
            key: (
                LOCAL_PREFIX + value.removeprefix(SHARED_PREFIX)
                if key == "$ref" and isinstance(value, str) and value.startswith(SHARED_PREFIX)
                else localize(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [localize(item) for item in node]
    return node


def standalone(schema: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """The schema with every shared definition it reaches, directly or not, under its "$defs"."""
    needed: set[str] = set()
    pending = references(schema)
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        if name not in shared:
            raise KeyError(f"{name} is referred to but not defined in {SHARED_FILE}")
        needed.add(name)
        pending |= references(shared[name]) - needed
    result = localize({key: value for key, value in schema.items() if key != "$id"})
    if needed:
        result["$defs"] = {name: localize(shared[name]) for name in sorted(needed)}
    return result


def convert(source: Path, target: Path) -> int:
    """Write a stand-alone copy of every kind's schema in SOURCE into TARGET; return how many."""
    shared = json.loads((source / SHARED_FILE).read_text())["$defs"]
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(source.glob("*.json")):
        if path.name in SKIPPED_FILES:
            continue
        schema = standalone(json.loads(path.read_text()), shared)
        (target / path.name).write_text(json.dumps(schema, separators=(",", ":")))
        count += 1
    return count


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    count = convert(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{count} stand-alone schemas in {sys.argv[2]}", file=sys.stderr)


if __name__ == "__main__":
    main()
