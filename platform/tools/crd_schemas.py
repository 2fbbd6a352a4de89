"""Turn CustomResourceDefinitions into strict JSON schemas for kubeconform.

Each served version of each CRD becomes `TARGET/<group>/<kind>_<version>.json` (kind in lower
case), the layout of kubeconform's `-schema-location
'TARGET/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'`. The schema is the CRD's
`openAPIV3Schema` made as strict as the API server is:

- an object refuses fields it does not list (`additionalProperties: false`) unless the CRD says
  `x-kubernetes-preserve-unknown-fields` or gives `additionalProperties` itself: where the API
  server would prune a field silently, kubeconform names it;
- `nullable` becomes a `null` type, `x-kubernetes-int-or-string` an integer or a string;
- the root (and any `x-kubernetes-embedded-resource`) gets `apiVersion` and `kind` (fixed to the
  CRD's) and `metadata` as Kubernetes' own ObjectMeta schema (OBJECTMETA, a stand-alone schema
  from kubernetes-schemas.sh), since the CRD says only `metadata: {type: object}` there.

Usage: python3 crd_schemas.py CRD_DIR OBJECTMETA TARGET_DIR
"""

import json
import sys
from pathlib import Path
from typing import Any

import yaml

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def resource_properties(api_version: str | None, kind: str | None) -> dict[str, Any]:
    """apiVersion, kind and metadata of a resource (fixed to one API version and kind if given)."""
    return {
        "apiVersion": {"type": "string", **({"enum": [api_version]} if api_version else {})},
        "kind": {"type": "string", **({"enum": [kind]} if kind else {})},
        "metadata": {"$ref": f"#/$defs/{OBJECT_META}"},
    }


def strict(node: dict[str, Any], in_junctor: bool = False) -> dict[str, Any]:
    """A copy of one structural schema node, and of those below it, made strict. A branch of
    allOf/anyOf/oneOf/not only adds conditions to its node's own fields, so it is not closed."""
    result = dict(node)
    if "properties" in node:
        result["properties"] = {
            name: strict(child, in_junctor) for name, child in node["properties"].items()
        }
    if isinstance(node.get("items"), dict):
        result["items"] = strict(node["items"], in_junctor)
    if isinstance(node.get("additionalProperties"), dict):
        result["additionalProperties"] = strict(node["additionalProperties"], in_junctor)
    if isinstance(node.get("not"), dict):
        result["not"] = strict(node["not"], in_junctor=True)
    for key in SUBSCHEMA_LISTS:
        if key in node:
            result[key] = [strict(child, in_junctor=True) for child in node[key]]

    if node.get("x-kubernetes-embedded-resource"):
        result["properties"] = {**resource_properties(None, None), **result.get("properties", {})}
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in node:
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if result.pop("nullable", False) and "type" in result:
        result["type"] = [result["type"], "null"]
    is_object = node.get("type") == "object" or "properties" in node
    if (
        is_object
        and not in_junctor
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


def resource_schema(
    openapi: dict[str, Any], api_version: str, kind: str, object_meta: dict[str, Any]
) -> dict[str, Any]:
    """The stand-alone strict schema of one version of a custom resource."""
    schema = strict(openapi)
    schema["properties"] = {**schema["properties"], **resource_properties(api_version, kind)}
    meta = {key: value for key, value in object_meta.items() if key not in ("$schema", "$defs")}
    return {
        "$schema": DRAFT,
        **schema,
        "$defs": {**object_meta.get("$defs", {}), OBJECT_META: meta},
    }


def convert(crd_dir: Path, object_meta: dict[str, Any], target: Path) -> list[Path]:
    """Write the schema of every served version of every CRD in CRD_DIR; return their paths."""
    written = []
    for path in sorted(crd_dir.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                openapi = version["schema"]["openAPIV3Schema"]
                schema = resource_schema(openapi, f"{group}/{version['name']}", kind, object_meta)
                out = target / group / f"{kind.lower()}_{version['name']}.json"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(schema, separators=(",", ":")))
                written.append(out)
    return written


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    crd_dir, object_meta, target = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    written = convert(crd_dir, json.loads(object_meta.read_text()), target)
    if not written:
        sys.exit(f"no CustomResourceDefinition in {crd_dir}")
    print(f"{len(written)} CRD schemas in {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
