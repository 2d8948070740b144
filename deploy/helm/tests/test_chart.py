"""The customer-portal Helm chart: lint, render, Kubernetes schemas, schema errors, hardening.

Everything here runs offline: helm-python-sdk bundles Helm's Go SDK as a shared
library (no helm binary, no cluster) and kubernetes-validate ships the
Kubernetes OpenAPI schemas.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

CHART = Path(__file__).resolve().parents[1] / "customer-portal"
PRODUCTION_VALUES = CHART / "values-production.yaml"
KUBE_VERSION = "1.34.0"
RELEASE = "portal"
NAMESPACE = "customer-portal"

GRPC_SERVICES = {
    "auth": 50051,
    "subscriptions": 50052,
    "payments": 50053,
    "invoicing": 50054,
    "notifications": 50055,
}
ALL_SERVICES = {*GRPC_SERVICES, "gateway"}

# Distinctive secret values: if any of them leaks into a ConfigMap the test sees it.
SECRET_VALUES = {
    "mongodbUrl": "mongodb://portal:Mongo-S3cret-9f2a@mongo-0.db:27017/?replicaSet=rs0",
    "amqpUrl": "amqps://portal:Amqp-S3cret-41c7@rabbit.mq:5671/portal",
    "smtpUsername": "relay-user-7d1e",
    "smtpPassword": "Smtp-S3cret-c0ffee",
    "emailLinkKeys": "UGFzc3dvcmQtS2V5LUZvci1MaW5rcy0xMjM0NTY3OCE=",
    "webhookSecretKeys": "V2ViaG9vay1TZWFsaW5nLUtleS1Gb3ItVGVzdHMtMTI=",
    "paymentsFingerprintSecret": "Fingerprint-S3cret-5b7e-0123456789abcdef",
    "licenseKeySealKeys": "TGljZW5zZS1LZXktU2VhbGluZy1LZXktMTIzNDU2Nzg=",
}
CREATED_SECRET_VALUES: dict[str, Any] = {
    "secrets": {"create": True, "existingSecret": "", **SECRET_VALUES},
    "serviceMonitor": {"enabled": True},
    "otel": {"endpoint": "http://otel-collector.observability.svc:4317"},
}


def load_values(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def render(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Render the chart offline and return its objects (NOTES.txt left out)."""
    chart = helm.Chart.load(CHART)
    manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    objects: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


@pytest.fixture(
    scope="module",
    params=["default", "production", "created-secret"],
)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """The chart rendered with each values set a user would install with."""
    values: dict[str, dict[str, Any] | None] = {
        "default": None,
        "production": load_values(PRODUCTION_VALUES),
        "created-secret": CREATED_SECRET_VALUES,
    }
    return render(values[request.param])


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def by_name(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in of_kind(objects, kind)}


def component(obj: dict[str, Any]) -> str:
    component_label: str = obj["metadata"]["labels"]["app.kubernetes.io/component"]
    return component_label


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector matches these labels (the chart uses no expressions)."""
    assert "matchExpressions" not in selector
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def containers(
    objects: list[dict[str, Any]],
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for deployment in of_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            yield deployment["metadata"]["name"], pod, container


# ------------------------------------------------------------------- lint --


@pytest.mark.parametrize("values_file", [None, PRODUCTION_VALUES], ids=["default", "production"])
def test_chart_lints_without_warnings(values_file: Path | None) -> None:
    values = load_values(values_file) if values_file else None
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


# ---------------------------------------------------- Kubernetes validation --


def test_rendered_objects_are_valid_kubernetes_1_34(rendered: list[dict[str, Any]]) -> None:
    assert rendered, "the chart rendered nothing"
    for obj in rendered:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            # A CRD: kubernetes-validate only knows built-in kinds. Check the
            # fields prometheus-operator needs instead.
            assert obj["kind"] == "ServiceMonitor"
            assert obj["spec"]["endpoints"][0]["port"] == "ops"
            assert obj["spec"]["selector"]["matchLabels"]
            continue
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{name} is not valid for Kubernetes {KUBE_VERSION}: {path}: {exc.message}")


def test_kubernetes_validate_knows_1_34() -> None:
    # The strict check above must really use 1.34 schemas, not fall back to an older one.
    assert "1.34.0" in kubernetes_validate.utils.all_versions()


# --------------------------------------------------------- values schema --


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"services": {"auth": {"replicas": "two"}}},
            "'/services/auth/replicas': got string, want integer",
        ),
        ({"services": {"auth": {"replica": 3}}}, "additional properties 'replica' not allowed"),
        ({"services": {"payments": {"kind": "rest"}}}, "/services/payments/kind"),
        (
            {"ingress": {"hosts": {"livePortal": {"host": "Portal Example"}}}},
            "/ingress/hosts/livePortal/host",
        ),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"secrets": {"create": True}}, "'/secrets/mongodbUrl': minLength"),
        (
            {"services": {"auth": {"env": {"AUTH_MONGODB_URL": "mongodb://u:p@h/"}}}},
            "'/services/auth/env/AUTH_MONGODB_URL'",
        ),
        ({"services": {"auth": {"callers": ["Gateway!"]}}}, "/services/auth/callers/0"),
        ({"portalUrls": {"scheme": "ftp"}}, "/portalUrls/scheme"),
        ({"portalUrls": {"live": "portal.example.com"}}, "/portalUrls/live"),
        ({"portalUrls": {"unified": "https://my.portal.example.com/?x=1"}}, "/portalUrls/unified"),
        ({"smtp": {"mailFrom": "no address"}}, "/smtp/mailFrom"),
        ({"ingress": {"trustedProxies": ["ingress-nginx"]}}, "/ingress/trustedProxies/0"),
    ],
    ids=[
        "wrong-type",
        "unknown-key",
        "bad-enum",
        "bad-hostname",
        "bad-pull-policy",
        "create-secret-without-urls",
        "secret-in-plain-env",
        "bad-caller-name",
        "bad-portal-scheme",
        "portal-url-without-scheme",
        "portal-url-with-query",
        "mail-from-without-address",
        "trusted-proxy-not-a-network",
    ],
)
def test_schema_rejects_bad_values_with_a_clear_message(
    values: dict[str, Any], message: str
) -> None:
    chart = helm.Chart.load(CHART)
    with pytest.raises(helm.HelmValuesError) as exc:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert message in str(exc.value)
    # The same check runs in `helm lint` / `helm install`, not only in render.
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


def test_schema_accepts_the_shipped_values() -> None:
    chart = helm.Chart.load(CHART)
    chart.validate_schema({})
    chart.validate_schema(load_values(PRODUCTION_VALUES))


def test_unknown_caller_fails_rendering_with_its_name() -> None:
    with pytest.raises(helm.HelmRenderError) as exc:
        render({"services": {"auth": {"callers": ["gateway", "billing"]}}})
    assert 'services.auth.callers names "billing"' in str(exc.value)


# ------------------------------------------------------------ hardening --


def test_every_container_has_probes_limits_and_a_locked_down_security_context(
    rendered: list[dict[str, Any]],
) -> None:
    seen = set()
    for name, pod, container in containers(rendered):
        seen.add(container["name"])
        pod_sc = pod["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name

        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True, name
        assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0, name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"] == {"drop": ["ALL"]}, name
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name

        for kind in ("cpu", "memory"):
            assert container["resources"]["limits"][kind], name
            assert container["resources"]["requests"][kind], name

        assert container["readinessProbe"] and container["livenessProbe"], name
        if container["name"] in GRPC_SERVICES:
            port = GRPC_SERVICES[container["name"]]
            assert container["readinessProbe"]["grpc"]["port"] == port, name
        else:
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        # Liveness is not readiness: a dependency outage (database, broker) turns a
        # pod unready, never restarts it. /healthz only needs the event loop.
        for probe in ("livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "ops"}, name
        assert container["livenessProbe"] != container["readinessProbe"], name
        ops_ports = {p["containerPort"] for p in container["ports"] if p["name"] == "ops"}
        assert len(ops_ports) == 1, name

        # /tmp is the one writable place, an emptyDir.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name
    assert seen == ALL_SERVICES


def test_every_deployment_has_a_pdb_and_a_network_policy(rendered: list[dict[str, Any]]) -> None:
    pdbs = of_kind(rendered, "PodDisruptionBudget")
    policies = of_kind(rendered, "NetworkPolicy")
    for deployment in of_kind(rendered, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        name = deployment["metadata"]["name"]
        assert any(selects(p["spec"]["selector"], labels) for p in pdbs), f"{name} has no PDB"
        own = [
            p
            for p in policies
            if selects(p["spec"]["podSelector"], labels) and p["spec"].get("ingress")
        ]
        assert own, f"{name} has no NetworkPolicy allowing its traffic"
        deny = [
            p
            for p in policies
            if selects(p["spec"]["podSelector"], labels)
            and "ingress" not in p["spec"]
            and "egress" not in p["spec"]
        ]
        assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}, (
            f"{name} is not covered by the default-deny policy"
        )


def test_no_secret_value_reaches_a_configmap() -> None:
    objects = render(CREATED_SECRET_VALUES)
    (secret,) = of_kind(objects, "Secret")
    stored = {base64.b64decode(v).decode() for v in secret["data"].values()}
    assert set(SECRET_VALUES.values()) <= stored

    leaked_forms = set(SECRET_VALUES.values()) | {
        base64.b64encode(v.encode()).decode() for v in SECRET_VALUES.values()
    }
    configmaps = of_kind(objects, "ConfigMap")
    assert configmaps
    for cm in configmaps:
        text = yaml.safe_dump(cm)
        for value in leaked_forms:
            assert value not in text, f"a secret value is in ConfigMap {cm['metadata']['name']}"

    # Nor in the pod specs: connection strings come in by secretKeyRef only.
    for name, _, container in containers(objects):
        env = {e["name"]: e for e in container.get("env", [])}
        assert all(value not in yaml.safe_dump(container) for value in leaked_forms), name
        for var, entry in env.items():
            if var.endswith(
                (
                    "_MONGODB_URL",
                    "_AMQP_URL",
                    "_SMTP_PASSWORD",
                    "_SMTP_USERNAME",
                    "_EMAIL_LINK_KEYS",
                    "_WEBHOOK_SECRET_KEYS",
                )
            ):
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref["name"] == secret["metadata"]["name"], name


def test_existing_secret_is_used_and_none_is_created() -> None:
    objects = render({"secrets": {"create": False, "existingSecret": "vault-synced"}})
    assert of_kind(objects, "Secret") == []
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for _, _, c in containers(objects)
        for e in c.get("env", [])
        if "valueFrom" in e
    }
    assert refs == {"vault-synced"}


# ----------------------------------------------------- wiring and traffic --


def configmap_of(objects: list[dict[str, Any]], svc: str) -> dict[str, str]:
    data: dict[str, str] = by_name(objects, "ConfigMap")[f"{RELEASE}-customer-portal-{svc}"]["data"]
    return data


def policy_of(objects: list[dict[str, Any]], svc: str) -> dict[str, Any]:
    policy: dict[str, Any] = by_name(objects, "NetworkPolicy")[f"{RELEASE}-customer-portal-{svc}"]
    return policy


def grpc_callers(policy: dict[str, Any]) -> set[str]:
    """Components allowed in on the gRPC port."""
    found = set()
    for rule in policy["spec"]["ingress"]:
        if {p["port"] for p in rule["ports"]} == {"grpc"}:
            for peer in rule["from"]:
                found.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"])
    return found


def egress_components(policy: dict[str, Any]) -> dict[str, int]:
    """In-release components this pod may connect to, with the port."""
    found = {}
    for rule in policy["spec"]["egress"]:
        for peer in rule.get("to", []):
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            if "app.kubernetes.io/component" in labels and "namespaceSelector" not in peer:
                found[labels["app.kubernetes.io/component"]] = rule["ports"][0]["port"]
    return found


def test_gateway_is_configured_to_reach_every_backend() -> None:
    data = configmap_of(render(None), "gateway")
    for svc, port in GRPC_SERVICES.items():
        expected = f"{RELEASE}-customer-portal-{svc}.{NAMESPACE}.svc.cluster.local:{port}"
        assert data[f"GATEWAY_{svc.upper()}_TARGET"] == expected
    assert data["GATEWAY_HTTP_HOST"] == "0.0.0.0"
    assert data["GATEWAY_ENVIRONMENT"] == "production"


def test_network_policies_follow_the_caller_map() -> None:
    objects = render(None)
    assert grpc_callers(policy_of(objects, "payments")) == {"gateway", "subscriptions"}
    assert grpc_callers(policy_of(objects, "subscriptions")) == {"gateway"}
    # notifications: branding and one-time links (auth), the receipt's PDF (invoicing);
    # subscriptions: each business's renewal reminder days (auth); invoicing prints
    # the business and the customer on each invoice (auth).
    assert grpc_callers(policy_of(objects, "auth")) == {
        "gateway",
        "invoicing",
        "notifications",
        "subscriptions",
    }
    assert grpc_callers(policy_of(objects, "invoicing")) == {"gateway", "notifications"}
    assert configmap_of(objects, "invoicing")["INVOICING_AUTH_TARGET"].endswith(":50051")
    # auth sends its link emails through notifications' EmailService.
    assert grpc_callers(policy_of(objects, "notifications")) == {"gateway", "auth"}
    assert egress_components(policy_of(objects, "auth")) == {"notifications": 50055}
    assert egress_components(policy_of(objects, "gateway")) == GRPC_SERVICES
    assert egress_components(policy_of(objects, "subscriptions")) == {
        "payments": 50053,
        "auth": 50051,
    }
    assert egress_components(policy_of(objects, "notifications")) == {
        "auth": 50051,
        "invoicing": 50054,
    }
    assert egress_components(policy_of(objects, "invoicing")) == {"auth": 50051}
    notifications = configmap_of(objects, "notifications")
    assert notifications["NOTIFICATIONS_AUTH_TARGET"].endswith(":50051")
    assert notifications["NOTIFICATIONS_INVOICING_TARGET"].endswith(":50054")
    assert configmap_of(objects, "subscriptions")["SUBSCRIPTIONS_AUTH_TARGET"].endswith(":50051")
    assert configmap_of(objects, "subscriptions")["SUBSCRIPTIONS_PAYMENTS_TARGET"].endswith(
        ":50053"
    )

    # Only the gateway takes traffic from outside the release: the ingress controller.
    gateway_from = policy_of(objects, "gateway")["spec"]["ingress"][0]["from"][0]
    assert gateway_from["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }


def test_changing_the_caller_map_rewires_policies_and_targets() -> None:
    values = load_values(CHART / "values.yaml")
    values["services"]["invoicing"]["callers"] = ["gateway", "subscriptions"]
    objects = render(values)
    assert grpc_callers(policy_of(objects, "invoicing")) == {"gateway", "subscriptions"}
    assert egress_components(policy_of(objects, "subscriptions")) == {
        "payments": 50053,
        "auth": 50051,
        "invoicing": 50054,
    }
    assert "SUBSCRIPTIONS_INVOICING_TARGET" in configmap_of(objects, "subscriptions")


def test_egress_is_limited_to_what_each_service_needs() -> None:
    objects = render(CREATED_SECRET_VALUES)
    ports = {
        svc: {
            p["port"] for rule in policy_of(objects, svc)["spec"]["egress"] for p in rule["ports"]
        }
        for svc in ALL_SERVICES
    }
    # SMTP only from notifications; MongoDB/RabbitMQ not from the stateless gateway.
    assert 587 in ports["notifications"]
    assert all(587 not in ports[s] for s in ALL_SERVICES - {"notifications"})
    assert 27017 not in ports["gateway"] and 5672 not in ports["gateway"]
    assert all({27017, 5672} <= ports[s] for s in GRPC_SERVICES)
    # HTTPS (merchant webhooks) only from notifications, never to private ranges.
    assert 443 in ports["notifications"]
    assert all(443 not in ports[s] for s in ALL_SERVICES - {"notifications"})
    (webhooks,) = [
        r
        for r in policy_of(objects, "notifications")["spec"]["egress"]
        if r["ports"][0]["port"] == 443
    ]
    assert "10.0.0.0/8" in webhooks["to"][0]["ipBlock"]["except"]
    assert "169.254.0.0/16" in webhooks["to"][0]["ipBlock"]["except"]
    # OTLP egress exists only because an endpoint is configured.
    assert all(4317 in ports[s] for s in ALL_SERVICES)
    assert all(
        4317
        not in {p["port"] for r in policy_of(render(None), s)["spec"]["egress"] for p in r["ports"]}
        for s in ALL_SERVICES
    )


def test_ingress_routes_four_hosts_to_the_gateway_and_the_payment_page_to_payments() -> None:
    objects = render(load_values(PRODUCTION_VALUES))
    (ingress,) = of_kind(objects, "Ingress")
    backends = {
        rule["host"]: rule["http"]["paths"][0]["backend"]["service"]
        for rule in ingress["spec"]["rules"]
    }
    gateway = {"name": f"{RELEASE}-customer-portal-gateway", "port": {"name": "http"}}
    assert backends == {
        "portal.example.com": gateway,
        "test.portal.example.com": gateway,
        "my.portal.example.com": gateway,
        "api.portal.example.com": gateway,
        "pay.portal.example.com": {
            "name": f"{RELEASE}-customer-portal-payments",
            "port": {"name": "page"},
        },
    }
    assert {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]} == set(backends)


def test_the_payment_page_listens_on_its_own_port_with_its_public_url_and_secret() -> None:
    objects = render(load_values(PRODUCTION_VALUES))
    (config,) = [c for c in of_kind(objects, "ConfigMap") if component(c) == "payments"]
    assert config["data"]["PAYMENTS_HTTP_PORT"] == "8083"
    assert config["data"]["PAYMENTS_PUBLIC_URL"] == "https://pay.portal.example.com"
    assert "PAYMENTS_FINGERPRINT_SECRET" not in config["data"]
    (deployment,) = [d for d in of_kind(objects, "Deployment") if component(d) == "payments"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "page", "containerPort": 8083, "protocol": "TCP"} in container["ports"]
    secret_env = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"]}
    assert secret_env["PAYMENTS_FINGERPRINT_SECRET"] == "payments-fingerprint-secret"
    policy = by_name(objects, "NetworkPolicy")[f"{RELEASE}-customer-portal-payments"]
    page_rules = [
        rule
        for rule in policy["spec"]["ingress"]
        if {"port": "page", "protocol": "TCP"} in rule["ports"]
    ]
    assert len(page_rules) == 1 and "namespaceSelector" in page_rules[0]["from"][0]


def test_the_gateway_knows_the_payment_page_origin_for_its_form_action() -> None:
    objects = render(load_values(PRODUCTION_VALUES))
    assert pod_env(objects, "gateway")["GATEWAY_PAYMENTS_PAGE_URL"] == (
        "https://pay.portal.example.com"
    )
    for svc in ALL_SERVICES - {"gateway"}:
        assert not [k for k in pod_env(objects, svc) if k.endswith("PAYMENTS_PAGE_URL")], svc


def test_defaults_run_two_replicas_tagged_with_app_version() -> None:
    objects = render(None)
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    deployments = of_kind(objects, "Deployment")
    assert {component(d) for d in deployments} == ALL_SERVICES
    for d in deployments:
        assert d["spec"]["replicas"] == 2
        image = d["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == f"customer-portal/{component(d)}:{app_version}"
    assert of_kind(objects, "HorizontalPodAutoscaler") == []
    assert of_kind(objects, "ServiceMonitor") == []


def test_autoscaled_services_leave_replicas_to_the_hpa() -> None:
    objects = render(load_values(PRODUCTION_VALUES))
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    assert hpas
    for d in of_kind(objects, "Deployment"):
        if d["metadata"]["name"] in hpas:
            assert "replicas" not in d["spec"]
        else:
            assert d["spec"]["replicas"] >= 2


def test_a_disabled_caller_opens_nothing() -> None:
    # An empty `from` list would admit every pod in the cluster.
    objects = render({"services": {"gateway": {"enabled": False}}})
    assert grpc_callers(policy_of(objects, "subscriptions")) == set()
    for rule in policy_of(objects, "subscriptions")["spec"]["ingress"]:
        assert rule["from"], "an ingress rule without sources admits everyone"
    assert grpc_callers(policy_of(objects, "auth")) == {
        "invoicing",
        "notifications",
        "subscriptions",
    }
    assert grpc_callers(policy_of(objects, "payments")) == {"subscriptions"}
    assert of_kind(objects, "Ingress") == []


# ------------------------------------------------ settings the services read --

PORTAL_URL_KEYS = ("PORTAL_LIVE_BASE_URL", "PORTAL_TEST_BASE_URL", "UNIFIED_BASE_URL")


def pod_env(objects: list[dict[str, Any]], svc: str) -> dict[str, Any]:
    """What the container sees: its ConfigMap (envFrom) plus its own env entries."""
    deployment = by_name(objects, "Deployment")[f"{RELEASE}-customer-portal-{svc}"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        env.update(by_name(objects, "ConfigMap")[source["configMapRef"]["name"]]["data"])
    for entry in container.get("env", []):
        env[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return env


def test_auth_and_gateway_get_the_portal_urls_from_the_ingress_hosts() -> None:
    objects = render(load_values(PRODUCTION_VALUES))
    expected = {
        "PORTAL_LIVE_BASE_URL": "https://portal.example.com",
        "PORTAL_TEST_BASE_URL": "https://test.portal.example.com",
        "UNIFIED_BASE_URL": "https://my.portal.example.com",
    }
    for svc, prefix in (("auth", "AUTH"), ("gateway", "GATEWAY")):
        env = pod_env(objects, svc)
        assert {k: env[f"{prefix}_{k}"] for k in PORTAL_URL_KEYS} == expected, svc
    for svc in ALL_SERVICES - {"auth", "gateway"}:
        assert not [k for k in pod_env(objects, svc) if k.endswith(PORTAL_URL_KEYS)], svc
    assert pod_env(objects, "auth")["AUTH_NOTIFICATIONS_TARGET"] == (
        f"{RELEASE}-customer-portal-notifications.{NAMESPACE}.svc.cluster.local:50055"
    )


def test_only_the_gateway_believes_forwarded_addresses_and_only_from_the_ingress() -> None:
    env = pod_env(render({"ingress": {"trustedProxies": ["10.42.0.0/16"]}}), "gateway")
    assert env["GATEWAY_TRUSTED_PROXIES"] == "10.42.0.0/16"
    objects = render(None)
    for svc in ALL_SERVICES - {"gateway"}:
        assert not [k for k in pod_env(objects, svc) if k.endswith("TRUSTED_PROXIES")], svc


def test_portal_urls_follow_the_scheme_and_explicit_overrides() -> None:
    values = {
        "ingress": {"hosts": {"unifiedPortal": {"host": "all.shop.test"}}},
        "portalUrls": {"scheme": "http", "test": "https://portal.shop.test/test/"},
    }
    env = pod_env(render(values), "gateway")
    assert env["GATEWAY_PORTAL_LIVE_BASE_URL"] == "http://portal.example.com"
    assert env["GATEWAY_PORTAL_TEST_BASE_URL"] == "https://portal.shop.test/test"
    assert env["GATEWAY_UNIFIED_BASE_URL"] == "http://all.shop.test"
    assert pod_env(render(values), "auth")["AUTH_UNIFIED_BASE_URL"] == "http://all.shop.test"


def test_two_identical_portal_urls_fail_rendering() -> None:
    with pytest.raises(helm.HelmRenderError) as exc:
        render({"portalUrls": {"unified": "https://portal.example.com"}})
    assert "portalUrls" in str(exc.value)


def test_notifications_gets_its_sender_and_smtp_credentials_from_the_secret() -> None:
    env = pod_env(render(load_values(PRODUCTION_VALUES)), "notifications")
    assert env["NOTIFICATIONS_MAIL_FROM"] == "Customer Portal <no-reply@portal.example.com>"
    assert env["NOTIFICATIONS_SMTP_HOST"] == "smtp-relay.example.com"
    assert env["NOTIFICATIONS_SMTP_USE_TLS"] == "false"
    for name, key in (("USERNAME", "smtp-username"), ("PASSWORD", "smtp-password")):
        ref = env[f"NOTIFICATIONS_SMTP_{name}"]["secretKeyRef"]
        assert ref == {"name": "customer-portal-connections", "key": key, "optional": True}


def test_auth_and_notifications_share_the_email_link_keys_from_the_secret() -> None:
    objects = render(load_values(PRODUCTION_VALUES))
    refs = {
        svc: pod_env(objects, svc).get(f"{svc.upper()}_EMAIL_LINK_KEYS")
        for svc in ("auth", "notifications", "gateway", "payments")
    }
    expected = {"secretKeyRef": {"name": "customer-portal-connections", "key": "email-link-keys"}}
    assert refs == {
        "auth": expected,
        "notifications": expected,
        "gateway": None,
        "payments": None,
    }


def test_subscriptions_and_notifications_share_the_license_key_seal_keys() -> None:
    objects = render(load_values(PRODUCTION_VALUES))
    refs = {
        svc: pod_env(objects, svc).get(f"{svc.upper()}_LICENSE_KEY_SEAL_KEYS")
        for svc in ("subscriptions", "gateway", "auth", "notifications")
    }
    expected = {
        "secretKeyRef": {"name": "customer-portal-connections", "key": "license-key-seal-keys"}
    }
    # subscriptions seals, notifications opens (key email, webhook); no one else has it.
    assert refs == {
        "subscriptions": expected,
        "gateway": None,
        "auth": None,
        "notifications": expected,
    }


def test_only_notifications_gets_the_webhook_secret_keys_and_never_private_targets() -> None:
    objects = render(load_values(PRODUCTION_VALUES))
    refs = {
        svc: pod_env(objects, svc).get(f"{svc.upper()}_WEBHOOK_SECRET_KEYS") for svc in ALL_SERVICES
    }
    expected = {
        "secretKeyRef": {"name": "customer-portal-connections", "key": "webhook-secret-keys"}
    }
    assert refs == {svc: expected if svc == "notifications" else None for svc in ALL_SERVICES}
    env = pod_env(objects, "notifications")
    assert env["NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE_TARGETS"] == "false"


def test_created_secret_requires_the_webhook_secret_keys() -> None:
    values = {**CREATED_SECRET_VALUES, "secrets": {**CREATED_SECRET_VALUES["secrets"]}}
    del values["secrets"]["webhookSecretKeys"]
    with pytest.raises(Exception, match="webhookSecretKeys"):
        render(values)


def _secret_stand_in(name: str) -> str:
    if name.endswith("_AMQP_URL"):
        return "amqp://user:secret@rabbitmq:5672/"
    if name.endswith("_MONGODB_URL"):
        return "mongodb://user:secret@mongodb:27017/"
    return "secret"


@pytest.mark.parametrize(
    ("svc", "module", "cls"),
    [
        ("auth", "auth.config", "AuthSettings"),
        ("gateway", "gateway.config", "GatewaySettings"),
        ("notifications", "notifications.config", "NotificationsSettings"),
        ("subscriptions", "subscriptions.config", "SubscriptionsSettings"),
    ],
)
def test_services_start_with_the_rendered_settings(
    svc: str, module: str, cls: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pod's environment passes the service's own validation (e.g. the gateway
    accepts three root-path sites on three hosts)."""
    settings_class = getattr(pytest.importorskip(module), cls)
    for name, value in pod_env(render(load_values(PRODUCTION_VALUES)), svc).items():
        # Secret references stand for values the Secret provides at run time
        # (well-formed ones: connection settings are validated at start).
        if name.endswith("_EMAIL_LINK_KEYS"):
            value = SECRET_VALUES["emailLinkKeys"]
        if name.endswith("_LICENSE_KEY_SEAL_KEYS"):
            value = SECRET_VALUES["licenseKeySealKeys"]
        if name.endswith("_WEBHOOK_SECRET_KEYS"):
            value = SECRET_VALUES["webhookSecretKeys"]
        monkeypatch.setenv(name, value if isinstance(value, str) else _secret_stand_in(name))
    settings = settings_class()
    assert settings.environment == "production"
    if svc in ("auth", "gateway"):
        assert settings.unified_base_url == "https://my.portal.example.com"
