"""PostgresCluster: CloudNativePG cluster, services, pooler, backups, credentials, monitoring."""

from __future__ import annotations

from tests.harness import RecordedResource, Recording, run_program

CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
POOLER = "kubernetes:postgresql.cnpg.io/v1:Pooler"
OBJECT_STORE = "kubernetes:barmancloud.cnpg.io/v1:ObjectStore"
SCHEDULED_BACKUP = "kubernetes:postgresql.cnpg.io/v1:ScheduledBackup"
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"


def cluster(run: Recording) -> RecordedResource:
    return run.one(CLUSTER)


def test_operator_is_a_pinned_release_and_custom_resources_wait_for_it(recording: Recording) -> None:
    operator = recording.one(RELEASE, "postgres-operator")
    assert operator.inputs["chart"] == "cloudnative-pg"
    assert operator.inputs["version"] == "0.29.0"
    assert operator.inputs["repositoryOpts"]["repo"] == "https://cloudnative-pg.github.io/charts"
    assert operator.inputs["name"] == "cnpg" and operator.inputs["namespace"] == "cnpg-system"
    assert operator.inputs["values"]["crds"] == {"create": True}
    for typ in (CLUSTER, POOLER, OBJECT_STORE, SCHEDULED_BACKUP):
        for resource in recording.of_type(typ):
            assert operator.urn in resource.dependencies, f"{resource.name} must wait for the CNPG release"


def test_prod_cluster_is_highly_available(recordings: dict[str, Recording]) -> None:
    spec = cluster(recordings["prod"]).spec
    assert spec["instances"] == 3
    assert spec["postgresql"]["synchronous"] == {"method": "any", "number": 1, "dataDurability": "preferred"}
    assert spec["primaryUpdateMethod"] == "switchover"
    assert spec["affinity"]["podAntiAffinityType"] == "required"
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert spec["resources"] == {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}
    assert spec["storage"] == {"size": "100Gi"}
    assert spec["postgresql"]["parameters"]["max_connections"] == "500"
    assert spec["postgresql"]["parameters"]["shared_buffers"] == "2048MB"
    assert spec["enableSuperuserAccess"] is False


def test_dev_cluster_is_a_single_instance(recordings: dict[str, Recording]) -> None:
    spec = cluster(recordings["dev"]).spec
    assert spec["instances"] == 1
    assert "synchronous" not in spec["postgresql"]
    assert spec["affinity"]["podAntiAffinityType"] == "preferred"


def test_read_write_and_read_only_endpoints(recording: Recording) -> None:
    endpoints = recording.outputs["databaseEndpoints"]
    assert endpoints == {
        "readWrite": "kong-pg-rw.databases.svc",
        "readOnly": "kong-pg-ro.databases.svc",
        "pooler": "kong-pg-pooler-rw.databases.svc",
    }
    assert recording.outputs["databaseCredentialsSecret"] == "databases/kong-pg-app-credentials"
    assert recording.outputs["kongDatabaseSecret"] == "kong/kong-pg-client"


def test_pooler_fronts_the_primary_in_session_mode(recordings: dict[str, Recording]) -> None:
    pooler = recordings["prod"].one(POOLER)
    assert pooler.metadata["name"] != cluster(recordings["prod"]).metadata["name"]
    assert pooler.spec["cluster"] == {"name": "kong-pg"}
    assert pooler.spec["type"] == "rw" and pooler.spec["instances"] == 3
    assert pooler.spec["pgbouncer"] == {
        "poolMode": "session",
        "parameters": {"max_client_conn": "1000", "default_pool_size": "40"},
    }


def test_prod_backups_go_to_object_storage_through_the_plugin(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    store = run.one(OBJECT_STORE)
    configuration = store.spec["configuration"]
    assert configuration["destinationPath"] == "s3://acme-api-platform-pg-backups/prod"
    assert configuration["s3Credentials"]["accessKeyId"] == {
        "name": "kong-pg-backup-credentials",
        "key": "ACCESS_KEY_ID",
    }
    assert store.spec["retentionPolicy"] == "30d"
    assert cluster(run).spec["plugins"] == [
        {
            "name": "barman-cloud.cloudnative-pg.io",
            "isWALArchiver": True,
            "parameters": {"barmanObjectName": "kong-pg-backups"},
        }
    ]
    scheduled = run.one(SCHEDULED_BACKUP)
    assert scheduled.spec["method"] == "plugin"
    assert scheduled.spec["pluginConfiguration"] == {"name": "barman-cloud.cloudnative-pg.io"}
    assert scheduled.spec["schedule"] == "0 0 2 * * *" and scheduled.spec["cluster"] == {"name": "kong-pg"}
    plugin = run.one(RELEASE, "postgres-barman-plugin")
    assert plugin.inputs["chart"] == "plugin-barman-cloud" and plugin.inputs["version"] == "0.7.0"
    assert plugin.urn in store.dependencies


def test_backup_credentials_are_a_secret_built_from_secure_keys(recordings: dict[str, Recording]) -> None:
    secret = recordings["prod"].named("postgres-backup-credentials")
    assert secret.metadata["namespace"] == "databases"
    assert secret.inputs["stringData"] == {
        "ACCESS_KEY_ID": "placeholder-backupAccessKeyId",
        "ACCESS_SECRET_KEY": "placeholder-backupSecretAccessKey",
    }
    assert secret.is_secret("stringData.ACCESS_KEY_ID") and secret.is_secret("stringData.ACCESS_SECRET_KEY")


def test_existing_credentials_secret_is_referenced_not_created() -> None:
    run = run_program("prod", mutate=lambda p: p["postgres"]["backup"].update(credentialsSecret="team-s3-creds"))
    assert run.error is None
    assert not [r for r in run.resources if r.name == "postgres-backup-credentials"]
    assert run.one(OBJECT_STORE).spec["configuration"]["s3Credentials"]["secretAccessKey"] == {
        "name": "team-s3-creds",
        "key": "ACCESS_SECRET_KEY",
    }


def test_dev_has_no_backups(recordings: dict[str, Recording]) -> None:
    run = recordings["dev"]
    assert run.of_type(OBJECT_STORE) == [] and run.of_type(SCHEDULED_BACKUP) == []
    assert cluster(run).spec["plugins"] == []


def test_database_password_is_generated_and_only_held_as_a_secret(recording: Recording) -> None:
    password = recording.named("postgres-app-password")
    assert password.inputs["length"] == 32
    app = recording.named("postgres-app-credentials")
    assert app.inputs["type"] == "kubernetes.io/basic-auth"
    assert app.inputs["stringData"]["password"] == "mock-password-postgres-app-password"
    assert app.is_secret("stringData.password")
    initdb = cluster(recording).spec["bootstrap"]["initdb"]
    assert initdb == {"database": "kong", "owner": "kong", "secret": {"name": "kong-pg-app-credentials"}}


def test_server_ca_is_ours_and_clients_get_it_with_their_credentials(recording: Recording) -> None:
    ca = recording.one("tls:index/selfSignedCert:SelfSignedCert")
    assert ca.inputs["isCaCertificate"] is True
    assert "cert_signing" in ca.inputs["allowedUses"]
    ca_secret = recording.named("postgres-server-ca-secret")
    assert set(ca_secret.inputs["stringData"]) == {"ca.crt", "ca.key"}
    assert ca_secret.is_secret("stringData.ca.key")
    assert cluster(recording).spec["certificates"] == {"serverCASecret": "kong-pg-server-ca"}
    client = recording.named("postgres-client-kong")
    assert client.metadata == {**client.metadata, "name": "kong-pg-client", "namespace": "kong"}
    assert set(client.inputs["stringData"]) == {"username", "password", "ca.crt"}
    assert client.is_secret("stringData.password")


def test_pod_monitor_scrapes_the_metrics_port(recording: Recording) -> None:
    monitor = recording.one("kubernetes:monitoring.coreos.com/v1:PodMonitor", "postgres-pod-monitor")
    assert monitor.spec == {
        "selector": {"matchLabels": {"cnpg.io/cluster": "kong-pg"}},
        "podMetricsEndpoints": [{"port": "metrics"}],
    }


def test_operators_can_be_left_to_the_platform_team() -> None:
    run = run_program("prod", mutate=lambda p: p.update(installOperators=False))
    assert run.error is None
    assert run.of_type(RELEASE) == []
    assert all(not d.endswith("postgres-operator") for d in cluster(run).dependencies)
