//! An invalid CACHES_DSN_n makes every lookup fail with an error that names the variable and
//! never the password. (A separate binary: the environment is read once per process.)

use redis_caches::{RedisCache, connection};

#[test]
fn a_gap_in_the_numbering_is_a_configuration_error() {
    // SAFETY: single test in this binary, run before anything reads the environment.
    unsafe {
        std::env::set_var("CACHES_DSN_1", "redis://:pw-one-secret@127.0.0.1:1/0");
        std::env::set_var("CACHES_DSN_3", "redis://:pw-three-secret@127.0.0.1:1/0");
    }
    let err = connection::get("1").unwrap_err();
    assert!(err.is_config(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("CACHES_DSN_3") && msg.contains("CACHES_DSN_2 is missing"),
        "{msg}"
    );
    assert!(
        !msg.contains("secret") && !format!("{err:?}").contains("secret"),
        "{msg}"
    );

    let err = RedisCache::<u8>::builder("k")
        .connection("1")
        .build()
        .get()
        .unwrap_err();
    assert!(err.is_config(), "{err}");
}
