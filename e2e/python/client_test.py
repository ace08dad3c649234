#!/usr/bin/env python3
"""The official Python `kubernetes` client (PyPI) against an rkube cluster.

Run by e2e/tests/python_client.rs, or by hand against any cluster:

    python3 e2e/python/client_test.py --kubeconfig DIR/kubeconfig [--killed-file F]

Everything goes through DIR/kubeconfig (HTTPS through the load balancer, the
admin's client certificate), with the client's own hidden retries turned off,
so every retry is one this script makes and counts.

1. CRUD: a namespace, configmaps with labels, a deployment, a secret; reads
   checked field by field (the client deserializes strictly into its models).
2. Lists with label selectors (equality and set-based) and field selectors
   (metadata.name); pagination with limit/_continue returning every item
   exactly once from one snapshot, though a configmap is created between pages.
3. Patches: strategic merge (patch_namespaced_deployment), JSON merge and JSON
   patch (by content type); replace with a stale resourceVersion is a 409
   Conflict Status; NotFound and AlreadyExists are Status bodies too; deletes,
   deletecollection.
4. Failover: a writer creates configmaps one after another while a
   `kubernetes.watch.Watch().stream(...)` watches them. It prints
   READY-FOR-KILL; whoever runs it kills the Raft leader with -9 and then
   creates the file named by --killed-file; the writer goes on for a while
   after that. A failed request is retried at most once (a create whose retry
   says AlreadyExists was applied by the first try); a broken watch is
   re-established from the last resourceVersion it delivered, as client users
   do. Every acknowledged create must be seen by the watch exactly once, in
   order, and be readable at the end.

The last line of stdout is `REPORT {json}` with the counts; the exit code is 0
only if every check held.
"""

import argparse
import base64
import datetime
import json
import os
import sys
import threading
import time

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

# Transient failures a client user retries (once): the connection broke, or the
# API answered that it could not serve the request right now.
RETRYABLE_CODES = {0, 429, 500, 502, 503, 504}
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)
REQUEST_TIMEOUT = 30  # seconds, for each non-watch request


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


def log(msg):
    print(f"[client_test] {msg}", file=sys.stderr, flush=True)


def status_of(err):
    """The Kubernetes Status in an ApiException's body, as a dict."""
    try:
        return json.loads(err.body)
    except (TypeError, ValueError):
        raise CheckFailed(f"error body is not a Status: {err.status} {err.body!r}")


def expect_api_error(code, reason, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ApiException as err:
        check(err.status == code, f"{fn.__name__}: want {code}, got {err.status}: {err.body}")
        s = status_of(err)
        check(s.get("kind") == "Status" and s.get("apiVersion") == "v1", f"not a Status: {s}")
        check(s.get("status") == "Failure", f"status is not Failure: {s}")
        check(s.get("code") == code, f"Status code {s.get('code')} != {code}")
        check(s.get("reason") == reason, f"want reason {reason}: {s}")
        return s
    raise CheckFailed(f"{fn.__name__} succeeded; want {code} {reason}")


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.retries = 0
        self.applied_on_retry = 0

    def add(self, field):
        with self.lock:
            setattr(self, field, getattr(self, field) + 1)


COUNTERS = Counters()


def once_more(what, fn, *args, **kwargs):
    """Calls fn; after a transient failure calls it exactly once more."""
    try:
        return fn(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
    except ApiException as err:
        if err.status not in RETRYABLE_CODES:
            raise
        first = f"{err.status} {err.reason}"
    except TRANSPORT_ERRORS as err:
        first = repr(err)
    log(f"{what}: retrying once after {first}")
    COUNTERS.add("retries")
    return fn(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)


def create_once_more(what, fn, namespace, body):
    """A create retried at most once; AlreadyExists on the retry means the
    first try was applied (its answer was lost)."""
    try:
        return fn(namespace, body, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as err:
        if err.status not in RETRYABLE_CODES:
            raise
        first = f"{err.status} {err.reason}"
    except TRANSPORT_ERRORS as err:
        first = repr(err)
    log(f"{what}: retrying once after {first}")
    COUNTERS.add("retries")
    try:
        return fn(namespace, body, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as err:
        if err.status == 409 and status_of(err).get("reason") == "AlreadyExists":
            COUNTERS.add("applied_on_retry")
            return None
        raise


def aware(ts):
    return isinstance(ts, datetime.datetime) and ts.tzinfo is not None


def meta(name, namespace=None, labels=None):
    return client.V1ObjectMeta(name=name, namespace=namespace, labels=labels)


# ---------------------------------------------------------------- CRUD etc.


def discovery(api, report):
    v = client.VersionApi(api).get_code()  # GET /version/
    check(v.major == "1" and v.git_version.startswith("v1."), f"version {v}")
    check(client.CoreApi(api).get_api_versions().versions == ["v1"], "GET /api/")
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}  # GET /apis/
    check({"apps", "coordination.k8s.io", "rbac.authorization.k8s.io"} <= groups, f"groups {groups}")
    core = {r.name for r in client.CoreV1Api(api).get_api_resources().resources}
    check({"configmaps", "secrets", "namespaces", "pods"} <= core, f"core resources {core}")
    apps = {r.name: r for r in client.AppsV1Api(api).get_api_resources().resources}
    check("deployments/scale" in apps and apps["deployments"].namespaced, "apps/v1 resources")
    # A path nothing serves: a 404 Status, as Kubernetes answers.
    try:
        resp = api.call_api(*api.param_serialize("GET", "/no/such/path"), _request_timeout=REQUEST_TIMEOUT)
        resp.read()
        api.response_deserialize(resp, {"200": "object"})  # raises for anything but a 2xx
        raise CheckFailed("GET /no/such/path succeeded")
    except ApiException as err:
        check(err.status == 404 and status_of(err).get("reason") == "NotFound", f"unknown path: {err}")
    report["api_groups"] = len(groups)


def crud(core, apps, ns, report):
    created = core.create_namespace(client.V1Namespace(metadata=meta(ns, labels={"rkube.io/test": "python"})))
    check(created.metadata.name == ns and created.metadata.uid, f"namespace: {created.metadata}")
    check(aware(created.metadata.creation_timestamp), f"creationTimestamp: {created.metadata.creation_timestamp!r}")
    got = core.read_namespace(ns)
    check(got.status.phase == "Active", f"namespace phase {got.status.phase}")
    check(got.metadata.labels.get("rkube.io/test") == "python", f"namespace labels {got.metadata.labels}")
    expect_api_error(409, "AlreadyExists", core.create_namespace, client.V1Namespace(metadata=meta(ns)))

    # ConfigMaps with labels.
    names = [f"cm-{i:02}" for i in range(30)]
    for i, name in enumerate(names):
        labels = {"app": "py", "tier": "a" if i % 2 == 0 else "b", "idx": str(i)}
        cm = core.create_namespaced_config_map(
            ns, client.V1ConfigMap(metadata=meta(name, labels=labels), data={"k": "v", "i": str(i)})
        )
        check(cm.kind == "ConfigMap" and cm.api_version == "v1", f"create answer kind: {cm.kind} {cm.api_version}")
        check(cm.metadata.resource_version and cm.metadata.uid, f"create answer metadata: {cm.metadata}")
    cm = core.read_namespaced_config_map("cm-03", ns)
    check(cm.data == {"k": "v", "i": "3"}, f"cm-03 data {cm.data}")
    check(cm.metadata.labels == {"app": "py", "tier": "b", "idx": "3"}, f"cm-03 labels {cm.metadata.labels}")
    check(cm.metadata.namespace == ns and aware(cm.metadata.creation_timestamp), f"cm-03 metadata {cm.metadata}")
    expect_api_error(409, "AlreadyExists", core.create_namespaced_config_map, ns,
                     client.V1ConfigMap(metadata=meta("cm-03")))
    s = expect_api_error(404, "NotFound", core.read_namespaced_config_map, "nope", ns)
    check(s.get("details", {}).get("name") == "nope" and s["details"].get("kind") == "configmaps", f"404 details {s}")

    # A deployment: defaults filled in by the server.
    dep = client.V1Deployment(
        metadata=meta("web", labels={"app": "web"}),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[
                    client.V1Container(name="app", image="rkube.local/busybox:1.35", command=["sleep", "3600"]),
                    client.V1Container(name="side", image="rkube.local/busybox:1.35", command=["sleep", "3600"]),
                ]),
            ),
        ),
    )
    d = apps.create_namespaced_deployment(ns, dep)
    check(d.metadata.generation == 1, f"deployment generation {d.metadata.generation}")
    d = apps.read_namespaced_deployment("web", ns)
    check(d.spec.replicas == 2 and d.spec.strategy.type == "RollingUpdate", f"deployment spec {d.spec}")
    check(d.spec.revision_history_limit == 10 and d.spec.progress_deadline_seconds == 600, "deployment defaults")
    check(d.spec.template.spec.restart_policy == "Always", "pod template defaults")
    check([c.name for c in d.spec.template.spec.containers] == ["app", "side"], "containers")

    # A secret: stringData folded into data.
    sec = core.create_namespaced_secret(ns, client.V1Secret(
        metadata=meta("creds"), data={"user": base64.b64encode(b"admin").decode()},
        string_data={"password": "hunter2"}))
    sec = core.read_namespaced_secret("creds", ns)
    check(sec.type == "Opaque", f"secret type {sec.type}")
    check({k: base64.b64decode(v) for k, v in sec.data.items()} == {"user": b"admin", "password": b"hunter2"},
          f"secret data {sec.data}")
    check(not sec.string_data, "stringData is not stored")
    report["configmaps"] = len(names)
    return names


def lists(core, ns, names, report):
    def listed(**kw):
        lst = core.list_namespaced_config_map(ns, **kw)
        check(lst.kind == "ConfigMapList" and lst.api_version == "v1", f"list kind {lst.kind} {lst.api_version}")
        check(lst.metadata.resource_version, "list has a resourceVersion")
        return sorted(i.metadata.name for i in lst.items)

    evens = [n for i, n in enumerate(names) if i % 2 == 0]
    odds = [n for i, n in enumerate(names) if i % 2 == 1]
    check(listed(label_selector="app=py") == names, "label app=py")
    check(listed(label_selector="tier=a") == evens, "label tier=a")
    check(listed(label_selector="tier!=a,app=py") == odds, "label tier!=a")
    check(listed(label_selector="tier in (a,b),idx notin (0,1,2)") == names[3:], "set-based selector")
    check(listed(label_selector="app,!missing") == names, "exists / not exists")
    check(listed(label_selector="app=nothing") == [], "no match")
    check(listed(field_selector="metadata.name=cm-07") == ["cm-07"], "field metadata.name")
    check(listed(field_selector="metadata.name!=cm-07", label_selector="tier=b") == [n for n in odds if n != "cm-07"],
          "field != with a label selector")
    check(listed(field_selector=f"metadata.namespace={ns},metadata.name=cm-10") == ["cm-10"], "two field terms")
    expect_api_error(400, "BadRequest", core.list_namespaced_config_map, ns, field_selector="data.k=v")
    expect_api_error(400, "BadRequest", core.list_namespaced_config_map, ns, label_selector="a in (")

    # Pagination from one snapshot: a configmap created between pages sorts
    # after every other name and must not appear.
    seen, pages, token, rv = [], 0, None, None
    while True:
        page = core.list_namespaced_config_map(ns, label_selector="app=py", limit=7, _continue=token)
        pages += 1
        check(len(page.items) <= 7, f"page of {len(page.items)} > limit")
        rv = rv or page.metadata.resource_version
        check(page.metadata.resource_version == rv, "every page is read at the first page's revision")
        seen += [i.metadata.name for i in page.items]
        if pages == 1:
            check(page.metadata.remaining_item_count in (None, len(names) - 7),
                  f"remainingItemCount {page.metadata.remaining_item_count}")
            core.create_namespaced_config_map(ns, client.V1ConfigMap(
                metadata=meta("cm-zz-late", labels={"app": "py"})))
        token = page.metadata._continue
        if not token:
            break
        check(pages < 20, "pagination does not end")
    check(len(seen) == len(set(seen)), f"an item came twice: {seen}")
    check(sorted(seen) == names, f"pages returned {sorted(seen)}")
    check(pages == 5, f"{pages} pages for 30 items by 7")
    check("cm-zz-late" in listed(label_selector="app=py"), "a fresh list sees the late configmap")
    expect_api_error(400, "BadRequest", core.list_namespaced_config_map, ns, limit=5, _continue="garbage")

    # resourceVersion semantics of a list: the pages' revision is older than
    # the late configmap. Unset match (and NotOlderThan) read the most recent
    # state; Exact reads at that revision; "0" is any state; a revision from
    # the future is a 504; a match without a resourceVersion is invalid.
    check("cm-zz-late" in listed(resource_version=rv), "rv without a match is not older than")
    check("cm-zz-late" in listed(resource_version=rv, resource_version_match="NotOlderThan"), "NotOlderThan")
    check(listed(resource_version=rv, resource_version_match="Exact", label_selector="app=py") == names, "Exact")
    check("cm-zz-late" in listed(resource_version="0"), "resourceVersion=0")
    expect_api_error(504, "Timeout", core.list_namespaced_config_map, ns, resource_version=str(int(rv) + 10**6))
    expect_api_error(422, "Invalid", core.list_namespaced_config_map, ns, resource_version_match="Exact")
    report["pages"] = pages
    report["paginated_items"] = len(seen)

    # A watch without a resourceVersion starts with the current state as
    # ADDED events, and ends by itself after timeout_seconds.
    started = time.monotonic()
    initial = [ev for ev in watch.Watch().stream(core.list_namespaced_config_map, ns, label_selector="tier=b",
                                                 timeout_seconds=1, _request_timeout=(10, 30))]
    check(time.monotonic() - started < 10, "timeout_seconds ended the watch")
    check({e["type"] for e in initial} == {"ADDED"}, f"initial events {[e['type'] for e in initial]}")
    check(sorted(e["object"].metadata.name for e in initial) == odds, "initial events are the current state")
    report["initial_events"] = len(initial)


def patches(core, apps, ns, report):
    # Strategic merge: containers merge by name; a spec change bumps generation.
    d = apps.patch_namespaced_deployment("web", ns, {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "rkube.local/busybox:2"}]}}}})
    images = {c.name: c.image for c in d.spec.template.spec.containers}
    check(images == {"app": "rkube.local/busybox:2", "side": "rkube.local/busybox:1.35"}, f"strategic: {images}")
    check(d.metadata.generation == 2, f"generation after a spec patch: {d.metadata.generation}")
    # $patch: delete removes one element.
    d = apps.patch_namespaced_deployment("web", ns, {
        "spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}})
    check([c.name for c in d.spec.template.spec.containers] == ["app"], "strategic $patch: delete")
    # JSON merge patch: a list is replaced whole, null deletes a key.
    d = apps.patch_namespaced_deployment("web", ns, {
        "metadata": {"labels": {"app": None, "patched": "merge"}},
        "spec": {"replicas": 3}}, _content_type="application/merge-patch+json")
    check(d.metadata.labels == {"patched": "merge"} and d.spec.replicas == 3, f"merge patch: {d.metadata.labels}")
    cm = core.patch_namespaced_config_map("cm-00", ns, {"data": {"k": None, "k2": "v2"}},
                                          _content_type="application/merge-patch+json")
    check(cm.data == {"i": "0", "k2": "v2"}, f"merge patch data {cm.data}")
    # JSON patch (the client's default content type for a list body).
    cm = core.patch_namespaced_config_map("cm-00", ns, [
        {"op": "test", "path": "/data/k2", "value": "v2"},
        {"op": "replace", "path": "/data/k2", "value": "v3"},
        {"op": "add", "path": "/metadata/labels/patched", "value": "json"},
        {"op": "remove", "path": "/data/i"},
    ])
    check(cm.data == {"k2": "v3"} and cm.metadata.labels.get("patched") == "json", f"json patch: {cm}")
    before = cm.metadata.resource_version
    try:
        core.patch_namespaced_config_map("cm-00", ns, [{"op": "test", "path": "/data/k2", "value": "other"}])
        raise CheckFailed("a failing JSON patch test op was applied")
    except ApiException as err:
        check(400 <= err.status < 500, f"failed test op: {err.status}")
        check(status_of(err).get("kind") == "Status", "failed test op answers a Status")
    check(core.read_namespaced_config_map("cm-00", ns).metadata.resource_version == before, "nothing written")

    # Replace with a stale resourceVersion: 409 Conflict.
    stale = core.read_namespaced_config_map("cm-01", ns)
    core.patch_namespaced_config_map("cm-01", ns, {"data": {"moved": "yes"}})
    stale.data["mine"] = "x"
    s = expect_api_error(409, "Conflict", core.replace_namespaced_config_map, "cm-01", ns, stale)
    check("the object has been modified" in s.get("message", ""), f"conflict message: {s}")
    fresh = core.read_namespaced_config_map("cm-01", ns)
    check("mine" not in fresh.data and fresh.data.get("moved") == "yes", "the stale replace changed nothing")
    fresh.data["mine"] = "x"
    replaced = core.replace_namespaced_config_map("cm-01", ns, fresh)
    check(int(replaced.metadata.resource_version) > int(fresh.metadata.resource_version), "replace moves the rv")
    report["patches"] = 6


def deletes(core, apps, ns, names, report):
    st = core.delete_namespaced_config_map("cm-02", ns)
    check(st is not None, "delete answered")
    expect_api_error(404, "NotFound", core.read_namespaced_config_map, "cm-02", ns)
    expect_api_error(404, "NotFound", core.delete_namespaced_config_map, "cm-02", ns)
    apps.delete_namespaced_deployment("web", ns, propagation_policy="Background")
    expect_api_error(404, "NotFound", apps.read_namespaced_deployment, "web", ns)
    core.delete_namespaced_secret("creds", ns)
    core.delete_collection_namespaced_config_map(ns, label_selector="tier=a")
    left = sorted(i.metadata.name for i in core.list_namespaced_config_map(ns, label_selector="app=py").items)
    want = sorted([n for i, n in enumerate(names) if i % 2 == 1 and n != "cm-02"] + ["cm-zz-late"])
    check(left == want, f"after deletecollection: {left}")
    report["deleted"] = len(names) + 1 - len(left)


# ---------------------------------------------------------------- failover


class Watcher(threading.Thread):
    """Watches configmaps labelled phase=watch from resource_version and
    re-establishes the watch from the last resourceVersion it saw whenever the
    stream ends or breaks. A request that fails before delivering anything may
    be retried once; a second failure in a row ends the watch with an error."""

    def __init__(self, core, ns, resource_version):
        super().__init__(daemon=True)
        self.core, self.ns, self.rv = core, ns, resource_version
        self.events = []  # (type, name, resourceVersion)
        self.cond = threading.Condition()
        self.stopping = False
        self.error = None
        self.reconnects = 0
        self.breaks = 0
        self.bookmarks = 0
        self.w = None

    def seen_names(self):
        with self.cond:
            return [name for t, name, _ in self.events if t == "ADDED"]

    def wait_for(self, count, deadline):
        with self.cond:
            while len([e for e in self.events if e[0] == "ADDED"]) < count and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return self.error is None

    def stop(self):
        self.stopping = True
        if self.w:
            self.w.stop()

    def run(self):
        failed_in_a_row = 0
        try:
            while not self.stopping:
                self.w = watch.Watch()
                delivered = False
                try:
                    for ev in self.w.stream(self.core.list_namespaced_config_map, self.ns,
                                            label_selector="phase=watch", resource_version=self.rv,
                                            allow_watch_bookmarks=True, timeout_seconds=60,
                                            _request_timeout=(10, 60)):
                        delivered = True
                        failed_in_a_row = 0
                        raw = ev["raw_object"]
                        rv = raw["metadata"]["resourceVersion"]
                        check(int(rv) > int(self.rv), f"watch went back: {rv} after {self.rv}")
                        if ev["type"] == "BOOKMARK":
                            self.bookmarks += 1
                        else:
                            obj = ev["object"]
                            check(isinstance(obj, client.V1ConfigMap), f"event object is {type(obj)}")
                            check(raw.get("kind") == "ConfigMap" and raw.get("apiVersion") == "v1",
                                  f"watch object without kind/apiVersion: {raw}")
                            with self.cond:
                                self.events.append((ev["type"], obj.metadata.name, rv))
                                self.cond.notify_all()
                        self.rv = rv
                    # Ended by timeout_seconds, or closed cleanly by a dying
                    # server: carry on from self.rv.
                except ApiException as err:
                    if err.status not in RETRYABLE_CODES:
                        raise
                    self.note_failure(err, delivered)
                    failed_in_a_row = 0 if delivered else failed_in_a_row + 1
                except TRANSPORT_ERRORS as err:
                    if self.stopping:
                        break
                    self.note_failure(err, delivered)
                    failed_in_a_row = 0 if delivered else failed_in_a_row + 1
                check(failed_in_a_row <= 1, "the watch failed twice in a row")
                if not self.stopping:
                    self.reconnects += 1
        except BaseException as err:  # noqa: BLE001 - reported to the main thread
            with self.cond:
                self.error = err
                self.cond.notify_all()

    def note_failure(self, err, delivered):
        self.breaks += 1
        log(f"watch broke at rv {self.rv} ({'after' if delivered else 'before'} events): {err!r}; "
            "re-establishing from there")


def failover(core, ns, killed_file, report):
    start_rv = core.list_namespaced_config_map(ns, label_selector="phase=watch").metadata.resource_version
    # Three watches, each on a client of its own whose one connection is opened
    # here, one after another: the load balancer deals consecutive connections
    # round robin, so one watch is on each replica and one of them on the
    # leader about to be killed.
    watchers = []
    for _ in range(3):
        api = client.ApiClient()
        client.VersionApi(api).get_code(_request_timeout=REQUEST_TIMEOUT)
        watchers.append(Watcher(client.CoreV1Api(api), ns, start_rv))
    for w in watchers:
        w.start()

    acked = []
    before_kill, after_kill = 20, 20
    announced = False
    killed_at = None
    deadline = time.monotonic() + 120
    i = 0
    while True:
        check(time.monotonic() < deadline, "the writer did not finish in time")
        for w in watchers:
            check(w.error is None, f"watch failed: {w.error!r}")
        name = f"w-{i:04}"
        create_once_more(name, core.create_namespaced_config_map, ns,
                         client.V1ConfigMap(metadata=meta(name, labels={"phase": "watch"}), data={"i": str(i)}))
        acked.append(name)
        i += 1
        if len(acked) == before_kill and not announced:
            # The kill happens while the writer keeps going.
            print("READY-FOR-KILL", flush=True)
            announced = True
        if killed_file is None and len(acked) >= before_kill + after_kill:
            break
        if killed_file is not None and announced and killed_at is None and os.path.exists(killed_file):
            killed_at = len(acked)
            log(f"leader killed around write {killed_at}")
        if killed_at is not None and len(acked) >= killed_at + after_kill:
            break

    for n, w in enumerate(watchers):
        ok = w.wait_for(len(acked), time.monotonic() + 60)
        w.stop()
        w.join(15)
        check(w.error is None, f"watch {n} failed: {w.error!r}")
        seen = w.seen_names()
        check(ok, f"watch {n} saw {len(seen)} of {len(acked)} acknowledged creates")
        check(len(seen) == len(set(seen)), f"watch {n} delivered a create twice: {seen}")
        check(seen == acked, f"watch {n}'s order differs from the writer's: {seen} vs {acked}")
        check(all(t == "ADDED" for t, _, _ in w.events), f"watch {n}: unexpected events {w.events}")
        rvs = [int(rv) for _, _, rv in w.events]
        check(rvs == sorted(set(rvs)), f"watch {n}: resourceVersions strictly increase")

    # Every acknowledged write is still there.
    listed = [c.metadata.name for c in once_more("final list", core.list_namespaced_config_map, ns,
                                                 label_selector="phase=watch").items]
    check(sorted(listed) == acked, f"final list: {len(listed)} items, {len(acked)} acknowledged")
    for name in acked:
        cm = once_more(f"read {name}", core.read_namespaced_config_map, name, ns)
        check(cm.data == {"i": str(int(name[2:]))}, f"{name} data {cm.data}")

    report.update({
        "acked_writes": len(acked),
        "writes_after_kill": len(acked) - killed_at if killed_at is not None else 0,
        "watchers": len(watchers),
        "watch_events": [len(w.seen_names()) for w in watchers],
        "watch_reconnects": sum(w.reconnects for w in watchers),
        "watch_breaks": sum(w.breaks for w in watchers),
        "watch_bookmarks": sum(w.bookmarks for w in watchers),
        "final_reads": len(acked),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", default=f"py-{os.getpid()}")
    parser.add_argument("--killed-file",
                        help="after printing READY-FOR-KILL, keep writing until this file exists")
    args = parser.parse_args()

    config.load_kube_config(config_file=args.kubeconfig)
    cfg = client.Configuration.get_default_copy()
    cfg.retries = False  # no hidden retries: this script makes and counts its own
    client.Configuration.set_default(cfg)
    core, apps = client.CoreV1Api(), client.AppsV1Api()

    report = {"client_version": __import__("kubernetes").__version__}
    try:
        discovery(client.ApiClient(), report)
        names = crud(core, apps, args.namespace, report)
        lists(core, args.namespace, names, report)
        patches(core, apps, args.namespace, report)
        deletes(core, apps, args.namespace, names, report)
        failover(core, args.namespace, args.killed_file, report)
    except (CheckFailed, ApiException) as err:
        report["failed"] = f"{type(err).__name__}: {err}"
    report["retries"] = COUNTERS.retries
    report["applied_on_retry"] = COUNTERS.applied_on_retry
    print("REPORT " + json.dumps(report, sort_keys=True), flush=True)
    if "failed" in report:
        log(f"FAILED: {report['failed']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
