#!/bin/sh
# Prints deploy/prometheus/alerts.yml as a Prometheus Operator PrometheusRule in the ocs namespace:
#     deploy/k8s/prometheus-rule.sh | kubectl apply -f -
# The operator's Prometheus picks up only the rules its ruleSelector matches (kube-prometheus-stack
# wants `release: <its release name>`): give such labels as NAME=VALUE arguments,
#     deploy/k8s/prometheus-rule.sh release=monitoring | kubectl apply -f -
# The rules live in one file, so that the compose stack and the cluster alert alike. Nothing is
# printed unless everything is right: an empty rule piped into kubectl would delete the rules.
set -eu
rules="$(dirname "$0")/../prometheus/alerts.yml"
if [ ! -r "$rules" ]; then
  echo "error: cannot read the rules at $rules" >&2
  exit 1
fi
labels=""
for label in "$@"; do
  name="${label%%=*}"
  value="${label#*=}"
  # A Kubernetes label name: an optional DNS prefix and '/', then a name of [A-Za-z0-9._-].
  if [ "$name" = "$label" ] || ! printf '%s' "$name" | grep -Eq '^([a-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$'; then
    echo "error: a label is NAME=VALUE with a Kubernetes label name, not '$label'" >&2
    exit 2
  fi
  # Single-quoted YAML takes any value, with its quotes doubled.
  quoted=$(printf '%s' "$value" | sed "s/'/''/g")
  labels="$labels    $name: '$quoted'
"
done
printf 'apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n'
printf '  name: ocs-alerts\n  namespace: ocs\n  labels:\n    app.kubernetes.io/part-of: ocs\n'
printf '%s' "$labels"
printf 'spec:\n'
grep -v '^#' "$rules" | sed 's/^/  /'
