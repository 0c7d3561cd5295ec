"""The redactor: tokens, credentials inside URLs, token-like query parameters, configured passwords."""

from __future__ import annotations

import base64

import pytest

from zoo_tupate.core.redact import redact, strip_url_secrets


@pytest.mark.parametrize(("url", "clean"), [
    ("http://user:pw-12345@127.0.0.1:8080/", "http://127.0.0.1:8080/"),
    ("https://u:p%40ss@hub.example/api/models?x=1&token=abc123&sig=zz", "https://hub.example/api/models?x=1&token=***&sig=***"),
    ("https://user:p@ss@host.example/x", "https://host.example/x"),  # a raw @ inside the password
    ("https://cdn.example/f?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA", "https://cdn.example/f?X-Amz-Signature=***&X-Amz-Credential=***"),
    ("https://huggingface.co/org/name", "https://huggingface.co/org/name"),
])
def test_strip_url_secrets(url: str, clean: str) -> None:
    assert strip_url_secrets(url) == clean


def test_redact_covers_urls_in_free_text_and_configured_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://alice:S3cr%40t-Pass@127.0.0.1:9")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    basic = base64.b64encode(b"alice:S3cr@t-Pass").decode()
    text = (f"GET http://alice:S3cr%40t-Pass@127.0.0.1:9/api/models?access_token=xyz failed; "
            f"echo: Authorization: Basic {basic}; plain S3cr@t-Pass; quoted S3cr%40t-Pass; hf_abcdefghijkl")
    out = redact(text)
    for leaked in ("S3cr", "t-Pass", basic[:-2], "xyz", "hf_abcdefghijkl"):
        assert leaked not in out, out
    assert "http://127.0.0.1:9/api/models?access_token=***" in out
    assert "Authorization: Basic ***" in out


def test_redact_keeps_ordinary_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://a:pw@127.0.0.1:9")  # a 2-letter password is removed from URLs only
    text = "org/sst2@0123abc: repo not found on http://127.0.0.1:9 (pw-protected?) see https://x.example/?page=2"
    assert redact(text) == text
