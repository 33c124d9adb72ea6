"""ORDERDESK_NATS_URL: one server, or every node of a JetStream cluster (orderdesk.config.nats_servers)."""

import pytest

from orderdesk import config


def test_one_url_is_one_server():
    assert config.nats_servers("nats://127.0.0.1:4222") == ["nats://127.0.0.1:4222"]


def test_a_cluster_is_every_node_comma_separated():
    assert config.nats_servers("nats://n1:4222, nats://n2:4222,nats://n3:4222,") == [
        "nats://n1:4222",
        "nats://n2:4222",
        "nats://n3:4222",
    ]


def test_an_empty_list_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="ORDERDESK_NATS_URL is empty"):
        config.nats_servers(" , ")


def test_settings_keep_the_list_for_the_runtime(monkeypatch):
    monkeypatch.setenv("ORDERDESK_NATS_URL", "nats://127.0.0.1:4301,nats://127.0.0.1:4302")
    settings = config.Settings.from_env("orders")
    assert config.nats_servers(settings.nats_url) == ["nats://127.0.0.1:4301", "nats://127.0.0.1:4302"]
