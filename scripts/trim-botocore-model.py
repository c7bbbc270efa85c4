#!/usr/bin/env python3
"""Trim a botocore service model to what the gateway validates against.

Usage: scripts/trim-botocore-model.py kms 2014-11-01 > services/gateway/models/kms.json

Keeps operations (input/output/errors) and shapes (types, members, required,
min/max, enum, sensitive, error status codes); drops documentation. The models
are botocore's (Apache-2.0), see services/gateway/models/NOTICE.
"""
import gzip, json, os, sys
import botocore

svc, ver = sys.argv[1], sys.argv[2]
base = os.path.join(os.path.dirname(botocore.__file__), "data", svc, ver)
path = os.path.join(base, "service-2.json")
m = json.load(gzip.open(path + ".gz")) if os.path.exists(path + ".gz") else json.load(open(path))
KEEP_SHAPE = {"type", "members", "required", "min", "max", "enum", "sensitive", "member", "key", "value",
              "error", "exception", "flattened", "locationName", "timestampFormat"}
KEEP_MEMBER = {"shape", "locationName", "flattened", "xmlNamespace"}
ops = {}
for name, op in m["operations"].items():
    ops[name] = {k: op[k] for k in ("input", "output", "errors") if k in op}
    ops[name]["http"] = op.get("http", {})
shapes = {}
for name, s in m["shapes"].items():
    t = {k: v for k, v in s.items() if k in KEEP_SHAPE}
    if "members" in t:
        t["members"] = {mn: {k: v for k, v in mv.items() if k in KEEP_MEMBER} for mn, mv in t["members"].items()}
    for k in ("member", "key", "value"):
        if k in t:
            t[k] = {kk: vv for kk, vv in t[k].items() if kk in KEEP_MEMBER}
    shapes[name] = t
json.dump({"metadata": m["metadata"], "operations": ops, "shapes": shapes}, sys.stdout, separators=(",", ":"), sort_keys=True)
