//! A `CACHES_DSN` whose option is out of range (`pool_timeout=0`, on which r2d2 panics) is a
//! configuration error at every lookup: it never panics and never poisons the registry. (A
//! separate binary: the environment is read once per process.)

use redis_caches::{RedisCache, connection};

#[test]
fn an_out_of_range_option_is_an_error_at_every_lookup() {
    // SAFETY: single test in this binary, run before anything reads the environment.
    unsafe {
        std::env::set_var(
            "CACHES_DSN",
            "redis://:pw-range-secret@127.0.0.1:1/0?pool_timeout=0",
        );
        std::env::set_var("CACHES_DSN_1", "redis://127.0.0.1:1/0#fine");
    }
    for _ in 0..2 {
        let err = connection::get("default").unwrap_err();
        assert!(err.is_config(), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("CACHES_DSN") && msg.contains("option \"pool_timeout\""),
            "{msg}"
        );
        assert!(
            !msg.contains("secret") && !format!("{err:?}").contains("secret"),
            "{msg}"
        );
        // A connection that is fine is not served from a half-read environment.
        assert!(connection::get("fine").unwrap_err().is_config());
    }
    let err = RedisCache::<u8>::new("k").get().unwrap_err();
    assert!(err.is_config(), "{err}");
    // A registration that itself is out of range is refused the same way, not a panic.
    let err = connection::register("late", "redis://h?pool_size=4294967295").unwrap_err();
    assert!(err.to_string().contains("option \"pool_size\""), "{err}");
    assert!(connection::names().is_empty());
}
