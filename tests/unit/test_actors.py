from orderdesk import actors


def test_a_desk_account_reads_back_with_its_role():
    who = actors.parse(actors.desk("ann@acme.example", "approver"))
    assert (who.kind, who.name, who.role) == ("desk", "ann@acme.example", "approver")


def test_a_key_reads_back_with_its_partner():
    who = actors.parse(actors.api_key("shop-prod", "P-SHOP"))
    assert (who.kind, who.name, who.partner_id) == ("key", "shop-prod", "P-SHOP")


def test_older_records_name_a_partner_and_empty_is_the_system():
    assert actors.parse("P-SHOP") == actors.Who("partner", "P-SHOP", partner_id="P-SHOP")
    assert actors.parse("").kind == "system"
    assert actors.parse("system").kind == "system"


def test_a_carrier_reads_back_as_a_carrier():
    assert actors.parse(actors.carrier("dhl")) == actors.Who("carrier", "dhl")
