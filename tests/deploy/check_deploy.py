#!/usr/bin/env python3
"""Structural checks of the deployment files (no container engine or cluster here).

Renders each kustomize overlay with kubectl, parses the compose files and the Dockerfiles, and
checks what the deployment promises: probes, resources, non-root users, volumes, GPU requests,
network policy, monitoring, and that every flag the files pass exists in the binaries' --help.

usage: check_deploy.py COORDINATOR_BIN WORKER_BIN   (run from the repository root)
"""
import re
import subprocess
import sys
import unittest

import yaml

COORDINATOR, WORKER = sys.argv[1], sys.argv[2]
FLAG = re.compile(r"(--[a-z][a-z0-9-]+)")


def help_flags(argv):
    out = subprocess.run(argv + ["--help"], capture_output=True, text=True, check=True).stdout
    return set(FLAG.findall(out))


COORDINATOR_FLAGS = help_flags([COORDINATOR])
WORKER_FLAGS = help_flags([WORKER, "serve"])


def render(overlay):
    out = subprocess.run(["kubectl", "kustomize", f"deploy/k8s/overlays/{overlay}"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay}: {out.stderr}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def command_of(container):
    return [str(part) for part in container.get("command", []) + container.get("args", [])]


def flags_in(words):
    return {w.split("=")[0] for w in words if w.startswith("--")}


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


class KustomizeOverlays(unittest.TestCase):
    def check_overlay(self, overlay):
        objects = render(overlay)
        kinds = [o["kind"] for o in objects]
        for kind in ["Namespace", "ConfigMap", "Deployment", "StatefulSet", "Service",
                     "PersistentVolumeClaim", "ServiceMonitor", "NetworkPolicy"]:
            self.assertIn(kind, kinds, f"{overlay}: no {kind}")
        for obj in objects:
            if obj["kind"] != "Namespace":
                self.assertEqual(obj["metadata"].get("namespace"), "ocs", obj["metadata"]["name"])
        workloads = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
        for workload in workloads:
            spec = pod_spec(workload)
            security = spec.get("securityContext", {})
            self.assertTrue(security.get("runAsNonRoot"), workload["metadata"]["name"])
            for container in spec["containers"]:
                resources = container.get("resources", {})
                self.assertIn("requests", resources, container["name"])
                self.assertIn("limits", resources, container["name"])
                self.assertIn("livenessProbe", container, container["name"])
        return objects

    def coordinator(self, objects):
        [deployment] = [o for o in objects if o["kind"] == "Deployment"]
        return deployment

    def workers(self, objects):
        [statefulset] = [o for o in objects if o["kind"] == "StatefulSet"]
        return statefulset

    def test_the_coordinator_is_one_replica_with_its_store_probes_and_security(self):
        for overlay in ["cpu", "gpu"]:
            objects = self.check_overlay(overlay)
            coordinator = self.coordinator(objects)
            self.assertEqual(coordinator["spec"]["replicas"], 1)
            self.assertEqual(coordinator["spec"]["strategy"]["type"], "Recreate")
            spec = pod_spec(coordinator)
            [container] = spec["containers"]
            words = command_of(container)
            self.assertTrue(flags_in(words) <= COORDINATOR_FLAGS,
                            flags_in(words) - COORDINATOR_FLAGS)
            for flag in ["--tls-cert", "--tls-key", "--auth-tokens-file", "--health-listen",
                         "--data-dir", "--metrics-listen"]:
                self.assertIn(flag, flags_in(words))
            for probe in ["livenessProbe", "readinessProbe"]:
                self.assertIn("grpc", container[probe], probe)  # native gRPC probes
            claims = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]
                      if "persistentVolumeClaim" in v}
            pvcs = {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
            self.assertTrue(claims and claims <= pvcs, (claims, pvcs))

    def test_workers_join_the_coordinator_and_gpu_workers_request_gpus(self):
        for overlay, device in [("cpu", "cpu"), ("gpu", "cuda")]:
            workers = self.workers(self.check_overlay(overlay))
            [container] = pod_spec(workers)["containers"]
            words = command_of(container)
            self.assertTrue(flags_in(words) <= WORKER_FLAGS, flags_in(words) - WORKER_FLAGS)
            self.assertIn("serve", words)
            self.assertEqual(words[words.index("--device") + 1], device)
            limits = container["resources"]["limits"]
            if device == "cuda":
                self.assertEqual(str(limits.get("nvidia.com/gpu")), "1")
                env = {e["name"] for e in container.get("env", [])}
                self.assertTrue(any(name.startswith("NCCL_") for name in env), env)
            else:
                self.assertNotIn("nvidia.com/gpu", limits)
            affinity = pod_spec(workers).get("affinity", {})
            self.assertIn("podAntiAffinity", affinity)

    def test_services_select_pods_and_monitors_select_metrics_ports(self):
        objects = self.check_overlay("cpu")
        pods = [o["spec"]["template"]["metadata"]["labels"] for o in objects
                if o["kind"] in ("Deployment", "StatefulSet")]
        services = [o for o in objects if o["kind"] == "Service"]
        for service in services:
            selector = service["spec"]["selector"]
            self.assertTrue(any(selector.items() <= labels.items() for labels in pods),
                            service["metadata"]["name"])
        monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
        for monitor in monitors:
            wanted = monitor["spec"]["selector"]["matchLabels"]
            matching = [s for s in services
                        if wanted.items() <= s["metadata"].get("labels", {}).items()]
            self.assertTrue(matching, monitor["metadata"]["name"])
            ports = {p.get("name") for s in matching for p in s["spec"]["ports"]}
            for endpoint in monitor["spec"]["endpoints"]:
                self.assertIn(endpoint["port"], ports)

    def test_only_workers_and_clients_reach_the_coordinators_api(self):
        objects = self.check_overlay("cpu")
        coordinator_labels = self.coordinator(objects)["spec"]["template"]["metadata"]["labels"]
        policies = [o for o in objects if o["kind"] == "NetworkPolicy"
                    and o["spec"]["podSelector"].get("matchLabels", {}).items()
                    <= coordinator_labels.items()
                    and o["spec"]["podSelector"].get("matchLabels")]
        self.assertTrue(policies, "no NetworkPolicy selects the coordinator")
        api_sources = []
        for policy in policies:
            self.assertIn("Ingress", policy["spec"].get("policyTypes", ["Ingress"]))
            for rule in policy["spec"].get("ingress", []):
                if any(p.get("port") in (7070, "grpc") for p in rule.get("ports", [])):
                    api_sources += rule.get("from", [])
        self.assertTrue(api_sources, "nothing may reach port 7070")
        for source in api_sources:  # no rule opens the API to everyone
            self.assertTrue(source.get("podSelector") or source.get("namespaceSelector"), source)


class Compose(unittest.TestCase):
    def load(self, path):
        with open(path) as f:
            return yaml.safe_load(f)

    def test_the_laptop_stack_has_its_services_and_volumes(self):
        compose = self.load("docker-compose.yml")
        services = compose["services"]
        for name in ["coordinator", "worker-0", "worker-1", "prometheus", "grafana"]:
            self.assertIn(name, services)
        for name in ["ocs-data"]:
            self.assertIn(name, compose["volumes"])
        mounts = " ".join(str(v) for v in services["coordinator"].get("volumes", []))
        self.assertIn("ocs-data", mounts)
        self.assertIn("healthcheck", services["coordinator"])

        def words(service):
            command = services[service]["command"]
            return command if isinstance(command, list) else command.split()

        self.assertTrue(flags_in(words("coordinator")) <= COORDINATOR_FLAGS)
        for worker in ["worker-0", "worker-1"]:
            self.assertTrue(flags_in(words(worker)) <= WORKER_FLAGS,
                            flags_in(words(worker)) - WORKER_FLAGS)
            self.assertIn("coordinator:7070", words(worker))
        # Prometheus scrapes exactly these services.
        with open("deploy/prometheus/prometheus.yml") as f:
            scrape = yaml.safe_load(f)
        targets = {t for job in scrape["scrape_configs"] for sc in job["static_configs"]
                   for t in sc["targets"]}
        self.assertEqual(targets, {"coordinator:9470", "worker-0:9471", "worker-1:9471"})

    def test_the_gpu_override_reserves_a_gpu_per_worker(self):
        gpu = self.load("docker-compose.gpu.yml")
        for worker in ["worker-0", "worker-1"]:
            devices = gpu["services"][worker]["deploy"]["resources"]["reservations"]["devices"]
            self.assertTrue(any("gpu" in d.get("capabilities", []) for d in devices))


class Alerts(unittest.TestCase):
    def test_the_compose_prometheus_mounts_the_rules_its_configuration_loads(self):
        with open("deploy/prometheus/prometheus.yml") as f:
            self.assertEqual(yaml.safe_load(f)["rule_files"], ["alerts.yml"])
        with open("docker-compose.yml") as f:
            mounts = yaml.safe_load(f)["services"]["prometheus"]["volumes"]
        self.assertIn("./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro", mounts)

    def test_the_prometheus_rule_for_the_operator_holds_the_same_rules(self):
        out = subprocess.run(["deploy/k8s/prometheus-rule.sh", "release=monitoring"],
                             capture_output=True, text=True, check=True).stdout
        rule = yaml.safe_load(out)
        self.assertEqual(rule["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(rule["kind"], "PrometheusRule")
        self.assertEqual(rule["metadata"]["namespace"], "ocs")
        self.assertEqual(rule["metadata"]["labels"]["release"], "monitoring")
        with open("deploy/prometheus/alerts.yml") as f:
            self.assertEqual(rule["spec"], yaml.safe_load(f))

    def test_every_alert_has_a_runbook_section_in_the_docs(self):
        with open("deploy/prometheus/alerts.yml") as f:
            rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
        with open("docs/alerts.md") as f:
            docs = f.read()
        sections = set(re.findall(r"^## (\w+)$", docs, re.MULTILINE))
        self.assertEqual(sections, {r["alert"] for r in rules})
        for r in rules:
            self.assertEqual(r["annotations"]["runbook"], f"docs/alerts.md#{r['alert'].lower()}")
            self.assertIn(r["labels"]["severity"], ("critical", "warning"), r["alert"])
            self.assertIn(f"| [{r['alert']}](#{r['alert'].lower()}) | {r['labels']['severity']} |",
                          docs)

    def test_the_prometheus_rule_script_takes_prefixed_names_and_empty_values(self):
        out = subprocess.run(["deploy/k8s/prometheus-rule.sh", "example.com/team=ml-1.a_b",
                              "release="], capture_output=True, text=True, check=True).stdout
        labels = yaml.safe_load(out)["metadata"]["labels"]
        self.assertEqual(labels["example.com/team"], "ml-1.a_b")
        self.assertEqual(labels["release"], "")

    def test_the_prometheus_rule_script_prints_nothing_for_a_bad_label(self):
        # Piped into kubectl apply, a rule without its groups would delete the alerts.
        for bad in ["release", "a b=c", "=x", "-a=b", "team=a'b", "a\nb=c", "-x/a=b",
                    "a..b/c=d", "x=" + "v" * 64, "n" * 64 + "=v"]:
            out = subprocess.run(["deploy/k8s/prometheus-rule.sh", "release=ok", bad],
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 2, bad)
            self.assertEqual(out.stdout, "", bad)
            self.assertIn(f"not '{bad}'", out.stderr)


INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK",
                "SHELL"}


def instructions(path):
    """(instruction, arguments) per logical line: continuations joined, comments dropped."""
    result, pending = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.lstrip().startswith("#"):
                continue
            pending += line.rstrip("\\").rstrip() + " "
            if not line.endswith("\\"):
                keyword, _, rest = pending.strip().partition(" ")
                result.append((keyword.upper(), rest))
                pending = ""
    return result


class Dockerfiles(unittest.TestCase):
    def check(self, path):
        parsed = instructions(path)
        for keyword, _ in parsed:
            self.assertIn(keyword, INSTRUCTIONS, f"{path}: unknown instruction {keyword}")
        stages = [i for i, (k, _) in enumerate(parsed) if k == "FROM"]
        self.assertGreaterEqual(len(stages), 2, f"{path}: not multi-stage")
        final = parsed[stages[-1]:]
        users = [args for k, args in final if k == "USER"]
        self.assertTrue(users and users[-1].split(":")[0] not in ("root", "0"), path)
        self.assertTrue(any(k == "HEALTHCHECK" for k, _ in final), path)
        self.assertTrue(any(k == "COPY" and "--from=" in args for k, args in final), path)
        self.assertTrue(any(k == "EXPOSE" for k, _ in final), path)

    def test_cpu_image(self):
        self.check("deploy/docker/Dockerfile")

    def test_cuda_image(self):
        self.check("deploy/docker/Dockerfile.cuda")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
