"""KongGateway and KongIngressController: workloads, scaling, probes, security, migrations, network."""

from __future__ import annotations

from tests.harness import RecordedResource, Recording, run_program

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SERVICE = "kubernetes:core/v1:Service"


def gateway(run: Recording) -> RecordedResource:
    return run.named("kong-deployment")


def controller(run: Recording) -> RecordedResource:
    return run.named("kong-controller-deployment")


def test_gateway_has_no_replicas_field_the_hpa_owns_it(recording: Recording) -> None:
    assert "replicas" not in gateway(recording).spec


def test_hpa_scales_the_gateway_3_to_50_in_prod(recordings: dict[str, Recording]) -> None:
    hpa = recordings["prod"].one(HPA)
    assert hpa.spec["minReplicas"] == 3 and hpa.spec["maxReplicas"] == 50
    assert hpa.spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "kong"}
    metric = hpa.spec["metrics"][0]["resource"]
    assert metric == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    behavior = hpa.spec["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    dev = recordings["dev"].one(HPA)
    assert (dev.spec["minReplicas"], dev.spec["maxReplicas"]) == (1, 3)


def test_database_settings(recording: Recording) -> None:
    env = gateway(recording).env()
    assert env["KONG_DATABASE"] == "postgres"
    assert env["KONG_PG_HOST"] == "kong-pg-pooler-rw.databases.svc"
    assert env["KONG_PG_RO_HOST"] == "kong-pg-ro.databases.svc"
    assert env["KONG_PG_DATABASE"] == "kong"
    assert env["KONG_PG_SSL"] == "on" and env["KONG_PG_SSL_VERIFY"] == "on"
    assert env["KONG_LUA_SSL_TRUSTED_CERTIFICATE"] == "system,/etc/kong/postgres-ca/ca.crt"
    # Credentials come from the Secret in Kong's own namespace, never as literal values.
    assert env["KONG_PG_PASSWORD"] == {"secretKeyRef": {"name": "kong-pg-client", "key": "password"}}
    assert env["KONG_PG_USER"] == {"secretKeyRef": {"name": "kong-pg-client", "key": "username"}}
    ca_volume = next(v for v in gateway(recording).pod_spec["volumes"] if v["name"] == "postgres-ca")
    assert ca_volume["secret"]["secretName"] == "kong-pg-client"


def test_without_pooler_kong_writes_to_the_primary_service() -> None:
    run = run_program("dev", mutate=lambda p: p["postgres"]["pooler"].update(enabled=False))
    assert run.error is None
    assert gateway(run).env()["KONG_PG_HOST"] == "kong-pg-rw.databases.svc"
    assert run.of_type("kubernetes:postgresql.cnpg.io/v1:Pooler") == []


def test_prod_sizing_and_tuning_for_10k_rps(recordings: dict[str, Recording]) -> None:
    kong = gateway(recordings["prod"])
    assert kong.container()["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }
    env = kong.env()
    assert env["KONG_NGINX_WORKER_PROCESSES"] == "2"
    assert env["KONG_NGINX_HTTP_KEEPALIVE_REQUESTS"] == "10000"
    assert env["KONG_UPSTREAM_KEEPALIVE_POOL_SIZE"] == "512"
    assert "reuseport backlog=16384" in env["KONG_PROXY_LISTEN"]
    assert env["KONG_PG_POOL_SIZE"] == "4"


def test_every_tuning_value_in_the_stack_file_reaches_the_gateway() -> None:
    """Non-default values for every KongConfig setting: none may fall back to a component default."""
    tuning = {
        "image": "kong:3.9.0",
        "nginxWorkerProcesses": 3,
        "pgPoolSize": 7,
        "pgRoPoolSize": 5,
        "memCacheSize": "512m",
        "maxUnavailable": 2,
        "readinessFailoverToleranceSeconds": 120,
        "terminationGraceSeconds": 45,
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "3", "memory": "3Gi"}},
        "proxy": {"type": "NodePort", "annotations": {"team": "edge"}},
        "autoscaling": {"minReplicas": 4, "maxReplicas": 9, "targetCpuUtilization": 55},
    }
    run = run_program("prod", mutate=lambda p: p["kong"].update(tuning))
    assert run.error is None
    kong = gateway(run)
    env, container = kong.env(), kong.container()
    assert container["image"] == "kong:3.9.0"
    assert container["resources"] == tuning["resources"]
    assert env["KONG_NGINX_WORKER_PROCESSES"] == "3"
    assert (env["KONG_PG_POOL_SIZE"], env["KONG_PG_RO_POOL_SIZE"]) == ("7", "5")
    assert env["KONG_MEM_CACHE_SIZE"] == "512m"
    readiness = container["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] >= 120
    assert readiness["periodSeconds"] * (readiness["failureThreshold"] - 1) < 120
    assert kong.pod_spec["terminationGracePeriodSeconds"] == 45
    assert run.one("kubernetes:policy/v1:PodDisruptionBudget", "kong-pdb").spec["maxUnavailable"] == 2
    hpa = run.one(HPA).spec
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (4, 9)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 55
    proxy = run.named("kong-proxy")
    assert proxy.spec["type"] == "NodePort" and proxy.annotations["team"] == "edge"


def test_probes_tolerate_a_database_failover(recording: Recording) -> None:
    container = gateway(recording).container()
    assert container["startupProbe"]["httpGet"] == {"path": "/status", "port": "status"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/status", "port": "status"}
    readiness = container["readinessProbe"]
    assert readiness["httpGet"] == {"path": "/status/ready", "port": "status"}
    assert readiness["periodSeconds"] * readiness["failureThreshold"] >= 90


def test_graceful_shutdown(recording: Recording) -> None:
    kong = gateway(recording)
    assert kong.container()["lifecycle"]["preStop"]["exec"]["command"] == ["kong", "quit", "--wait=15"]
    assert kong.pod_spec["terminationGracePeriodSeconds"] == 60
    assert kong.spec["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}


def test_spread_over_zones_and_nodes(recording: Recording) -> None:
    keys = [c["topologyKey"] for c in gateway(recording).pod_spec["topologySpreadConstraints"]]
    assert keys == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]


def test_pod_security(recording: Recording) -> None:
    for workload in (gateway(recording), controller(recording), *recording.of_type(JOB)):
        pod = workload.pod_spec
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, workload.name
            assert security["readOnlyRootFilesystem"] is True, workload.name
            assert security["capabilities"] == {"drop": ["ALL"]}, workload.name
    mounts = {m["mountPath"] for m in gateway(recording).container()["volumeMounts"]}
    assert {"/kong_prefix", "/tmp"} <= mounts  # the writable places Kong needs


def test_pod_disruption_budget_matches_the_gateway_pods(recording: Recording) -> None:
    pdb = recording.named("kong-pdb")
    assert pdb.spec["maxUnavailable"] == 1
    selector = pdb.spec["selector"]["matchLabels"]
    assert selector.items() <= gateway(recording).spec["template"]["metadata"]["labels"].items()


def test_migration_jobs_are_named_by_version_and_ordered(recording: Recording) -> None:
    up, finish = recording.named("kong-migrations-up"), recording.named("kong-migrations-finish")
    assert up.metadata["name"] == "kong-migrations-up-3-9-1"
    assert finish.metadata["name"] == "kong-migrations-finish-3-9-1"
    script = up.container()["command"][2]
    assert "3) kong migrations bootstrap" in script and "5) kong migrations up" in script
    assert finish.container()["command"] == ["/bin/sh", "-c", "kong migrations finish"]
    database = next(r for r in recording.resources if r.type == "kubernetes:postgresql.cnpg.io/v1:Cluster")
    assert database.urn in up.dependencies
    assert up.urn in gateway(recording).dependencies
    assert gateway(recording).urn in finish.dependencies
    # Same database settings as the gateway; never injected with a sidecar that would keep them running.
    assert up.env()["KONG_PG_HOST"] == gateway(recording).env()["KONG_PG_HOST"]
    assert up.spec["template"]["metadata"]["labels"]["kuma.io/sidecar-injection"] == "disabled"
    assert up.pod_spec["restartPolicy"] == "OnFailure"


def test_an_upgrade_creates_new_migration_jobs() -> None:
    run = run_program("prod", mutate=lambda p: p["kong"].update(image="kong:3.9.2"))
    assert run.error is None
    assert run.named("kong-migrations-up").metadata["name"] == "kong-migrations-up-3-9-2"
    assert gateway(run).container()["image"] == "kong:3.9.2"


def test_services(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    proxy = run.named("kong-proxy")
    assert proxy.spec["type"] == "LoadBalancer"
    assert proxy.spec["externalTrafficPolicy"] == "Local"
    assert [(p["port"], p["targetPort"]) for p in proxy.spec["ports"]] == [(80, "proxy"), (443, "proxy-tls")]
    admin = run.named("kong-admin")
    assert admin.spec["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in admin.spec["ports"]] == [(8444, "admin-tls")]
    status = run.named("kong-status")
    assert status.labels["enable-metrics"] == "true" and status.spec["type"] == "ClusterIP"
    assert run.outputs["proxyService"] == "kong/kong-proxy"
    assert "proxyAddress" in run.outputs


def test_only_the_controller_reaches_the_admin_api(recording: Recording) -> None:
    policy = recording.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "kong-network-policy")
    assert policy.spec["podSelector"]["matchLabels"].items() <= gateway(recording).labels.items()
    admin_rules = [r for r in policy.spec["ingress"] if {"port": 8444, "protocol": "TCP"} in r["ports"]]
    assert len(admin_rules) == 1
    allowed = admin_rules[0]["from"][0]["podSelector"]["matchLabels"]
    controller_pod_labels = controller(recording).spec["template"]["metadata"]["labels"]
    assert allowed and allowed.items() <= controller_pod_labels.items()
    assert allowed.items() > set() and not allowed.items() <= gateway(recording).labels.items()


def test_controller_is_leader_elected_with_a_standby_in_prod(recordings: dict[str, Recording]) -> None:
    kic = controller(recordings["prod"])
    assert kic.spec["replicas"] == 2
    env = kic.env()
    assert env["CONTROLLER_KONG_ADMIN_URL"] == "https://kong-admin.kong.svc:8444"
    assert env["CONTROLLER_PUBLISH_SERVICE"] == "kong/kong-proxy"
    assert env["CONTROLLER_INGRESS_CLASS"] == "kong"
    assert env["CONTROLLER_ELECTION_ID"] == "kong-ingress-controller-leader"
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert recordings["prod"].named("kong-controller-pdb").spec["minAvailable"] == 1
    assert controller(recordings["dev"]).spec["replicas"] == 1
    assert [r for r in recordings["dev"].resources if r.name == "kong-controller-pdb"] == []


def test_controller_rbac_and_ingress_class(recording: Recording) -> None:
    binding = recording.named("kong-controller-cluster-role-binding")
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": "kong-ingress-controller", "namespace": "kong"}
    ]
    role = recording.named("kong-controller-cluster-role")
    groups = {g for rule in role.inputs["rules"] for g in rule["apiGroups"]}
    assert {"configuration.konghq.com", "networking.k8s.io", "discovery.k8s.io"} <= groups
    lease_rule = recording.named("kong-controller-leader-election-role").inputs["rules"][0]
    assert lease_rule["resources"] == ["leases"] and "update" in lease_rule["verbs"]
    ingress_class = recording.named("kong-controller-ingress-class")
    assert ingress_class.metadata["name"] == "kong"
    assert ingress_class.spec["controller"] == "ingress-controllers.konghq.com/kong"
    assert controller(recording).pod_spec["serviceAccountName"] == "kong-ingress-controller"


def test_kong_crds_come_from_a_pinned_upstream_file(recording: Recording) -> None:
    crds = recording.one("kubernetes:yaml/v2:ConfigFile")
    assert crds.inputs["file"].endswith("/Kong/charts/kong-3.4.1/charts/kong/crds/custom-resource-definitions.yaml")
    assert crds.urn in controller(recording).dependencies
    off = run_program("dev", mutate=lambda p: p["kong"]["controller"].update(installCrds=False))
    assert off.error is None and off.of_type("kubernetes:yaml/v2:ConfigFile") == []


# ---- the ingress controller's admission webhook -------------------------------------------------------

WEBHOOK_CONFIG = "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration"


def test_the_admission_webhook_serves_from_the_controller_with_a_platform_ca_certificate(
    recording: Recording,
) -> None:
    config = recording.one(WEBHOOK_CONFIG)
    hooks = {h["name"].split(".validation.")[0]: h for h in config.inputs["webhooks"]}
    assert set(hooks) == {"kong-configuration", "secrets.credentials", "routing"}
    # Every webhook calls the Service in front of the controller, which targets the port it listens on.
    service = recording.named("kong-controller-webhook-service")
    for hook in hooks.values():
        target = hook["clientConfig"]["service"]
        assert (target["name"], target["namespace"], target["port"]) == (
            service.metadata["name"],
            service.metadata["namespace"],
            service.spec["ports"][0]["port"],
        )
        assert hook["admissionReviewVersions"] == ["v1"] and hook["sideEffects"] == "None"
    kic = controller(recording)
    ports = {p["name"]: p["containerPort"] for p in kic.container()["ports"]}
    assert service.spec["ports"][0]["targetPort"] == "webhook"
    assert kic.env()["CONTROLLER_ADMISSION_WEBHOOK_LISTEN"] == f"0.0.0.0:{ports['webhook']}"
    assert service.spec["selector"].items() <= kic.spec["template"]["metadata"]["labels"].items()
    # It serves the certificate cert-manager issues from the platform CA, whose CA it is told to inject.
    certificate = recording.one("kubernetes:cert-manager.io/v1:Certificate", "kong-controller-webhook-certificate")
    assert certificate.spec["issuerRef"] == {"name": "platform-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert f"{service.metadata['name']}.kong.svc" in certificate.spec["dnsNames"]
    mount = next(m for m in kic.container()["volumeMounts"] if m["name"] == "webhook-certificate")
    volume = next(v for v in kic.pod_spec["volumes"] if v["name"] == "webhook-certificate")
    assert volume["secret"]["secretName"] == certificate.spec["secretName"]
    assert kic.env()["CONTROLLER_ADMISSION_WEBHOOK_CERT_FILE"] == f"{mount['mountPath']}/tls.crt"
    assert kic.env()["CONTROLLER_ADMISSION_WEBHOOK_KEY_FILE"] == f"{mount['mountPath']}/tls.key"
    annotations = config.annotations
    assert annotations["cert-manager.io/inject-ca-from"] == f"kong/{certificate.metadata['name']}"
    assert annotations["pulumi.com/waitFor"] == "jsonpath={.webhooks[0].clientConfig.caBundle}"
    # The API server reaches it: the NetworkPolicy admits any source on that port.
    policy = recording.named("kong-controller-network-policy")
    assert {"ports": [{"port": ports["webhook"], "protocol": "TCP"}]} in policy.spec["ingress"]


def test_kong_resources_and_credentials_fail_closed_other_objects_never_block(recording: Recording) -> None:
    hooks = {h["name"].split(".validation.")[0]: h for h in recording.one(WEBHOOK_CONFIG).inputs["webhooks"]}
    kong = hooks["kong-configuration"]
    assert kong["failurePolicy"] == "Fail"
    assert kong["rules"][0]["apiGroups"] == ["configuration.konghq.com"]
    assert {"kongplugins", "kongclusterplugins", "kongconsumers"} <= set(kong["rules"][0]["resources"])
    credentials = hooks["secrets.credentials"]
    assert credentials["failurePolicy"] == "Fail"
    assert credentials["objectSelector"] == {
        "matchExpressions": [{"key": "konghq.com/credential", "operator": "Exists"}]
    }
    assert hooks["routing"]["failurePolicy"] == "Ignore"
    assert {r for rule in hooks["routing"]["rules"] for r in rule["resources"]} == {"ingresses", "services"}


def test_kong_objects_wait_for_the_webhook(recording: Recording) -> None:
    config = recording.one(WEBHOOK_CONFIG)
    kinds = ("KongPlugin", "KongClusterPlugin", "KongConsumer")
    plugins = [r for r in recording.kubernetes_objects() if r.kind in kinds]
    assert plugins and all(config.urn in p.dependencies for p in plugins)
    assert controller(recording).urn in config.dependencies


def test_the_webhook_can_be_switched_off() -> None:
    run = run_program("dev", mutate=lambda p: p["kong"]["controller"].update(admissionWebhook={"enabled": False}))
    assert run.error is None and run.of_type(WEBHOOK_CONFIG) == []
    assert controller(run).env()["CONTROLLER_ADMISSION_WEBHOOK_LISTEN"] == "off"
