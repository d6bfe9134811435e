#!/bin/sh
# Prints deploy/prometheus/alerts.yml as a Prometheus Operator PrometheusRule in the ocs namespace:
#     deploy/k8s/prometheus-rule.sh | kubectl apply -f -
# The operator's Prometheus picks up only the rules its ruleSelector matches (kube-prometheus-stack
# wants `release: <its release name>`): give such labels as NAME=VALUE arguments,
#     deploy/k8s/prometheus-rule.sh release=monitoring | kubectl apply -f -
# The rules live in one file, so that the compose stack and the cluster alert alike. Nothing is
# printed unless everything is right: an empty rule piped into kubectl would delete the alerts.
set -eu
rules="$(dirname "$0")/../prometheus/alerts.yml"
body=$(grep -v '^#' "$rules" 2>/dev/null) || body=""
case "$body" in
  *"groups:"*) ;;
  *) echo "error: no rules in $rules" >&2; exit 1 ;;
esac

# Kubernetes' label syntax: an optional DNS-subdomain prefix (253 at most) and '/', a name of 63 at
# most, and a value of 63 at most; names and values start and end alphanumeric.
segment='[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?'
prefix='[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'
refuse() {
  echo "error: a label is NAME=VALUE in Kubernetes' label syntax, not '$1'" >&2
  exit 2
}
labels=""
for label in "$@"; do
  case "$label" in *=*) ;; *) refuse "$label" ;; esac
  key="${label%%=*}"
  value="${label#*=}"
  name="${key##*/}"
  # One line each: grep below looks at lines.
  [ "$(printf '%s' "$label" | wc -l)" -eq 0 ] || refuse "$label"
  if [ "$name" != "$key" ]; then
    dns="${key%/*}"
    [ "${#dns}" -le 253 ] && printf '%s' "$dns" | grep -Eqx "$prefix" || refuse "$label"
  fi
  [ "${#name}" -le 63 ] && printf '%s' "$name" | grep -Eqx "$segment" || refuse "$label"
  [ "${#value}" -le 63 ] || refuse "$label"
  [ -z "$value" ] || printf '%s' "$value" | grep -Eqx "$segment" || refuse "$label"
  labels="$labels    $key: \"$value\"
"
done

printf 'apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n'
printf '  name: ocs-alerts\n  namespace: ocs\n  labels:\n    app.kubernetes.io/part-of: ocs\n'
printf '%s' "$labels"
printf 'spec:\n'
printf '%s\n' "$body" | sed 's/^/  /'
