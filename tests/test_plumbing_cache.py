"""asgi_kit._plumbing.cache: the bounded decision cache."""

from __future__ import annotations

import pytest

from asgi_kit._plumbing.cache import BoundedCache


def test_bounded_and_evicts_the_oldest() -> None:
    cache: BoundedCache[bytes, int] = BoundedCache(3)
    for i in range(10):
        assert cache.put(b"k%d" % i, i) == i
        assert len(cache) <= 3
    assert list(cache) == [b"k7", b"k8", b"k9"]
    assert cache.get(b"k9") == 9 and cache.get(b"k0") is None
    cache.put(b"k9", 99)  # an update never evicts
    assert list(cache) == [b"k7", b"k8", b"k9"] and cache[b"k9"] == 99


def test_long_keys_are_not_remembered() -> None:
    cache: BoundedCache[bytes, bool] = BoundedCache(10, max_key_length=4)
    assert cache.put(b"x" * 5, True) is True
    assert not cache
    cache.put(b"abcd", False)
    assert cache == {b"abcd": False}


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_maxsize_validated(size: object) -> None:
    with pytest.raises(ValueError, match="maxsize"):
        BoundedCache(size)  # type: ignore[arg-type]
