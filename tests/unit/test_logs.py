import json
import logging

from shared.logs import JsonFormatter, scrub

JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


def _format(msg: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    line = JsonFormatter("svc").format(record)
    result: dict[str, object] = json.loads(line)
    return result


def test_a_log_line_is_one_json_object_with_the_service() -> None:
    entry = _format("hello %s", "world")
    assert entry["msg"] == "hello world"
    assert entry["service"] == "svc"
    assert entry["level"] == "INFO"


def test_secrets_in_messages_are_scrubbed() -> None:
    for text, secret in [
        (f"token {JWT}", JWT),
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        ("login password=hunter2&x=1", "hunter2"),
        ('{"refresh_token": "r3fr3sh"}', "r3fr3sh"),
        ("amqp://orders:s3cret@rabbit:5672/", "s3cret"),
        ("-----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY-----", "MC4CAQ"),
    ]:
        assert secret not in scrub(text), text


def test_secret_fields_passed_as_extra_are_redacted() -> None:
    entry = _format("signed up", password="hunter2", username="alice")
    assert entry["password"] == "[redacted]"
    assert entry["username"] == "alice"
