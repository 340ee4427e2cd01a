"""The ``[s3]`` table: defaults, the file, the environment's overrides, and clear errors."""

import pytest

from server.config import ConfigError, S3Config, load_config, parse_config


def test_defaults_without_s3_table() -> None:
    assert parse_config({}, environ={}).s3 == S3Config(endpoint_url=None, region="us-east-1")


def test_the_table_is_read(tmp_path) -> None:
    path = tmp_path / "voxgate.toml"
    path.write_text('[s3]\nendpoint_url = "http://127.0.0.1:9000"\nregion = "eu-west-1"\n'
                    'access_key_id = "AKID"\nsecret_access_key = "secret"\n')
    s3 = load_config(path).s3
    assert (s3.endpoint_url, s3.region, s3.access_key_id, s3.secret_access_key) == \
        ("http://127.0.0.1:9000", "eu-west-1", "AKID", "secret")


def test_the_environment_overrides_key_by_key() -> None:
    data = {"s3": {"endpoint_url": "http://file:9000", "region": "eu-west-1"}}
    environ = {"VOXGATE_S3_ENDPOINT_URL": "http://env:9000", "VOXGATE_S3_ACCESS_KEY_ID": "AKID",
               "VOXGATE_S3_SECRET_ACCESS_KEY": "secret", "VOXGATE_S3_REGION": ""}
    s3 = parse_config(data, environ=environ).s3
    assert s3 == S3Config("http://env:9000", "eu-west-1", "AKID", "secret")


def test_the_environment_applies_without_a_file(monkeypatch) -> None:
    monkeypatch.setenv("VOXGATE_S3_ENDPOINT_URL", "http://127.0.0.1:9999")
    assert load_config(None).s3.endpoint_url == "http://127.0.0.1:9999"


@pytest.mark.parametrize(("table", "message"), [
    ({"endpoint": "http://x"}, "unknown key(s) endpoint"),
    ({"endpoint_url": "127.0.0.1:9000"}, "endpoint_url must start with http:// or https://"),
    ({"access_key_id": "AKID"}, "needs both access_key_id and secret_access_key"),
    ({"region": 1}, "[s3].region must be str"),
    ({"region": ""}, "region must not be empty"),
])
def test_bad_tables_are_named(table, message) -> None:
    with pytest.raises(ConfigError, match="s3") as caught:
        parse_config({"s3": table}, "voxgate.toml", environ={})
    assert message in str(caught.value) and "voxgate.toml" in str(caught.value)


def test_s3_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match=r"\[s3\] must be a table"):
        parse_config({"s3": "http://x"}, environ={})
