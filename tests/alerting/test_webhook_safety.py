"""Webhook URLs cannot be turned against the inside of the network (SSRF): only http(s) to
hosts whose every address is public, checked when the channel is saved and again at each
delivery; redirects are not followed and a receiver's answer is read only up to a bound."""

from __future__ import annotations

import socket

import pytest
from django.core.exceptions import ValidationError

from apps.alerting import services, webhook_urls
from apps.alerting.models import Alert, WebhookChannel, WebhookDelivery
from tests.alerting.conftest import fail_job, job_rule

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"


@pytest.fixture
def production_rules(settings):
    """The production default: private and loopback receivers are refused."""
    settings.ALERTING_WEBHOOK_ALLOW_PRIVATE = False


def _dns(monkeypatch, *addresses: str) -> None:
    """Every host resolves to `addresses` (a stub for DNS, in the module that asks)."""

    def getaddrinfo(host, port, *args, **kwargs):
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    monkeypatch.setattr(webhook_urls, "getaddrinfo", getaddrinfo)


def _create(people, endpoint, url: str) -> WebhookChannel:
    return services.create_channel(by=people["owner_user"], name="pager", url=url, endpoint=endpoint)


def _url_error(people, endpoint, url: str) -> str:
    with pytest.raises(ValidationError) as caught:
        _create(people, endpoint, url)
    return " ".join(caught.value.message_dict["url"])


def _fire(endpoint, people, django_capture_on_commit_callbacks) -> WebhookDelivery:
    rule = job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.evaluate(rule=rule, endpoint=endpoint) == "opened"
    return WebhookDelivery.objects.get(alert=Alert.objects.get(rule=rule))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://10.0.0.5/", "private-network"),
        ("http://169.254.169.254/latest", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("ftp://example.org/", "http or https"),
        ("http://user:pw@example.org/", "user name or password"),
    ],
)
def test_a_channel_to_a_forbidden_url_is_refused_with_the_reason(people, endpoint, production_rules, url, reason):
    assert reason in _url_error(people, endpoint, url)
    assert not WebhookChannel.objects.exists()


def test_a_hostname_resolving_to_a_private_address_is_refused(people, endpoint, production_rules, monkeypatch):
    _dns(monkeypatch, "192.168.1.20")
    message = _url_error(people, endpoint, "https://hooks.example.org/x")
    assert "hooks.example.org resolves to 192.168.1.20" in message and "private-network" in message


def test_one_private_address_among_public_ones_is_enough_to_refuse(people, endpoint, production_rules, monkeypatch):
    _dns(monkeypatch, PUBLIC, "10.1.2.3")
    assert "10.1.2.3" in _url_error(people, endpoint, "https://hooks.example.org/x")


def test_a_host_that_does_not_resolve_is_refused(people, endpoint, production_rules, monkeypatch):
    def no_answer(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(webhook_urls, "getaddrinfo", no_answer)
    assert "could not be resolved" in _url_error(people, endpoint, "https://nowhere.example.org/")


def test_a_hostname_resolving_to_a_public_address_is_accepted(people, endpoint, production_rules, monkeypatch):
    _dns(monkeypatch, PUBLIC)
    channel = _create(people, endpoint, "https://hooks.example.org/x")
    assert channel.pk and channel.url == "https://hooks.example.org/x"


def test_allowing_private_receivers_still_refuses_the_metadata_address(people, endpoint, settings):
    settings.ALERTING_WEBHOOK_ALLOW_PRIVATE = True
    assert _create(people, endpoint, "http://10.0.0.5/").pk
    assert "link-local" in _url_error(people, endpoint, "http://169.254.169.254/latest")


def test_a_host_that_now_resolves_privately_is_not_posted_to(
    people, endpoint, receiver, production_rules, monkeypatch, django_capture_on_commit_callbacks
):
    port = receiver.url.rsplit(":", 1)[1]
    real_getaddrinfo = webhook_urls.getaddrinfo
    _dns(monkeypatch, PUBLIC)  # public when the channel is saved...
    _create(people, endpoint, f"http://localhost:{port}/hook")
    delivery = _fire(endpoint, people, django_capture_on_commit_callbacks)
    monkeypatch.setattr(webhook_urls, "getaddrinfo", real_getaddrinfo)  # ...localhost again now
    with pytest.raises(services.DeliveryFailed, match="Refused"):
        services.deliver(delivery_id=delivery.pk, final=True)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.response_status is None
    assert delivery.last_error.startswith("Refused: ") and "loopback" in delivery.last_error
    assert receiver.requests == []


def test_a_redirect_fails_the_delivery_and_is_not_followed(
    people, endpoint, receiver, django_capture_on_commit_callbacks
):
    _create(people, endpoint, f"{receiver.url}/hook")
    delivery = _fire(endpoint, people, django_capture_on_commit_callbacks)
    receiver.statuses = [302]
    receiver.reply_headers = {"Location": f"{receiver.url}/elsewhere"}
    with pytest.raises(services.DeliveryFailed, match="HTTP 302"):
        services.deliver(delivery_id=delivery.pk, final=True)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.response_status == 302
    assert [r["path"] for r in receiver.requests] == ["/hook"]


def test_a_huge_error_body_is_read_only_up_to_the_bound(people, endpoint, receiver, django_capture_on_commit_callbacks):
    _create(people, endpoint, receiver.url)
    delivery = _fire(endpoint, people, django_capture_on_commit_callbacks)
    receiver.statuses = [500]
    receiver.reply_body = b"x" * 1_000_000
    with pytest.raises(services.DeliveryFailed, match="HTTP 500"):
        services.deliver(delivery_id=delivery.pk, final=True)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.response_status == 500
    assert len(delivery.last_error) <= 400


def test_a_huge_success_body_still_counts_as_delivered(people, endpoint, receiver, django_capture_on_commit_callbacks):
    _create(people, endpoint, receiver.url)
    delivery = _fire(endpoint, people, django_capture_on_commit_callbacks)
    receiver.reply_body = b"x" * 1_000_000
    delivery = services.deliver(delivery_id=delivery.pk, final=True)
    assert delivery.status == "delivered" and delivery.last_error == ""


def _dns_log(monkeypatch, answers: list[str]) -> list[str]:
    """Each lookup of any host takes the next of `answers` (a rebinding DNS server); returns
    the hosts looked up, in order."""
    looked_up: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        address = answers[min(len(looked_up), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(webhook_urls, "getaddrinfo", getaddrinfo)
    return looked_up


def test_a_delivery_connects_to_the_address_its_check_approved(
    people, endpoint, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    """DNS rebinding: the name answers the receiver's address to the check, then a forbidden
    one. The delivery resolves once and posts to the approved address with the URL's Host. The
    name does not exist in real DNS, so a client resolving it again could not deliver at all."""
    port = receiver.url.rsplit(":", 1)[1]
    _dns_log(monkeypatch, ["127.0.0.1"])
    _create(people, endpoint, f"http://hooks.rebind.invalid:{port}/hook?team=ops")
    delivery = _fire(endpoint, people, django_capture_on_commit_callbacks)
    looked_up = _dns_log(monkeypatch, ["127.0.0.1", "169.254.169.254"])
    delivery = services.deliver(delivery_id=delivery.pk, final=True)
    assert delivery.status == "delivered" and delivery.response_status == 200
    assert looked_up == ["hooks.rebind.invalid"]
    [request] = receiver.requests
    assert request["path"] == "/hook?team=ops"
    assert request["headers"]["Host"] == f"hooks.rebind.invalid:{port}"
    assert request["json"]["alert"]["state"] == "firing"


def test_an_address_that_refuses_the_connection_gives_way_to_the_next(
    people, endpoint, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    port = int(receiver.url.rsplit(":", 1)[1])
    # 127.0.0.2 is loopback too, but nothing listens on it: the connection is refused.
    _dns(monkeypatch, "127.0.0.2", "127.0.0.1")
    _create(people, endpoint, f"http://hooks.two.invalid:{port}/hook")
    delivery = _fire(endpoint, people, django_capture_on_commit_callbacks)
    assert services.deliver(delivery_id=delivery.pk, final=True).status == "delivered"
    assert len(receiver.requests) == 1


def _self_signed(tmp_path, name: str) -> tuple[str, str]:
    """A certificate for `name` and its key, as PEM files (the certificate is its own CA)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_receiver(receiver, tmp_path, monkeypatch):
    """The receiver behind TLS with a certificate for hooks.example.test, which the worker
    trusts (REQUESTS_CA_BUNDLE, as for an internal CA)."""
    import ssl

    cert, key = _self_signed(tmp_path, "hooks.example.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    return receiver


@pytest.mark.parametrize(("name", "delivered"), [("hooks.example.test", True), ("other.example.test", False)])
def test_https_is_verified_against_the_url_host_not_the_address(
    people, endpoint, tls_receiver, monkeypatch, django_capture_on_commit_callbacks, name, delivered
):
    """Connecting to the approved address keeps TLS honest: the certificate must name the
    URL's host, so a URL naming another host fails even at the same address."""
    port = tls_receiver.server.server_address[1]
    _dns(monkeypatch, "127.0.0.1")
    _create(people, endpoint, f"https://{name}:{port}/hook")
    delivery = _fire(endpoint, people, django_capture_on_commit_callbacks)
    if delivered:
        assert services.deliver(delivery_id=delivery.pk, final=True).status == "delivered"
        assert tls_receiver.requests[0]["headers"]["Host"] == f"{name}:{port}"
    else:
        with pytest.raises(services.DeliveryFailed, match="SSL|certificate|hostname"):
            services.deliver(delivery_id=delivery.pk, final=True)
        assert tls_receiver.requests == []
