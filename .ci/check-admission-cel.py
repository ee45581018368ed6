#!/usr/bin/env python3
"""The CEL and selectors the API server evaluates for us, evaluated here with cel-python on the
cases that matter (no schema can tell a wrong expression):

1. webhook dispatch: for every (namespace, Job) pair, which entries of the
   MutatingWebhookConfiguration the API server calls (namespaceSelector + matchConditions).
   A Job reaches at most one entry — the annotation entry (/mutate) or the namespace entry
   (/mutate-namespace) — never both, so it is never injected twice;
2. the guard (ValidatingAdmissionPolicy): which Jobs it refuses.

Usage: check-admission-cel.py WEBHOOK_MANIFESTS.yaml GUARD_MANIFESTS.yaml
Prints one line per case; exit 1 if any case is wrong.
"""

import json
import sys

import celpy
import celpy.celtypes as ct
import yaml

K = "status-reporter.hyperfleet.io/inject"
ANNOTATION_ENTRY = "jobs.status-reporter.hyperfleet.io"
NAMESPACE_ENTRY = "namespace-jobs.status-reporter.hyperfleet.io"
EXCLUDED = ("kube-system", "status-reporter-system")

# The Kubernetes CEL string extensions our expressions use, which cel-python lacks.
FUNCTIONS = {"trim": lambda s: ct.StringType(str(s).strip())}
env = celpy.Environment()


def program(expression):
    return env.program(env.compile(expression), functions=FUNCTIONS)


def objects(path, kind):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d and d["kind"] == kind]


def job(job_ann=None, tmpl_ann=None, tmpl_meta=True, reporter=None):
    j = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
         "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a"}]}}}}
    if job_ann is not None:
        j["metadata"]["annotations"] = job_ann
    if tmpl_meta:
        j["spec"]["template"]["metadata"] = {} if tmpl_ann is None else {"annotations": tmpl_ann}
    pod = j["spec"]["template"]["spec"]
    if reporter == "container":
        pod["containers"].append({"name": "status-reporter", "image": "r"})
    elif reporter == "init":
        pod["initContainers"] = [{"name": "status-reporter", "image": "r", "restartPolicy": "Always"}]
    return j


def namespace(name, labels=None):
    labels = dict(labels or {})
    labels["kubernetes.io/metadata.name"] = name  # the API server sets it on every namespace
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def selects(selector, labels):
    """A metav1.LabelSelector, as the API server evaluates a namespaceSelector."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def describe(ns, obj):
    return (f'ns={ns["metadata"]["name"]}{json.dumps({k: v for k, v in ns["metadata"]["labels"].items() if k == K})} '
            f'job={json.dumps(obj["metadata"].get("annotations"))} '
            f'template={json.dumps(obj["spec"]["template"].get("metadata"))}')


def check_dispatch(path):
    mwc = objects(path, "MutatingWebhookConfiguration")[0]
    entries = []
    for hook in mwc["webhooks"]:
        conds = [program(c["expression"]) for c in hook.get("matchConditions") or []]
        entries.append((hook["name"], hook["clientConfig"]["service"]["path"], hook["namespaceSelector"], conds))
    names = [e[0] for e in entries]
    if names != [ANNOTATION_ENTRY, NAMESPACE_ENTRY]:
        print(f"FAIL webhook entries are {names}, want [{ANNOTATION_ENTRY}, {NAMESPACE_ENTRY}]")
        return 1
    paths = {e[0]: e[1] for e in entries}
    bad = 0
    if paths != {ANNOTATION_ENTRY: "/mutate", NAMESPACE_ENTRY: "/mutate-namespace"}:
        print(f"FAIL entry paths {paths}: the webhook serves /mutate and /mutate-namespace")
        bad += 1

    # The annotation entry is a superset of what the webhook injects: it decides on the value
    # (template wins) and refuses values other than "true"/"false" with a message, so those
    # must reach it. The namespace entry sends everything but an effective "false".
    jobs = [
        (job(), False, True), (job(tmpl_meta=False), False, True), (job({}, {}), False, True),
        (job({"other.example.com/inject": "true"}), False, True),
        (job({K: "true"}), True, True), (job(None, {K: "true"}), True, True),
        (job({K: "false"}), False, False), (job(None, {K: "false"}), False, False),
        (job({K: "false"}, {K: "true"}), True, True), (job({K: "true"}, {K: "false"}), True, False),
        (job({K: "yes"}), True, True),
    ]
    namespaces = [
        (namespace("team-a"), ANNOTATION_ENTRY),
        (namespace("team-b", {K: "enabled"}), NAMESPACE_ENTRY),
        (namespace("team-c", {K: "disabled"}), ANNOTATION_ENTRY),
    ] + [(namespace(n, {K: "enabled"}), None) for n in EXCLUDED]
    for ns, entry in namespaces:
        for obj, by_annotation, by_namespace in jobs:
            called = [
                name for name, _, selector, conds in entries
                if selects(selector, ns["metadata"]["labels"])
                and all(bool(p.evaluate({"object": celpy.json_to_cel(obj)})) for p in conds)
            ]
            want = []
            if entry == ANNOTATION_ENTRY and by_annotation:
                want = [ANNOTATION_ENTRY]
            elif entry == NAMESPACE_ENTRY and by_namespace:
                want = [NAMESPACE_ENTRY]
            ok = called == want and len(called) <= 1
            print(f'{"ok  " if ok else "FAIL"} {describe(ns, obj)}: calls {called or "nothing"} (want {want or "nothing"})')
            bad += not ok
    return bad


def check_guard(path):
    vap = objects(path, "ValidatingAdmissionPolicy")[0]["spec"]
    variables = [(v["name"], program(v["expression"])) for v in vap["variables"]]
    validations = [(program(v["expression"]), program(v["messageExpression"])) for v in vap["validations"]]

    def refusals(obj, ns):
        activation = {"object": celpy.json_to_cel(obj), "namespaceObject": celpy.json_to_cel(ns)}
        values = {}
        for name, p in variables:
            activation["variables"] = ct.MapType({ct.StringType(k): v for k, v in values.items()})
            values[name] = p.evaluate(activation)
        activation["variables"] = ct.MapType({ct.StringType(k): v for k, v in values.items()})
        return [str(m.evaluate(activation)) for e, m in validations if not bool(e.evaluate(activation))]

    plain, labelled = namespace("team-a"), namespace("team-b", {K: "enabled"})
    # (Job, namespace, refused?, a phrase the message must carry)
    cases = [
        (job(), plain, False, None),
        (job({K: "true"}, reporter="init"), plain, False, None),
        (job({K: "true"}, reporter="container"), plain, False, None),
        (job({K: "true"}), plain, True, "has no status-reporter container"),
        (job(None, {K: " true "}), plain, True, 'inject: "false" to run it without'),
        (job({K: "false"}), plain, False, None),
        (job({K: "true"}, {K: "false"}), plain, False, None),
        (job({K: "yes"}), plain, True, 'inject="yes" is invalid; accepted: "true" or "false"'),
        (job({K: "yes"}, reporter="init"), plain, False, None),
        (job(), labelled, True, "its namespace is labelled status-reporter.hyperfleet.io/inject=enabled"),
        (job(reporter="init"), labelled, False, None),
        (job({K: "false"}), labelled, False, None),
        (job(None, {K: "false"}), labelled, False, None),
        (job({K: "true"}), namespace("team-c", {K: "disabled"}), True, "has no status-reporter container"),
        (job(), namespace("team-c", {K: "disabled"}), False, None),
    ]
    bad = 0
    for obj, ns, refused, phrase in cases:
        messages = refusals(obj, ns)
        ok = bool(messages) == refused and (phrase is None or any(phrase in m for m in messages))
        pod = obj["spec"]["template"]["spec"]
        has = "with reporter" if any(c["name"] == "status-reporter" for c in pod["containers"] + pod.get("initContainers", [])) else "without reporter"
        print(f'{"ok  " if ok else "FAIL"} guard {describe(ns, obj)} {has}: '
              f'{"refused: " + messages[0][:90] + "…" if messages else "allowed"}')
        bad += not ok
    return bad


def main(argv):
    if len(argv) != 3:
        raise SystemExit(__doc__)
    bad = check_dispatch(argv[1]) + check_guard(argv[2])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
