#!/bin/sh
# Prints deploy/prometheus/alerts.yml as a Prometheus Operator PrometheusRule in the ocs namespace:
#     deploy/k8s/prometheus-rule.sh | kubectl apply -f -
# The operator's Prometheus picks up only the rules its ruleSelector matches (kube-prometheus-stack
# wants `release: <its release name>`): give such labels as NAME=VALUE arguments,
#     deploy/k8s/prometheus-rule.sh release=monitoring | kubectl apply -f -
# The rules live in one file, so that the compose stack and the cluster alert alike.
set -eu
rules="$(dirname "$0")/../prometheus/alerts.yml"
printf 'apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n'
printf '  name: ocs-alerts\n  namespace: ocs\n  labels:\n    app.kubernetes.io/part-of: ocs\n'
for label in "$@"; do
  case "$label" in
    ?*=*) printf '    %s: "%s"\n' "${label%%=*}" "${label#*=}" ;;
    *) echo "error: a label is NAME=VALUE, not '$label'" >&2; exit 2 ;;
  esac
done
printf 'spec:\n'
grep -v '^#' "$rules" | sed 's/^/  /'
