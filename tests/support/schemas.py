"""Validators for the vendors' published component schemas, reduced to their structure
(tests/schemas/README.md). Needs jsonschema and referencing, which every SDK suite pins."""

import json
import pathlib

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

ROOT = pathlib.Path(__file__).resolve().parents[1] / "schemas"


def checker(document):
    """`check(name, instance)` for one reduced document under tests/schemas, e.g.
    `checker("trinsic/api-2.1.0.json")`: asserts `instance` matches component `name` and
    returns it."""
    doc = json.loads((ROOT / document).read_text())
    registry = Registry().with_resource("urn:vendor", Resource.from_contents(doc))

    def check(name, instance):
        schema = {"$ref": f"urn:vendor#/$defs/{name}"}
        errors = sorted(Draft202012Validator(schema, registry=registry).iter_errors(instance), key=str)
        assert not errors, f"{name} schema violations: " + "; ".join(e.message for e in errors[:5])
        return instance

    return check
