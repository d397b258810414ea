from auth_service.passwords import password_problems


def test_a_good_password_breaks_no_rule() -> None:
    assert password_problems("correct-horse-7", username="alice") == []


def test_each_broken_rule_is_named() -> None:
    assert password_problems("abc") == [
        "must be at least 8 characters long",
        "must contain a digit",
    ]
    assert password_problems("12345678") == ["must contain a letter"]
    assert password_problems("a1" * 65) == ["must be at most 128 characters long"]


def test_the_username_is_not_a_password() -> None:
    assert password_problems("Alice1234", username="alice1234") == ["must not be the username"]
