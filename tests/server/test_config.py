"""The server's TOML configuration: defaults, every table, and clear errors for typos and bad values."""

import pytest

from server.config import Config, ConfigError, load_config, parse_config


def test_defaults_without_a_file() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.limits.max_sessions == 256 and config.scheduler.max_batch == 64
    assert config.recognition.chunk_ms == 160 and config.recognition.final_pass == "auto"
    assert [config.recognition.whisper_beam(r) for r in ("live", "request", "job")] == [0, 4, 4]
    assert config.recognition.custom_lm_fusion is False  # rescoring: fusion hurt on unscripted sentences
    assert config.limits.release_check_s == 30
    assert config.credentials == ()


def test_a_full_file(tmp_path) -> None:
    path = tmp_path / "voxgate.toml"
    path.write_text("""
[server]
max_sessions = 10
session_timeout_s = 5.5
[scheduler]
max_batch = 8
max_wait_ms = 2
[recognition]
chunk_ms = 320
final_pass = "greedy"
[[credentials]]
instance = "acme"
api_key = "k1"
[[credentials]]
instance = "globex"
access_key_id = "AKID"
secret_access_key = "s"
""")
    config = load_config(path)
    assert config.limits.max_sessions == 10 and config.limits.session_timeout_s == 5.5
    assert (config.scheduler.max_batch, config.scheduler.max_wait_ms) == (8, 2)
    assert (config.recognition.chunk_ms, config.recognition.final_pass) == (320, "greedy")
    assert [c.instance for c in config.credentials] == ["acme", "globex"]


@pytest.mark.parametrize("data,match", [
    ({"sever": {}}, "unknown table"),
    ({"server": {"max_session": 3}}, "unknown key"),
    ({"server": {"max_sessions": "many"}}, "max_sessions must be int"),
    ({"server": {"max_sessions": 0}}, "must be positive"),
    ({"scheduler": {"max_batch": 0}}, "max_batch must be at least 1"),
    ({"recognition": {"chunk_ms": 100}}, "multiple of 40"),
    ({"recognition": {"final_pass": "best"}}, "final_pass must be one of greedy, ctc, whisper"),
    ({"recognition": {"final_pass": ""}}, "final_pass: final_pass must be one of"),
    ({"recognition": {"job_final_pass": "fast"}}, "job_final_pass: final_pass must be one of"),
    ({"recognition": {"live_whisper_beam": 17}}, "live_whisper_beam must be between 0 and 16"),
    ({"recognition": {"custom_lm_fusion": "yes"}}, "custom_lm_fusion must be bool"),
    ({"server": {"release_check_s": -1}}, "must be positive"),
    ({"credentials": {"instance": "a"}}, "array of tables"),
    ({"credentials": [{"instance": "a"}]}, "needs api_key or access_key_id"),
    ({"credentials": [{"instance": "a", "access_key_id": "X"}]}, "both access_key_id and secret_access_key"),
    ({"credentials": [{"instance": "a", "api_key": "k"}, {"instance": "b", "api_key": "k"}]}, "repeats a key"),
])
def test_bad_configs_name_the_problem(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(data)


def test_final_pass_per_route() -> None:
    recognition = parse_config({"recognition": {"final_pass": "ctc", "live_final_pass": "greedy",
                                                "job_final_pass": "auto"}}).recognition
    assert recognition.requested_final_pass("live") == "greedy"
    assert recognition.requested_final_pass("request") == "ctc"  # empty: the general setting
    assert recognition.requested_final_pass("job") is None        # auto: the version's own
    assert parse_config({}).recognition.requested_final_pass("live") is None
    with pytest.raises(ValueError, match="unknown route kind"):
        recognition.requested_final_pass("batch")


def test_unreadable_and_malformed_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_customization_table() -> None:
    assert parse_config({"customization": {"min_acoustic_minutes": 2.5}}).customization.min_acoustic_minutes == 2.5
    with pytest.raises(ConfigError, match="min_acoustic_minutes must not be negative"):
        parse_config({"customization": {"min_acoustic_minutes": -1}})
    with pytest.raises(ConfigError, match=r"\[customization\]: unknown key\(s\) min_minutes"):
        parse_config({"customization": {"min_minutes": 1}})
