#!/usr/bin/env python3
"""The --json schemas of man/meshkv.1 (section JSON OUTPUT), checked.

The man page is the one source: each schema is an .EX block after a roff
comment line `.\\" schema: NAME`, one field a line, `PATH TYPE [words]`:
  PATH  a.b for a field of an object, a[] for each element of an array,
        a.<WORD> for every field of an object whose names are data (node
        names); a trailing ? marks a field that is not always present.
  TYPE  string, integer, number, boolean, null, object or array, or several
        joined by | (integer|null).
The block after `.\\" example: NAME` is an example of it: one JSON
document (wrapped over lines as it may be), or one document a line.

Usage:
  json_schema.py MAN check NAME FILE...   every line of every FILE is one
                                          JSON document of schema NAME
  json_schema.py MAN check-dir DIR        each file of DIR, as check with
                                          the file's name as NAME
  json_schema.py MAN examples             every example parses and fits
  json_schema.py MAN names                the schema names, one a line
  json_schema.py MAN skeleton FILE        the paths and types of FILE's
                                          first line (to write a schema)
Exit 0 when everything fits; otherwise each misfit on stderr and exit 1.
"""
import json
import os
import re
import sys

TYPES = {"string", "integer", "number", "boolean", "null", "object", "array"}


class Node:
    def __init__(self):
        self.types = {"object"}
        self.optional = False
        self.fields = {}  # name -> Node
        self.any_field = None  # Node for a.<WORD>
        self.element = None  # Node for a[]


def blocks(man_path, kind):
    """{NAME: [lines]} of the .EX blocks after `.\\" KIND: NAME`."""
    out, name, lines, inside = {}, None, [], False
    for raw in open(man_path, encoding="utf-8"):
        line = raw.rstrip("\n")
        m = re.match(r'^\.\\" (schema|example): (.+)$', line)
        if m:
            name = m.group(2).strip() if m.group(1) == kind else None
            continue
        if name is None:
            continue
        if line == ".EX":
            inside, lines = True, []
        elif line == ".EE":
            if name in out:
                raise SystemExit(f"man page: two {kind} blocks named {name!r}")
            out[name] = lines
            name, inside = None, False
        elif inside:
            # Undo the roff escapes an example may need.
            lines.append(line.replace("\\-", "-").replace("\\e", "\\").replace("\\(dq", '"').replace("\\&", ""))
    return out


def parse_schema(name, lines):
    root = Node()
    for ln in lines:
        parts = ln.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise SystemExit(f"schema {name}: no type in {ln!r}")
        path, types = parts[0], set(parts[1].split("|"))
        if not types <= TYPES:
            raise SystemExit(f"schema {name}: unknown type in {ln!r}")
        optional = path.endswith("?")
        path = path.rstrip("?")
        node = root
        segs = re.findall(r"[^.\[\]]+|\[\]", path)
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            if seg == "[]":
                if node.element is None:
                    node.element = Node()
                node = node.element
            elif seg.startswith("<"):
                if node.any_field is None:
                    node.any_field = Node()
                node = node.any_field
            else:
                if seg not in node.fields:
                    if not last:
                        raise SystemExit(f"schema {name}: {path}: its parent is not listed before it")
                    node.fields[seg] = Node()
                node = node.fields[seg]
        node.types, node.optional = types, optional
    return root


def type_of(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def fit(value, node, where, errs, seen):
    seen.add(where)
    t = type_of(value)
    if t not in node.types and not (t == "integer" and "number" in node.types):
        errs.append(f"{where}: {t}, documented as {'|'.join(sorted(node.types))}")
        return
    if t == "object":
        for k, v in value.items():
            if k in node.fields:
                fit(v, node.fields[k], f"{where}.{k}", errs, seen)
            elif k.endswith("_base64") and "string" in node.fields.get(k[:-7], Node()).types:
                # A string that is not UTF-8 travels as NAME_base64.
                seen.add(f"{where}.{k[:-7]}")
                if not isinstance(v, str):
                    errs.append(f"{where}.{k}: {type_of(v)}, documented as string (base64)")
            elif node.any_field is not None:
                fit(v, node.any_field, f"{where}.<>", errs, seen)
            else:
                errs.append(f"{where}.{k}: a field the man page does not document")
        for k, child in node.fields.items():
            if not child.optional and k not in value and k + "_base64" not in value:
                errs.append(f"{where}.{k}: documented as always present, missing")
    elif t == "array" and node.element is not None:
        for v in value:
            fit(v, node.element, f"{where}[]", errs, seen)
    elif t == "array" and value:
        errs.append(f"{where}: the man page does not document its elements")


def skeleton(v, path=""):
    t = type_of(v)
    print(f"{path or '(root)'} {t}")
    if t == "object":
        for k, x in v.items():
            skeleton(x, f"{path}.{k}" if path else k)
    elif t == "array" and v:
        skeleton(v[0], f"{path}[]")


def main():
    man, what = sys.argv[1], sys.argv[2]
    schemas = {n: parse_schema(n, ls) for n, ls in blocks(man, "schema").items()}
    if what == "names":
        print("\n".join(schemas))
        return 0
    if what == "skeleton":
        skeleton(json.loads(open(sys.argv[3], encoding="utf-8").readline()))
        return 0
    errs = []
    if what == "examples":
        examples = blocks(man, "example")
        for n in schemas:
            if n not in examples:
                errs.append(f"schema {n}: no example")
        for n, lines in examples.items():
            if n not in schemas:
                errs.append(f"example {n}: no schema of that name")
                continue
            try:
                # One document wrapped over lines, or one document a line.
                lines = [json.dumps(json.loads("\n".join(lines)))]
            except ValueError:
                pass
            for i, line in enumerate(lines):
                try:
                    doc = json.loads(line)
                except ValueError as e:
                    errs.append(f"example {n}, line {i + 1}: not JSON: {e}")
                    continue
                fit(doc, schemas[n], f"example {n}", errs, set())
    elif what in ("check", "check-dir"):
        if what == "check":
            todo = [(sys.argv[3], sys.argv[4:])]
        else:
            d = sys.argv[3]
            todo = [(n, [os.path.join(d, n)]) for n in sorted(os.listdir(d))]
        for name, paths in todo:
            check_files(schemas, name, paths, errs)
    else:
        raise SystemExit(f"unknown action {what!r}")
    for e in errs:
        print(e, file=sys.stderr)
    return 1 if errs else 0


def check_files(schemas, name, paths, errs):
    """Every line of every file of `paths` fits the schema `name`."""
    if name not in schemas:
        errs.append(f"no schema named {name!r} in the man page")
    else:
        count = 0
        for path in paths:
            for i, line in enumerate(open(path, "rb").read().decode("utf-8").splitlines()):
                count += 1
                try:
                    doc = json.loads(line)
                except ValueError as e:
                    errs.append(f"{name} ({path}:{i + 1}): not JSON: {e}: {line[:200]}")
                    continue
                fit(doc, schemas[name], name, errs, set())
        if count == 0:
            errs.append(f"{name}: no output to check")


if __name__ == "__main__":
    sys.exit(main())
