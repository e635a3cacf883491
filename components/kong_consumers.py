"""KongConsumers: API consumers and their credentials, as labelled Secrets KIC turns into Kong credentials.

- JWT (RS256): public keys of external issuers, or a key pair generated for a service client
  (the private key is a secret stack output);
- API keys with rotation: one generated key per rotation id; adding an id adds a key while the
  old one keeps working, dropping an id revokes its key;
- OAuth 2.0 client credentials: a generated client id and secret (secret output);
- ACL groups, for the APIs' role checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_tls as tls

from components.k8s import Protection, app_labels, child, meta
from components.kong_resources import KONG_API, KongObject
from components.models.catalogue import ConsumerConfig


@dataclass(frozen=True)
class KongConsumersArgs:
    namespace: str
    ingress_class: pulumi.Input[str]
    consumers: list[ConsumerConfig]
    # For the generated signing keys: a service client holds the private key, so replacing it breaks the client.
    protection: Protection = field(default_factory=Protection)
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class KongConsumers(pulumi.ComponentResource):
    api_keys: dict[str, pulumi.Output[str]]
    oauth2_clients: dict[str, dict[str, pulumi.Output[str]]]
    jwt_private_keys: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: KongConsumersArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:kong:KongConsumers", name, None, opts)
        self._name, self._args = name, args
        self.api_keys, self.oauth2_clients, self.jwt_private_keys = {}, {}, {}
        for consumer in args.consumers:
            secrets = self._credentials(consumer)
            KongObject(
                f"{name}-{consumer.username}",
                f"{KONG_API}/v1",
                "KongConsumer",
                meta(
                    consumer.username,
                    args.namespace,
                    app_labels("api-consumers", "identity"),
                    {"kubernetes.io/ingress.class": args.ingress_class},
                ),
                {"username": consumer.username, "credentials": [s.metadata.name for s in secrets]},
                child(self, [*args.depends_on, *secrets]),
            )
        self.register_outputs({"consumers": [c.username for c in args.consumers]})

    def _secret(
        self, resource: str, secret_name: str, kind: str, data: dict[str, pulumi.Input[str]]
    ) -> k8s.core.v1.Secret:
        labels = {**app_labels("api-consumers", "identity"), "konghq.com/credential": kind}
        return k8s.core.v1.Secret(
            f"{self._name}-{resource}",
            metadata=meta(secret_name, self._args.namespace, labels),
            string_data=data,
            opts=child(self, self._args.depends_on),
        )

    def _credentials(self, consumer: ConsumerConfig) -> list[k8s.core.v1.Secret]:
        user = consumer.username
        secrets = [
            self._secret(f"{user}-acl-{group}", f"{user}-acl-{group}", "acl", {"group": group})
            for group in consumer.groups
        ]
        for index, jwt_key in enumerate(consumer.jwt_keys):
            secrets.append(
                self._secret(
                    f"{user}-jwt-{index}",
                    f"{user}-jwt-{index}",
                    "jwt",
                    {
                        "key": jwt_key.issuer,
                        "algorithm": "RS256",
                        "rsa_public_key": jwt_key.public_key,
                    },
                )
            )
        if consumer.generate_jwt_key:
            pair = tls.PrivateKey(
                f"{self._name}-{user}-jwt-key",
                algorithm="RSA",
                rsa_bits=2048,
                opts=child(self, protection=self._args.protection, retain=False),
            )
            secrets.append(
                self._secret(
                    f"{user}-jwt-generated",
                    f"{user}-jwt-service",
                    "jwt",
                    {
                        "key": f"{user}-service",
                        "algorithm": "RS256",
                        "rsa_public_key": pair.public_key_pem,
                    },
                )
            )
            self.jwt_private_keys[user] = pulumi.Output.secret(pair.private_key_pem)
        for rotation in consumer.api_key_rotations:
            key = random.RandomPassword(
                f"{self._name}-{user}-api-key-{rotation}", length=40, special=False, opts=child(self)
            )
            secrets.append(
                self._secret(f"{user}-key-{rotation}", f"{user}-key-{rotation}", "key-auth", {"key": key.result})
            )
            self.api_keys[f"{user}/{rotation}"] = pulumi.Output.secret(key.result)
        if consumer.oauth2_client:
            client_secret = random.RandomPassword(
                f"{self._name}-{user}-oauth2-secret", length=48, special=False, opts=child(self)
            )
            client_id = f"{user}-client"
            secrets.append(
                self._secret(
                    f"{user}-oauth2",
                    f"{user}-oauth2",
                    "oauth2",
                    {
                        "name": user,
                        "client_id": client_id,
                        "client_secret": client_secret.result,
                    },
                )
            )
            self.oauth2_clients[user] = {
                "clientId": pulumi.Output.from_input(client_id),
                "clientSecret": pulumi.Output.secret(client_secret.result),
            }
        return secrets
