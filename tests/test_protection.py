"""Production state: what Pulumi refuses to delete or replace, and what a deliberate teardown leaves."""

from __future__ import annotations

from tests.harness import Recording, refusal

# Everything whose loss loses the database, its backups or the search cluster, or locks Kong out.
PROTECTED = {
    "platform-databases",  # the namespaces holding the data volumes
    "platform-observability",
    "postgres-operator",  # the releases defining the CRDs of the data objects
    "postgres-barman-plugin",
    "elasticsearch-operator",
    "postgres-cluster",
    "postgres-object-store",
    "postgres-scheduled-backup",
    "postgres-backup-credentials",
    "postgres-app-password",  # initdb gave the owner role this password: a new one locks Kong out
    "postgres-app-credentials",
    "postgres-server-ca-key",  # clients verify the server with this CA
    "postgres-server-ca",
    "postgres-server-ca-secret",
    "elasticsearch-elasticsearch",
    # Keys clients pin or hold: a new one breaks them.
    "pinned-hosts-assistant.api.example.com-assistant-2026a",
    "pinned-hosts-assistant.api.example.com-assistant-2026b",
    "consumers-batch-runner-jwt-key",
}
# What a deliberate teardown leaves in the cluster: the Kubernetes objects among them.
RETAINED = PROTECTED - {
    "pinned-hosts-assistant.api.example.com-assistant-2026a",
    "pinned-hosts-assistant.api.example.com-assistant-2026b",
    "consumers-batch-runner-jwt-key",
    "postgres-operator",
    "postgres-barman-plugin",
    "elasticsearch-operator",
    "postgres-app-password",  # state only: nothing in the cluster to keep
    "postgres-server-ca-key",
    "postgres-server-ca",
}


def test_prod_protects_its_data_and_retains_it_on_a_deliberate_teardown(recordings: dict[str, Recording]) -> None:
    resources = recordings["prod"].resources
    assert {r.name for r in resources if r.protect} == PROTECTED
    assert {r.name for r in resources if r.retain_on_delete} == RETAINED


def test_dev_protects_nothing(recordings: dict[str, Recording]) -> None:
    assert [r.name for r in recordings["dev"].resources if r.protect or r.retain_on_delete] == []


def test_prod_without_protection_is_refused() -> None:
    message = refusal(lambda p: p.update(protection={"protect": False}))
    assert "protection.protect must be true in prod (the database and Elasticsearch)" in message
