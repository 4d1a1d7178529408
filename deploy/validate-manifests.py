#!/usr/bin/env python3
"""Validates deploy/kubernetes for deploy/check.sh.

Every object in every manifest file, and every object kustomize renders from each
kustomization, is checked against the pinned Kubernetes versions' OpenAPI schemas (strict:
unknown fields are errors). CRD kinds have no schema offline and are skipped, said so by name.
On top of the schemas it checks what a schema cannot: one object per file, every file listed
(or commented) in its kustomization, the shutdown arithmetic, that only hookgate's port
is exposed, and for a render whose proxy.toml has a [store] what durable delivery needs (an
embedded store: one replica, Recreate, no autoscaler, a PodDisruptionBudget that lets drains
through, the store on a big enough PersistentVolumeClaim; PostgreSQL: the URL from a Secret,
replicas kept). Exits non-zero on the first class of failure, after printing all of them.

usage: validate-manifests.py --k8s-version V [--k8s-version V ...] --dir deploy/kubernetes
                             [--rendered NAME=FILE ...]
"""

import argparse
import os
import re
import sys
import tomllib

import kubernetes_validate
import yaml

# API groups served by CRDs: no schema ships with kubernetes-validate.
CRD_GROUPS = {"monitoring.coreos.com", "cert-manager.io"}
# Kustomize inputs that are not complete objects.
NOT_OBJECTS = re.compile(r"(^kustomization\.yaml$|\.patch\.yaml$)")

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}")


def is_crd(obj):
    return obj.get("apiVersion", "").split("/")[0] in CRD_GROUPS


def validate_objects(label, objs, versions):
    for obj in objs:
        what = f"{label}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if is_crd(obj):
            print(f"skip {what} ({obj['apiVersion']} is a CRD; no schema offline)")
            continue
        before = len(failures)
        for v in versions:
            try:
                kubernetes_validate.validate(obj, v, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = "/".join(str(p) for p in e.path)
                fail(f"{what} against Kubernetes {v}: {path}: {e.message}")
                continue
            except kubernetes_validate.SchemaNotFoundError:
                fail(f"{what}: no schema for {obj.get('apiVersion')} {obj.get('kind')} in {v}")
                continue
        if len(failures) == before:
            print(f"ok   {what} (Kubernetes {', '.join(versions)}, strict)")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def check_files(root, versions):
    for dirpath, _, names in sorted(os.walk(root)):
        for name in sorted(n for n in names if n.endswith((".yaml", ".yml"))):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, os.path.dirname(root))
            docs = load_all(path)
            if NOT_OBJECTS.search(name):
                continue
            if len(docs) != 1:
                fail(f"{rel}: holds {len(docs)} objects; one object per file")
            validate_objects(rel, docs, versions)
        kust = os.path.join(dirpath, "kustomization.yaml")
        if os.path.exists(kust):
            text = open(kust).read()
            for name in sorted(names):
                if name.endswith(".yaml") and name != "kustomization.yaml" and name not in text:
                    fail(f"{os.path.relpath(kust, os.path.dirname(root))} does not mention {name}")


def parse_duration(s):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", s)
    if not m:
        raise ValueError(f"unexpected duration {s!r}")
    n, unit = int(m.group(1)), m.group(2)
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def parse_size(s):
    """A Kubernetes quantity ("4Gi", "500M") or a hookgate size ("1GiB", "16MiB"), in bytes."""
    m = re.fullmatch(r"(\d+)\s*(|k|K|M|G|T|Ki|Mi|Gi|Ti)B?", str(s))
    if not m:
        raise ValueError(f"unexpected size {s!r}")
    n, unit = int(m.group(1)), m.group(2)
    return n * {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[unit]


# The PersistentVolumeClaim of an embedded store holds store.max_bytes plus at least this much
# (SQLite's write-ahead log, free pages of deleted rows, indexes).
STORE_VOLUME_HEADROOM = 2 * 2**30


def check_store(label, conf, by_kind, dep, pod, gate, app_drain):
    """Durable delivery (README "Durable delivery"): what the Deployment must do for [store]."""
    store = conf["store"]
    routes = conf.get("routes", [])
    forwarding = [r["name"] for r in routes if r.get("delivery", "forward") != "store"]
    if not routes or forwarding:
        fail(f"{label}: [store] is configured but routes {forwarding or '(none)'} do not store")
    attempt_timeout = parse_duration(store.get("attempt_timeout", "30s"))
    if attempt_timeout > app_drain:
        fail(f"{label}: store.attempt_timeout {attempt_timeout:g}s outlives the app's drain {app_drain}s")
    replicas = dep["spec"].get("replicas", 1)
    strategy = dep["spec"].get("strategy", {})
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    if "path" in store:
        # One process per store directory (flock): never two pods on the volume.
        if replicas != 1:
            fail(f"{label}: an embedded store (store.path) needs replicas: 1, not {replicas}")
        if strategy.get("type") != "Recreate" or "rollingUpdate" in strategy:
            fail(f"{label}: an embedded store needs strategy Recreate (a rolling update starts a "
                 f"second pod on the store): {strategy}")
        if hpas:
            fail(f"{label}: a HorizontalPodAutoscaler would add replicas to an embedded store")
        for pdb in by_kind.get("PodDisruptionBudget", []):
            spec = pdb["spec"]
            evictable = (spec.get("maxUnavailable", 0) not in (0, "0%")
                         or spec.get("minAvailable", 1) in (0, "0%"))
            if not evictable:
                fail(f"{label}: PodDisruptionBudget {pdb['metadata']['name']} never lets a drain "
                     f"evict the single replica: {spec}")
        path = store["path"]
        mounts = [m for m in gate.get("volumeMounts", [])
                  if path.startswith(m["mountPath"].rstrip("/") + "/")]
        if not mounts:
            fail(f"{label}: nothing is mounted under store.path {path} in the hookgate container")
            return
        mount = max(mounts, key=lambda m: len(m["mountPath"]))
        if mount.get("readOnly"):
            fail(f"{label}: the store's volume {mount['name']} is mounted read-only")
        (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        if "persistentVolumeClaim" not in vol:
            fail(f"{label}: store.path {path} is on volume {vol['name']}, not a "
                 f"PersistentVolumeClaim: accepted webhooks would die with the pod")
            return
        claim = vol["persistentVolumeClaim"]["claimName"]
        pvcs = [c for c in by_kind.get("PersistentVolumeClaim", []) if c["metadata"]["name"] == claim]
        if len(pvcs) != 1:
            fail(f"{label}: PersistentVolumeClaim {claim} is not part of the render")
            return
        spec = pvcs[0]["spec"]
        if not set(spec.get("accessModes", [])) & {"ReadWriteOnce", "ReadWriteOncePod"}:
            fail(f"{label}: PersistentVolumeClaim {claim} is not ReadWriteOnce(Pod): {spec.get('accessModes')}")
        size = parse_size(spec["resources"]["requests"]["storage"])
        max_bytes = parse_size(store.get("max_bytes", "1GiB"))
        if size < max_bytes + STORE_VOLUME_HEADROOM:
            fail(f"{label}: PersistentVolumeClaim {claim} ({size} bytes) has less than 2 GiB "
                 f"beyond store.max_bytes ({max_bytes} bytes)")
        uid = gate["securityContext"].get("runAsGroup")
        if pod.get("securityContext", {}).get("fsGroup") != uid:
            fail(f"{label}: fsGroup is not hookgate's group {uid}: the volume may not be writable")
        print(f"info {label}: embedded store {path} on PersistentVolumeClaim {claim} "
              f"({spec['resources']['requests']['storage']}, max_bytes {store.get('max_bytes', '1GiB')}), "
              f"1 replica, Recreate, no autoscaler")
    elif "url" in store:
        url = store["url"]
        env = url.get("env") if isinstance(url, dict) else None
        if env is None:
            fail(f"{label}: store.url is not read from the environment ({{ env = \"NAME\" }})")
            return
        (var,) = [e for e in gate.get("env", []) if e["name"] == env] or [None]
        if var is None or "secretKeyRef" not in var.get("valueFrom", {}):
            fail(f"{label}: the hookgate container does not take {env} from a Secret (secretKeyRef)")
            return
        ref = var["valueFrom"]["secretKeyRef"]
        least = min([replicas] + [h["spec"].get("minReplicas", 1) for h in hpas])
        if least < 2:
            fail(f"{label}: a PostgreSQL store is there to run replicas; this runs {least}")
        if strategy.get("type") == "Recreate":
            fail(f"{label}: a PostgreSQL store needs no Recreate: keep rolling updates")
        print(f"info {label}: PostgreSQL store, {env} from Secret {ref['name']} key {ref['key']}, "
              f"{replicas} replicas{', autoscaled' if hpas else ''}")


def check_rendered(label, objs):
    """Semantic checks on one rendered kustomization."""
    before = len(failures)
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    (dep,) = by_kind["Deployment"]
    (cm,) = [c for c in by_kind["ConfigMap"] if c["metadata"]["name"] == "hookgate-config"]
    (app_cm,) = [c for c in by_kind["ConfigMap"] if c["metadata"]["name"] == "legacy-app-config"]
    pod = dep["spec"]["template"]["spec"]
    conf = tomllib.loads(cm["data"]["proxy.toml"])

    (gate,) = [c for c in pod.get("initContainers", []) if c["name"] == "hookgate"]
    if gate.get("restartPolicy") != "Always":
        fail(f"{label}: hookgate is not a native sidecar (initContainers restartPolicy: Always)")
    (app,) = [c for c in pod["containers"] if c["name"] == "app"]

    grace = pod["terminationGracePeriodSeconds"]
    pre_stop = app["lifecycle"]["preStop"]["sleep"]["seconds"]
    m = re.search(r"worker_shutdown_timeout\s+(\d+)s;", app_cm["data"]["nginx.conf"])
    app_drain = int(m.group(1))
    upstream_timeout = parse_duration(conf["upstream"]["timeout"])
    shutdown_grace = parse_duration(conf["listen"]["shutdown_grace"])
    need = pre_stop + app_drain + shutdown_grace
    print(f"info {label}: preStop {pre_stop}s + app drain {app_drain}s + shutdown_grace "
          f"{shutdown_grace:g}s = {need:g}s <= terminationGracePeriodSeconds {grace}s")
    if need >= grace:
        fail(f"{label}: {need:g}s of shutdown does not fit terminationGracePeriodSeconds {grace}")
    if upstream_timeout > app_drain:
        fail(f"{label}: upstream.timeout {upstream_timeout:g}s outlives the app's drain {app_drain}s")
    if "preStop" in gate.get("lifecycle", {}):
        fail(f"{label}: a sidecar preStop only delays hookgate's own SIGTERM; see deployment.yaml")

    admin_port = int(conf["admin"]["address"].rsplit(":", 1)[1])
    data_port = int(conf["listen"]["address"].rsplit(":", 1)[1])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if gate[probe]["httpGet"]["port"] != admin_port:
            fail(f"{label}: hookgate {probe} is not on the admin port {admin_port}")
    for svc in by_kind["Service"]:
        targets = sorted(p["targetPort"] for p in svc["spec"]["ports"])
        if targets != [data_port]:
            fail(f"{label}: Service {svc['metadata']['name']} exposes {targets}, not only {data_port}")
    for np in by_kind["NetworkPolicy"]:
        ports = sorted(p["port"] for r in np["spec"]["ingress"] for p in r.get("ports", []))
        if ports != sorted([data_port, admin_port]):
            fail(f"{label}: NetworkPolicy opens {ports}, expected only {data_port} and {admin_port}")

    for c in pod["initContainers"] + pod["containers"]:
        sc = c.get("securityContext", {})
        want = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "runAsNonRoot": True}
        for k, v in want.items():
            if sc.get(k) is not v:
                fail(f"{label}: container {c['name']} lacks securityContext.{k}: {v}")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(f"{label}: container {c['name']} does not drop ALL capabilities")
    if gate["securityContext"].get("runAsUser") != 65532:
        fail(f"{label}: hookgate does not run as UID 65532 (the image's nonroot user)")
    if "store" in conf:
        check_store(label, conf, by_kind, dep, pod, gate, app_drain)
    if len(failures) == before:
        print(f"ok   {label}: sidecar, probes, exposed ports, securityContext, shutdown arithmetic"
              + (", durable delivery" if "store" in conf else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k8s-version", action="append", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--rendered", action="append", default=[], metavar="NAME=FILE")
    args = ap.parse_args()

    check_files(args.dir, args.k8s_version)
    for item in args.rendered:
        name, path = item.split("=", 1)
        objs = load_all(path)
        validate_objects(f"render {name}", objs, args.k8s_version)
        check_rendered(f"render {name}", objs)

    if failures:
        print(f"{len(failures)} manifest problem(s)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
