"""Key discovery and settings resolution: one answer to "which key and URL, and why"."""

from __future__ import annotations

import pytest

from accel_nb import errors
from accel_nb.config import load_settings


def settings(config=None, keys=None, environ=None, dotenv=None, file_config=None):
    return load_settings(config, keys, environ=environ or {}, dotenv=dotenv or {}, file_config=file_config or {})


def sources(s, provider):
    return [k.source for k in s.providers[provider].keys]


def test_env_key_forms():
    env = {
        "OPENAI_API_KEY": "sk-one-aaaaaaaaaaaa",
        "OPENAI_API_KEYS": "sk-two-bbbbbbbbbbbb, sk-three-cccccccccc",
        "OPENAI_API_KEY_1": "sk-four-dddddddddddd",
        "OPENAI_API_KEY_2": "sk-five-eeeeeeeeeeee",
        "OPENAI_API_KEY_4": "sk-skipped-after-a-gap",
    }
    s = settings(environ=env)
    assert sources(s, "openai") == [
        "env:OPENAI_API_KEY", "env:OPENAI_API_KEYS", "env:OPENAI_API_KEYS",
        "env:OPENAI_API_KEY_1", "env:OPENAI_API_KEY_2",
    ]


def test_gemini_falls_back_to_google_api_key():
    assert sources(settings(environ={"GOOGLE_API_KEY": "AIza-xxxxxxxxxxxx"}), "gemini") == ["env:GOOGLE_API_KEY"]
    both = settings(environ={"GOOGLE_API_KEY": "AIza-xxxxxxxxxxxx", "GEMINI_API_KEY": "AIza-yyyyyyyyyyyy"})
    assert sources(both, "gemini") == ["env:GEMINI_API_KEY"]


def test_key_source_precedence():
    file_config = {"providers": {"claude": {"keys": ["sk-ant-file-000000000"]}}}
    dotenv = {"ANTHROPIC_API_KEY": "sk-ant-dotenv-0000000"}
    environ = {"ANTHROPIC_API_KEY": "sk-ant-env-000000000"}
    assert sources(settings(file_config=file_config), "claude") == ["config"]
    assert sources(settings(file_config=file_config, dotenv=dotenv), "claude") == [".env:ANTHROPIC_API_KEY"]
    everywhere = settings(file_config=file_config, dotenv=dotenv, environ=environ)
    assert sources(everywhere, "claude") == ["env:ANTHROPIC_API_KEY"]
    runtime = settings(keys={"anthropic": ["sk-ant-runtime-00000"]}, environ=environ)
    assert sources(runtime, "claude") == ["runtime"]


def test_config_dict_has_the_config_file_shape():
    s = settings({"providers": {"openai": {"base_url": "http://proxy/v1/", "concurrency": 64, "rpm": 500,
                                           "keys": ["sk-cfg-111111111111"]}}})
    openai = s.providers["openai"]
    assert (openai.base_url, openai.concurrency, openai.rpm) == ("http://proxy/v1", 64, 500)
    assert sources(s, "openai") == ["config"]


def test_base_url_precedence():
    env = {"ANTHROPIC_BASE_URL": "http://env-anthropic", "GEMINI_BASE_URL": "http://env-gemini"}
    s = settings(environ=env)
    assert s.providers["claude"].base_url == "http://env-anthropic"
    assert s.providers["gemini"].base_url == "http://env-gemini"
    assert s.providers["openai"].base_url == "https://api.openai.com/v1"
    s = settings({"providers": {"claude": {"base_url": "http://cfg"}}}, environ=env)
    assert s.providers["claude"].base_url == "http://cfg"


def test_sim_url_points_every_provider_at_the_simulator():
    s = settings(environ={"ACCEL_NB_SIM_URL": "http://127.0.0.1:8750/", "GROQ_API_KEY": "gsk_real_000000000000"})
    assert s.providers["openai"].base_url == "http://127.0.0.1:8750/openai/v1"
    assert s.providers["claude"].base_url == "http://127.0.0.1:8750/anthropic"
    assert s.providers["gemini"].base_url == "http://127.0.0.1:8750/gemini"
    assert sources(s, "openai") == ["simulator"] and sources(s, "groq") == ["env:GROQ_API_KEY"]


def test_unknown_settings_are_rejected_with_the_valid_ones():
    with pytest.raises(errors.BadRequestError, match=r"unknown setting providers.openai.concurency.*concurrency"):
        settings({"providers": {"openai": {"concurency": 3}}})
    with pytest.raises(errors.BadRequestError, match=r"unknown setting config\.retries"):
        settings({"retries": {}})
    with pytest.raises(errors.BadRequestError, match="unknown provider"):
        settings({"providers": {"opneai": {}}})
    with pytest.raises(errors.BadRequestError, match="overflow"):
        settings({"queue": {"overflow": "drop"}})


@pytest.mark.parametrize(("config", "message"), [
    ({"providers": {"openai": {"concurrency": 0}}}, r"openai\.concurrency must be a whole number at least 1"),
    ({"providers": {"openai": {"concurrency": "64"}}}, r"providers\.openai\.concurrency must be a whole number"),
    ({"providers": {"openai": {"rpm": -1}}}, r"providers\.openai\.rpm must be a number above 0, not -1"),
    ({"providers": {"groq": {"tpm": "lots"}}}, r"providers\.groq\.tpm must be a number above 0, not 'lots'"),
    ({"providers": {"openai": {"key_strategy": "random"}}}, r"key_strategy must be one of round_robin, least_loaded"),
    ({"providers": {"openai": {"base_url": "api.openai.com/v1"}}}, r"base URL of openai must be an http:// or https://"),
    ({"providers": {"openai": {"keys": 5}}}, r"providers\.openai\.keys must be a key string or a list of key strings"),
    ({"retry": {"max_attempts": 0}}, r"retry\.max_attempts must be a whole number at least 1, not 0"),
    ({"retry": {"backoff_base_s": -0.5}}, r"retry\.backoff_base_s must be a number at least 0"),
    ({"breaker": {"failures": 2.5}}, r"breaker\.failures must be a whole number at least 1, not 2\.5"),
    ({"queue": {"max_size": -1}}, r"queue\.max_size must be a whole number at least 1"),
    ({"timeouts": {"read": 0}}, r"timeouts\.read must be a number above 0"),
    ({"timeouts": {"total": "5"}}, r"timeouts\.total must be a number above 0"),
])
def test_bad_values_are_refused_when_the_settings_load_not_at_the_first_request(config, message):
    with pytest.raises(errors.BadRequestError, match=message):
        settings(config)


def test_a_bad_key_list_is_refused_without_showing_the_keys():
    with pytest.raises(errors.BadRequestError, match=r"keys\['openai'\] must be a key string") as caught:
        settings(keys={"openai": ["sk-secret-value-123456", 7]})
    assert "sk-secret" not in str(caught.value)
    assert settings({"providers": {"s3": {}}}).providers["s3"].base_url == ""  # S3: AWS by region


def test_sections(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCEL_NB_HOME", str(tmp_path))
    s = settings({"retry": {"max_attempts": 2}, "breaker": {"failures": 1}, "cache": True,
                  "ledger": {"store_content": False}, "timeouts": {"read": 5, "total": 9}, "aliases": {"fast": "groq"}})
    assert s.retry.max_attempts == 2 and s.breaker.failures == 1 and s.cache is True
    assert s.ledger_path == tmp_path / "ledger.sqlite3" and s.store_content is False
    assert (s.read_timeout_s, s.timeout_s, s.aliases) == (5.0, 9, {"fast": "groq"})
    assert settings({"ledger": {"enabled": False}}).ledger_path is None


def test_settings_repr_shows_no_key():
    s = settings(environ={"OPENAI_API_KEY": "sk-secret-value-123456"})
    assert "secret-value" not in repr(s) and "…3456" in repr(s.providers["openai"])


def test_config_file_and_dotenv_are_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACCEL_NB_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text(
        '[providers.groq]\nconcurrency = 3\n[aliases]\nfast = "groq:llama-3.1-8b-instant"\n'
    )
    (tmp_path / ".env").write_text("GROQ_API_KEY=gsk_from_dotenv_00000\n")
    for name in ("GROQ_API_KEY",):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert s.providers["groq"].concurrency == 3 and s.aliases["fast"] == "groq:llama-3.1-8b-instant"
    assert [k.source for k in s.providers["groq"].keys] == [".env:GROQ_API_KEY"]
    (tmp_path / "config.toml").write_text("not = [valid")
    with pytest.raises(errors.BadRequestError, match="not valid TOML"):
        load_settings()
