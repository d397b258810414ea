from datetime import UTC, datetime, timedelta

from auth_service.refresh_rules import StoredRefreshToken, Verdict, judge

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


def test_a_fresh_token_rotates() -> None:
    assert judge(StoredRefreshToken(LATER, None, None), NOW) is Verdict.ROTATE


def test_a_used_token_is_a_reuse() -> None:
    assert judge(StoredRefreshToken(LATER, NOW, None), NOW) is Verdict.REUSED


def test_revocation_wins_over_everything() -> None:
    assert judge(StoredRefreshToken(NOW - timedelta(1), NOW, NOW), NOW) is Verdict.REVOKED


def test_a_token_at_its_expiry_is_expired() -> None:
    assert judge(StoredRefreshToken(NOW, None, None), NOW) is Verdict.EXPIRED


def test_a_used_and_expired_token_still_counts_as_reuse() -> None:
    """Replaying an old stolen token must still revoke its family."""
    assert judge(StoredRefreshToken(NOW - timedelta(1), NOW, None), NOW) is Verdict.REUSED
