#!/usr/bin/env python3
"""The Helm chart renders the same objects as kustomize: compare two rendered manifests object
by object, modulo the labels Helm adds.

Usage: compare-helm-kustomize.py KUSTOMIZE.yaml HELM.yaml [--skip KIND/NAME ...]

Objects are matched by (apiVersion, kind, namespace, name). A missing, extra or different
object is a failure, printed with the differing fields (dotted paths). --skip names objects
of the kustomize side that the chart does not render by design (each with its reason in the
caller). Exit 0 when equal, 1 otherwise.
"""

import sys

import yaml

# The standard labels Helm charts carry and kustomize does not.
HELM_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
)


def normalise(value):
    """Container env lists compare as sets keyed by name: kustomize's strategic-merge patch
    moves a patched entry to the front, and no entry here refers to another ($(VAR))."""
    if isinstance(value, dict):
        out = {k: normalise(v) for k, v in value.items()}
        env = out.get("env")
        if isinstance(env, list) and all(isinstance(e, dict) and "name" in e for e in env):
            out["env"] = sorted(env, key=lambda e: e["name"])
        return out
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def load(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    objects = {}
    for doc in docs:
        meta = doc.get("metadata") or {}
        labels = meta.get("labels")
        if labels is not None:
            for key in HELM_LABELS:
                labels.pop(key, None)
            if not labels:
                meta.pop("labels")
        key = (doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"])
        if key in objects:
            raise SystemExit(f"{path}: {key[1]}/{key[3]} appears twice")
        objects[key] = normalise(doc)
    return objects


def diff(a, b, path=""):
    """Dotted paths where a and b differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append(f"{sub}: only in helm: {b[k]!r}")
            elif k not in b:
                out.append(f"{sub}: only in kustomize: {a[k]!r}")
            else:
                out.extend(diff(a[k], b[k], sub))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(diff(x, y, f"{path}[{i}]"))
        return out
    return [] if a == b else [f"{path}: kustomize {a!r} != helm {b!r}"]


def main(argv):
    args = list(argv[1:])
    skip = set()
    while "--skip" in args:
        i = args.index("--skip")
        skip.add(args[i + 1])
        del args[i : i + 2]
    if len(args) != 2:
        raise SystemExit(__doc__)
    kust, helm = load(args[0]), load(args[1])
    bad = 0
    for key in sorted(set(kust) | set(helm)):
        what = f"{key[1]}/{key[3]}"
        if what in skip and key in kust and key not in helm:
            print(f"skip {what} (not rendered by the chart by design)")
            continue
        if key not in helm:
            print(f"FAIL {what}: rendered by kustomize, not by the chart")
            bad += 1
        elif key not in kust:
            print(f"FAIL {what}: rendered by the chart, not by kustomize")
            bad += 1
        else:
            differences = diff(kust[key], helm[key])
            if differences:
                print(f"FAIL {what}:")
                for d in differences:
                    print(f"       {d}")
                bad += 1
            else:
                print(f"ok   {what}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
