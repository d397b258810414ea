"""auth_service's service layer through the unit of work in memory: every rule it owns (unique
names and emails, logins that do not tell a wrong password from an unknown user, rehashing,
refresh rotation with reuse detection, logout, service tokens, admins)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Iterator
from datetime import timedelta

import pytest

from auth_service.passwords import PasswordHasher
from auth_service.records import RefreshToken
from auth_service.schemas import NewUser, TokenPair, UserOut
from auth_service.service import SERVICE_NAMESPACE, AuthService
from auth_service.tokens import refresh_token_hash
from shared.events import Role, UserRegistered
from shared.failures import NotFound, Refused, Unauthenticated
from shared.security import Principal, TokenVerifier
from tests.support.fake_auth import (
    ACCESS_TTL,
    AUDIENCE,
    ISSUER,
    REFRESH_TTL,
    Clock,
    MemoryUnitOfWork,
    Stored,
    cheap_hasher,
    memory_service,
)
from tests.support.tokens import TEST_KEYS

PASSWORD = "correct-horse-7"
ALICE = NewUser(username="Alice", email="Alice@Example.com", password=PASSWORD)
CLIENTS = {"order_query": "the-right-secret"}


@pytest.fixture
def hasher() -> Iterator[PasswordHasher]:
    hasher = cheap_hasher()
    yield hasher
    hasher.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(hasher: PasswordHasher, clock: Clock) -> tuple[AuthService, MemoryUnitOfWork]:
    return memory_service(hasher, clock=clock, service_clients=CLIENTS)


@pytest.fixture
def auth(service: tuple[AuthService, MemoryUnitOfWork]) -> AuthService:
    return service[0]


@pytest.fixture
def work(service: tuple[AuthService, MemoryUnitOfWork]) -> MemoryUnitOfWork:
    return service[1]


async def claims(access_token: str) -> Principal:
    return await TokenVerifier(TEST_KEYS, issuer=ISSUER, audience=AUDIENCE).verify(access_token)


def snapshot(work: MemoryUnitOfWork) -> Stored:
    """A copy of what is committed now, to compare with later."""
    return copy.deepcopy(work.stored)


def stored_token(work: MemoryUnitOfWork, refresh_token: str) -> RefreshToken:
    hashed = refresh_token_hash(refresh_token)
    [token] = [t for t in work.stored.tokens.values() if t.token_hash == hashed]
    return token


async def refused(call: Awaitable[object], message: str, reason: str = "invalid_grant") -> None:
    with pytest.raises(Unauthenticated) as raised:
        await call
    assert (raised.value.message, raised.value.reason) == (message, reason)


# register


async def test_register_stores_the_user_with_a_lowercased_email_and_logs_user_registered(
    auth: AuthService, work: MemoryUnitOfWork, hasher: PasswordHasher, clock: Clock
) -> None:
    user = await auth.register(ALICE)
    assert (user.username, user.email, user.role) == ("Alice", "alice@example.com", Role.USER)
    assert user.created_at == clock.now
    stored = work.stored.users[user.id]
    assert stored.user == user
    assert stored.password_hash != PASSWORD and await hasher.verify(stored.password_hash, PASSWORD)
    [envelope] = work.stored.events
    assert (envelope.aggregate_id, envelope.version) == (user.id, 1)
    assert envelope.payload == UserRegistered(
        id=user.id, username="Alice", email="alice@example.com", role=Role.USER
    )


@pytest.mark.parametrize(
    ("username", "email", "field"),
    [
        ("ALICE", "someone.else@example.com", "username"),
        ("bob", "ALICE@example.COM", "email"),
        ("alice", "alice@example.com", "username"),  # both taken: the username is named
    ],
)
async def test_a_taken_username_or_email_whatever_its_case_is_refused_and_writes_nothing(
    auth: AuthService, work: MemoryUnitOfWork, username: str, email: str, field: str
) -> None:
    await auth.register(ALICE)
    before = snapshot(work)
    with pytest.raises(Refused) as raised:
        await auth.register(NewUser(username=username, email=email, password=PASSWORD))
    assert raised.value.message == f"That {field} is taken"
    assert raised.value.details == {"field": field}
    assert work.stored == before  # no user, no event


# login


@pytest.mark.parametrize("identifier", ["Alice", "alice", "ALICE@EXAMPLE.COM", "alice@example.com"])
async def test_login_by_username_or_email_in_any_case_opens_a_new_family(
    auth: AuthService, work: MemoryUnitOfWork, clock: Clock, identifier: str
) -> None:
    user = await auth.register(ALICE)
    pair = await auth.login(identifier, PASSWORD)
    principal = await claims(pair.access_token)
    assert (principal.user_id, principal.role, principal.username) == (user.id, Role.USER, "Alice")
    assert pair.expires_in == int(ACCESS_TTL.total_seconds())
    [token] = work.stored.tokens.values()
    assert token.token_hash == refresh_token_hash(pair.refresh_token)
    assert (token.user_id, token.expires_at) == (user.id, clock.now + REFRESH_TTL)
    assert token.used_at is None and token.revoked_at is None


async def test_each_login_is_a_family_of_its_own(auth: AuthService, work: MemoryUnitOfWork) -> None:
    await auth.register(ALICE)
    await auth.login("alice", PASSWORD)
    await auth.login("alice", PASSWORD)
    assert len({t.family_id for t in work.stored.tokens.values()}) == 2


async def test_a_wrong_password_and_an_unknown_user_are_refused_alike_and_write_nothing(
    auth: AuthService, work: MemoryUnitOfWork
) -> None:
    await auth.register(ALICE)
    before = snapshot(work)
    await refused(auth.login("alice", "wrong-password-1"), "Wrong username or password")
    await refused(auth.login("nobody", PASSWORD), "Wrong username or password")
    assert work.stored.tokens == before.tokens == {}
    assert work.stored.users == before.users


async def test_a_hash_of_weaker_parameters_is_replaced_at_login(
    auth: AuthService, work: MemoryUnitOfWork, clock: Clock
) -> None:
    await auth.register(ALICE)
    old_hash = work.user_named("Alice").password_hash
    stronger = cheap_hasher(time_cost=2)
    try:
        upgraded, _ = memory_service(stronger, work, clock=clock)
        await upgraded.login("alice", PASSWORD)
        new_hash = work.user_named("Alice").password_hash
        assert new_hash != old_hash and not stronger.needs_rehash(new_hash)
        assert await stronger.verify(new_hash, PASSWORD)
        await upgraded.login("alice", PASSWORD)  # now current: left as it is
        assert work.user_named("Alice").password_hash == new_hash
    finally:
        stronger.close()


async def test_a_current_hash_is_not_rehashed(auth: AuthService, work: MemoryUnitOfWork) -> None:
    await auth.register(ALICE)
    first = work.user_named("Alice").password_hash
    await auth.login("alice", PASSWORD)
    assert work.user_named("Alice").password_hash == first


# refresh


async def logged_in(auth: AuthService) -> tuple[UserOut, TokenPair]:
    user = await auth.register(ALICE)
    return user, await auth.login("alice", PASSWORD)


async def test_refresh_spends_the_token_and_hands_out_a_successor_in_its_family(
    auth: AuthService, work: MemoryUnitOfWork, clock: Clock
) -> None:
    user, pair = await logged_in(auth)
    [first] = work.stored.tokens.values()
    clock.advance(timedelta(hours=1))
    rotated = await auth.refresh(pair.refresh_token)
    assert rotated.refresh_token != pair.refresh_token
    principal = await claims(rotated.access_token)
    assert (principal.user_id, principal.role, principal.username) == (user.id, Role.USER, "Alice")
    spent = work.stored.tokens[first.id]
    assert spent.used_at == clock.now and spent.revoked_at is None
    [successor] = [t for t in work.family(first.family_id) if t.id != first.id]
    assert successor.token_hash == refresh_token_hash(rotated.refresh_token)
    assert successor.expires_at == clock.now + REFRESH_TTL  # a full lifetime from now


async def test_a_reused_refresh_token_revokes_its_whole_family_though_the_call_is_refused(
    auth: AuthService, work: MemoryUnitOfWork
) -> None:
    _, pair = await logged_in(auth)
    other = await auth.login("alice", PASSWORD)  # another session: its own family
    successor = await auth.refresh(pair.refresh_token)
    await refused(
        auth.refresh(pair.refresh_token),
        "This refresh token was used before; its session is now revoked",
    )
    family = work.family(stored_token(work, pair.refresh_token).family_id)
    assert len(family) == 2 and all(t.revoked_at is not None for t in family)
    await refused(auth.refresh(successor.refresh_token), "This refresh token has been revoked")
    assert (await auth.refresh(other.refresh_token)).refresh_token


async def test_an_expired_refresh_token_is_refused_and_writes_nothing(
    auth: AuthService, work: MemoryUnitOfWork, clock: Clock
) -> None:
    _, pair = await logged_in(auth)
    clock.advance(REFRESH_TTL)  # a token at its expiry is expired
    before = snapshot(work)
    await refused(auth.refresh(pair.refresh_token), "This refresh token has expired")
    assert work.stored.tokens == before.tokens


async def test_an_unknown_refresh_token_is_refused(auth: AuthService) -> None:
    await refused(auth.refresh("never-issued"), "Unknown refresh token")


# logout


async def test_logout_revokes_the_family_of_the_token_and_no_other(
    auth: AuthService, work: MemoryUnitOfWork, clock: Clock
) -> None:
    _, pair = await logged_in(auth)
    other = await auth.login("alice", PASSWORD)
    successor = await auth.refresh(pair.refresh_token)
    clock.advance(timedelta(minutes=5))
    await auth.logout(successor.refresh_token)
    family = work.family(stored_token(work, pair.refresh_token).family_id)
    assert [t.revoked_at for t in family] == [clock.now, clock.now]
    await refused(auth.refresh(successor.refresh_token), "This refresh token has been revoked")
    await refused(auth.refresh(pair.refresh_token), "This refresh token has been revoked")
    assert (await auth.refresh(other.refresh_token)).refresh_token


async def test_logout_keeps_the_first_revocation_time(
    auth: AuthService, work: MemoryUnitOfWork, clock: Clock
) -> None:
    _, pair = await logged_in(auth)
    await auth.logout(pair.refresh_token)
    first = clock.now
    clock.advance(timedelta(minutes=5))
    await auth.logout(pair.refresh_token)
    assert stored_token(work, pair.refresh_token).revoked_at == first


async def test_logout_with_an_unknown_token_is_no_error_and_revokes_nothing(
    auth: AuthService, work: MemoryUnitOfWork
) -> None:
    _, pair = await logged_in(auth)
    await auth.logout("never-issued")
    assert all(t.revoked_at is None for t in work.stored.tokens.values())
    assert (await auth.refresh(pair.refresh_token)).refresh_token


# service tokens


async def test_a_known_client_with_its_secret_gets_a_service_token_naming_it_by_a_stable_id(
    auth: AuthService,
) -> None:
    token = auth.service_token("order_query", "the-right-secret")
    assert token.expires_in == int(ACCESS_TTL.total_seconds())
    first = await claims(token.access_token)
    again = await claims(auth.service_token("order_query", "the-right-secret").access_token)
    assert first.role is Role.SERVICE
    assert first.user_id == again.user_id == uuid.uuid5(SERVICE_NAMESPACE, "order_query")


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("order_query", "a-wrong-secret"), ("order_query", ""), ("nobody", "the-right-secret")],
)
def test_a_wrong_secret_or_an_unknown_client_is_refused(
    auth: AuthService, client_id: str, secret: str
) -> None:
    with pytest.raises(Unauthenticated) as raised:
        auth.service_token(client_id, secret)
    assert raised.value.message == "Unknown client or wrong secret"
    assert raised.value.reason == "invalid_client"


# user


async def test_user_answers_the_user_as_registered(auth: AuthService) -> None:
    user = await auth.register(ALICE)
    assert await auth.user(user.id) == user


async def test_user_of_an_unknown_id_is_not_found(auth: AuthService) -> None:
    with pytest.raises(NotFound):
        await auth.user(uuid.uuid4())


# make_admin


async def test_make_admin_creates_an_admin_and_logs_user_registered(
    auth: AuthService, work: MemoryUnitOfWork
) -> None:
    admin, created = await auth.make_admin(ALICE)
    assert created and admin.role is Role.ADMIN and admin.email == "alice@example.com"
    [envelope] = work.stored.events
    assert envelope.payload == UserRegistered(
        id=admin.id, username="Alice", email="alice@example.com", role=Role.ADMIN
    )
    principal = await claims((await auth.login("alice", PASSWORD)).access_token)
    assert principal.role is Role.ADMIN


async def test_make_admin_promotes_the_user_of_that_name_and_sets_their_password(
    auth: AuthService, work: MemoryUnitOfWork
) -> None:
    user = await auth.register(ALICE)
    events = list(work.stored.events)
    again = NewUser(username="ALICE", email="another@example.com", password="new-password-8")
    admin, created = await auth.make_admin(again)
    assert not created
    assert admin == user.model_copy(update={"role": Role.ADMIN})  # their email stays theirs
    assert work.stored.events == events  # a promotion is no registration
    await refused(auth.login("alice", PASSWORD), "Wrong username or password")
    principal = await claims((await auth.login("alice", "new-password-8")).access_token)
    assert (principal.user_id, principal.role) == (user.id, Role.ADMIN)


async def test_make_admin_with_a_new_name_but_a_taken_email_is_refused_and_changes_nothing(
    auth: AuthService, work: MemoryUnitOfWork
) -> None:
    await auth.register(ALICE)
    before = snapshot(work)
    with pytest.raises(Refused) as raised:
        await auth.make_admin(NewUser(username="bob", email=ALICE.email, password=PASSWORD))
    assert raised.value.details == {"field": "email"}
    assert work.stored == before


# the unit of work in memory


async def test_a_unit_of_work_that_raises_leaves_nothing_behind(
    work: MemoryUnitOfWork, clock: Clock
) -> None:
    """What the service's refusals lean on: the fake rolls back as Postgres does."""
    carol = UserOut(
        id=uuid.uuid4(),
        username="carol",
        email="carol@example.com",
        role=Role.USER,
        created_at=clock.now,
    )
    with pytest.raises(RuntimeError):
        async with work() as unit:
            await unit.users.add(carol, "a-hash")
            raise RuntimeError("mid-way")
    assert work.stored == Stored() and work.commits == 0
