"""The Redis cache keeps one client per connection pool and still stores and reads values."""

from django.core.cache import caches

from mailsite.cache import RedisCache
from tests.conftest import requires_redis


@requires_redis
def test_the_redis_cache_reuses_its_client_and_works(settings):
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    assert cache._cache.get_client() is cache._cache.get_client()
    assert cache._cache.get_client(write=True) is cache._cache.get_client(write=True)
    cache.set("mailsite-test-cache-key", {"a": 1}, 30)
    assert cache.get("mailsite-test-cache-key") == {"a": 1}
    cache.delete("mailsite-test-cache-key")
    assert cache.get("mailsite-test-cache-key") is None
