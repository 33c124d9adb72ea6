"""How processes dial a service that runs as several replicas (orderdesk.config)."""

from orderdesk import config


def test_one_address_is_dialled_as_it_is():
    assert config.grpc_target("127.0.0.1:50052") == ("127.0.0.1:50052", config.CHANNEL_OPTIONS)


def test_a_list_of_replicas_is_balanced_round_robin():
    target, options = config.grpc_target("127.0.0.1:6001, 127.0.0.1:6002")
    assert target == "ipv4:127.0.0.1:6001,127.0.0.1:6002"
    assert options == [*config.CHANNEL_OPTIONS, ("grpc.lb_policy_name", "round_robin")]


def test_a_dns_target_is_balanced_over_what_it_resolves_to():
    assert config.grpc_target("dns:///orders-replicas:50051") == (
        "dns:///orders-replicas:50051",
        [*config.CHANNEL_OPTIONS, ("grpc.lb_policy_name", "round_robin")],
    )


def test_a_restarted_peer_is_dialled_again_within_seconds():
    options = dict(config.grpc_target("127.0.0.1:50052")[1])
    assert options["grpc.max_reconnect_backoff_ms"] <= 5_000


def test_peers_dial_the_target_and_fall_back_to_the_address(monkeypatch):
    monkeypatch.setenv("ORDERDESK_ORDERS_ADDR", "127.0.0.1:6001")
    monkeypatch.setenv("ORDERDESK_ORDERS_TARGET", "127.0.0.1:6001,127.0.0.1:6002")
    monkeypatch.setenv("ORDERDESK_INTAKE_ADDR", "127.0.0.1:7001")
    monkeypatch.delenv("ORDERDESK_INTAKE_TARGET", raising=False)
    settings = config.Settings.from_env("orders")
    assert settings.grpc_addr == "127.0.0.1:6001"  # listens on its own address
    assert settings.peers["orders"] == "127.0.0.1:6001,127.0.0.1:6002"
    assert settings.peers["intake"] == "127.0.0.1:7001"
