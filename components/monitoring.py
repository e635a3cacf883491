"""Monitoring: Prometheus Operator monitors for the gateway, the controller and the mesh, the
ADR's objectives as alert rules, and a Grafana dashboard.

Kong 3.x metric names (kong_http_requests_total, kong_kong_latency_ms_bucket,
kong_datastore_reachable, ...) differ from the ADR's 2.x names. The rules are built by
`slo_rule_groups`, a pure function the tests render for `promtool check rules` and
`promtool test rules`. Availability uses multi-window, multi-burn-rate alerts (SRE workbook).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.k8s import app_labels, child, custom_resource, meta

MONITORING_API = "monitoring.coreos.com/v1"
ERROR_RATIO_WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
# (severity, burn rate, long window, short window, for): page on fast burns, ticket on slow ones.
BURN_ALERTS = [
    ("page", 14.4, "1h", "5m", "2m"),
    ("page", 6, "6h", "30m", "15m"),
    ("ticket", 3, "1d", "2h", "1h"),
    ("ticket", 1, "3d", "6h", "3h"),
]


def policy_engine_alerts(decision_timeout_s: float) -> list[dict[str, Any]]:
    """Open Policy Agent beside Kong (its metrics on the opa container's diagnostic port): an error
    there is a 503 to a caller (the gateway fails closed), a slow decision eats Kong's latency budget."""
    data_api = 'container="opa", handler="v1/data"'
    return [
        {
            "alert": "PolicyEngineErrors",
            "expr": f'sum by (pod) (rate(http_request_duration_seconds_count{{{data_api}, code!="200"}}[5m])) > 0',
            "for": "5m",
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "OPA in {{ $labels.pod }} fails decisions: its APIs answer 503",
                "description": "{{ $value | humanize }} failed decisions per second; see OPA's log (a policy that "
                "does not compile keeps the previous one, a missing decision answers 503).",
            },
        },
        {
            "alert": "PolicyEngineSlow",
            "expr": "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket"
            f"{{{data_api}}}[5m]))) > {decision_timeout_s}",
            "for": "10m",
            "labels": {"severity": "ticket"},
            "annotations": {"summary": f"OPA's P99 decision time is above {decision_timeout_s}s, Kong's timeout"},
        },
        {
            "alert": "PolicyEngineDown",
            "expr": 'up{container="opa"} == 0',
            "for": "2m",
            "labels": {"severity": "page"},
            "annotations": {"summary": "OPA in {{ $labels.pod }} does not answer its metrics endpoint"},
        },
    ]


def slo_rule_groups(
    latency_p95_ms: int,
    availability_percent: float,
    certificate_expiry_days: int,
    gateway_hpa: str = "kong",
    policy_decision_timeout_s: float | None = None,
) -> list[dict[str, Any]]:
    budget = round(1 - availability_percent / 100, 6)
    recording = [
        {
            "record": f"kong:request_error_ratio:rate{window}",
            "expr": f'sum(rate(kong_http_requests_total{{code=~"5.."}}[{window}]))'
            f" / sum(rate(kong_http_requests_total[{window}]))",
        }
        for window in ERROR_RATIO_WINDOWS
    ] + [
        {
            "record": "kong:latency_ms:p95_5m",
            "expr": "histogram_quantile(0.95, sum by (le) (rate(kong_kong_latency_ms_bucket[5m])))",
        }
    ]
    alerts: list[dict[str, Any]] = [
        {
            "alert": "KongLatencyP95High",
            "expr": f"kong:latency_ms:p95_5m > {latency_p95_ms}",
            "for": "10m",
            "labels": {"severity": "page"},
            "annotations": {
                "summary": f"Kong adds more than {latency_p95_ms} ms at P95",
                "description": "P95 of Kong's own latency is {{ $value | humanize }} ms over 5 minutes.",
            },
        }
    ]
    for severity, rate, long, short, duration in BURN_ALERTS:
        threshold = round(rate * budget, 6)
        alerts.append(
            {
                "alert": f"KongErrorBudgetBurn{long.upper()}",
                "expr": f"kong:request_error_ratio:rate{long} > {threshold}"
                f" and kong:request_error_ratio:rate{short} > {threshold}",
                "for": duration,
                "labels": {"severity": severity, "slo": "availability"},
                "annotations": {
                    "summary": f"The {availability_percent}% availability budget burns {rate}x too fast "
                    f"({long}/{short})",
                    "description": "5xx ratio over the long window: {{ $value | humanizePercentage }}.",
                },
            }
        )
    alerts += [
        {
            "alert": "KongDatabaseUnreachable",
            "expr": "kong_datastore_reachable == 0",
            "for": "1m",
            "labels": {"severity": "page"},
            "annotations": {"summary": "Kong pod {{ $labels.pod }} cannot reach PostgreSQL"},
        },
        {
            "alert": "KongAutoscalerAtMaximum",
            "expr": f'kube_horizontalpodautoscaler_status_current_replicas{{horizontalpodautoscaler="{gateway_hpa}"}}'
            f' >= kube_horizontalpodautoscaler_spec_max_replicas{{horizontalpodautoscaler="{gateway_hpa}"}}',
            "for": "15m",
            "labels": {"severity": "ticket"},
            "annotations": {"summary": "The gateway has run at its maximum replica count for 15 minutes"},
        },
        {
            "alert": "CertificateExpiringSoon",
            "expr": "certmanager_certificate_expiration_timestamp_seconds - time()"
            f" < {certificate_expiry_days * 86400}",
            "for": "1h",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "Certificate {{ $labels.namespace }}/{{ $labels.name }} expires within "
                f"{certificate_expiry_days} days and was not renewed"
            },
        },
    ]
    groups = [{"name": "kong-slo-recording", "rules": recording}, {"name": "kong-slo-alerts", "rules": alerts}]
    if policy_decision_timeout_s is not None:
        groups.append({"name": "policy-engine-alerts", "rules": policy_engine_alerts(policy_decision_timeout_s)})
    return groups


def dashboard() -> dict[str, Any]:
    panels = [
        ("Requests per second", "sum(rate(kong_http_requests_total[1m]))"),
        ("Kong latency P95 (ms)", "kong:latency_ms:p95_5m"),
        ("5xx ratio", "kong:request_error_ratio:rate5m"),
        ("Bandwidth (bytes/s)", "sum by (direction) (rate(kong_bandwidth_bytes[1m]))"),
        ("Connections", "sum by (state) (kong_nginx_connections_total)"),
        ("Database reachable", "min(kong_datastore_reachable)"),
    ]
    return {
        "title": "API platform: Kong gateway",
        "uid": "api-platform-kong",
        "schemaVersion": 39,
        "panels": [
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "gridPos": {"x": (i % 2) * 12, "y": (i // 2) * 8, "w": 12, "h": 8},
                "targets": [{"expr": expr, "refId": "A"}],
            }
            for i, (title, expr) in enumerate(panels)
        ],
    }


@dataclass(frozen=True)
class ScrapeTarget:
    """Pods or Services to scrape: a ServiceMonitor when `service` is set, else a PodMonitor."""

    name: str
    namespace: str
    selector: Mapping[str, str]
    port: str
    service: bool = False
    path: str = "/metrics"


@dataclass(frozen=True)
class MonitoringArgs:
    namespace: str
    targets: list[ScrapeTarget]
    prometheus_labels: Mapping[str, str]
    latency_p95_ms: int
    availability_percent: float
    certificate_expiry_days: int
    policy_decision_timeout_s: float | None = None  # alerts on OPA beside Kong, when it runs
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:observability:Monitoring", name, None, opts)
        labels = {**app_labels("api-platform-monitoring", "monitoring"), **args.prometheus_labels}
        deps = child(self, args.depends_on)
        for target in args.targets:
            endpoint = {"port": target.port, "path": target.path, "interval": "15s"}
            selector = {"matchLabels": dict(target.selector)}
            if target.service:
                kind, spec = "ServiceMonitor", {"selector": selector, "endpoints": [endpoint]}
            else:
                kind, spec = "PodMonitor", {"selector": selector, "podMetricsEndpoints": [endpoint]}
            custom_resource(
                f"{name}-{target.name}", MONITORING_API, kind, meta(target.name, target.namespace, labels), spec, deps
            )
        custom_resource(
            f"{name}-slo-rules",
            MONITORING_API,
            "PrometheusRule",
            meta("api-platform-slo", args.namespace, labels),
            {
                "groups": slo_rule_groups(
                    args.latency_p95_ms,
                    args.availability_percent,
                    args.certificate_expiry_days,
                    policy_decision_timeout_s=args.policy_decision_timeout_s,
                )
            },
            deps,
        )
        k8s.core.v1.ConfigMap(
            f"{name}-dashboard",
            metadata=meta("api-platform-kong-dashboard", args.namespace, {**labels, "grafana_dashboard": "1"}),
            data={"api-platform-kong.json": json.dumps(dashboard(), indent=2)},
            opts=deps,
        )
        self.register_outputs({})
