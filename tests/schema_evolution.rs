//! A type that evolves between two builds, simulated by two modules of one test binary: what
//! a new build reads from values an old build stored, as the table "When a type changes" in
//! the `codec` docs says. A renamed or moved type with the same shape reads its data; any
//! change of shape (reordered fields, reordered variants, an added field) or of schema
//! version is `Error::Decode` naming the key and both fingerprints for plain collections, and
//! a miss that is recomputed and written over for caches (`Memo`, a region's computed values
//! and its memos). Values written by redis-caches 0.1 (stored-data format v1) likewise.

mod support;

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use redis_caches::codec::{Codec, CodecErrorKind, Postcard, TypeTag};
use redis_caches::region::Reclaim;
use std::time::Duration;

use redis_caches::{Connection, DictCache, Error, Memo, RedisCache, Region};
use serde::Serialize;
use serde::de::DeserializeOwned;
use support::redis_helpers::{raw_get, raw_set};
use support::{RedisServer, unique};

/// The type as the old build had it.
mod v1 {
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub enum Role {
        User,
        Admin,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Account {
        pub balance_cents: i64,
        pub owner_id: u64,
        pub role: Role,
    }
}

/// Fields reordered: postcard would read the old balance as the owner and back.
mod reordered_fields {
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Account {
        pub owner_id: u64,
        pub balance_cents: i64,
        pub role: super::v1::Role,
    }
}

/// Variants reordered: postcard would read an old `User` as an `Admin`.
mod reordered_variants {
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub enum Role {
        Admin,
        User,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Account {
        pub balance_cents: i64,
        pub owner_id: u64,
        pub role: Role,
    }
}

/// A field added (with a serde default, which postcard cannot use: it has no field names).
mod added_field {
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Account {
        pub balance_cents: i64,
        pub owner_id: u64,
        pub role: super::v1::Role,
        #[serde(default)]
        pub email: Option<String>,
    }
}

/// Renamed and moved, with the same shape: reads the old data.
mod billing {
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub enum Kind {
        User,
        Admin,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Ledger {
        pub balance_cents: i64,
        pub owner_id: u64,
        pub role: Kind,
    }
}

fn old_account() -> v1::Account {
    v1::Account {
        balance_cents: 1234,
        owner_id: 42,
        role: v1::Role::User,
    }
}

fn region(conn: &Connection, root: &str) -> Region {
    Region::builder("accounts")
        .root(root)
        .connection(conn)
        .reclaim(Reclaim::Manual)
        .build()
}

/// `err` is `Error::Decode` at `key`, for bytes of `Old` read as `New`.
fn assert_other_shape<Old, New>(err: Error, key: &str)
where
    Old: DeserializeOwned,
    New: DeserializeOwned,
{
    match err {
        Error::Decode { key: k, source } => {
            assert_eq!(k, key);
            assert_eq!(
                source.kind(),
                CodecErrorKind::OtherShape {
                    expected: TypeTag::of::<New>().fingerprint(),
                    found: TypeTag::of::<Old>().fingerprint(),
                }
            );
            let msg = source.to_string();
            let found = format!("{:#010x}", TypeTag::of::<Old>().fingerprint());
            let expected = format!("{:#010x}", TypeTag::of::<New>().fingerprint());
            assert!(msg.contains(&found) && msg.contains(&expected), "{msg}");
        }
        other => panic!("expected a decode error at {key}, got {other:?}"),
    }
}

/// What the new build reads through each plain collection, after the old build wrote an
/// account: a decode error naming the key and both fingerprints; nothing is overwritten.
fn plain_collections_refuse<New>(server: &RedisServer)
where
    New: Serialize + DeserializeOwned + Debug + 'static,
{
    let conn = server.connection();
    let key = unique("acct");
    let old: RedisCache<v1::Account> = RedisCache::builder(key.as_str()).connection(&conn).build();
    old.set(&old_account()).unwrap();
    let new: RedisCache<New> = RedisCache::builder(key.as_str()).connection(&conn).build();
    assert_other_shape::<v1::Account, New>(new.get().unwrap_err(), &key);
    assert_eq!(old.get().unwrap(), Some(old_account()), "left as it was");

    let key = unique("accounts");
    let old: DictCache<String, v1::Account> =
        DictCache::builder(key.as_str()).connection(&conn).build();
    old.insert("ada", &old_account()).unwrap();
    let new: DictCache<String, New> = DictCache::builder(key.as_str()).connection(&conn).build();
    assert_other_shape::<v1::Account, New>(new.get("ada").unwrap_err(), &format!("{key}[\"ada\"]"));
    let from_iter: Vec<_> = new.iter().collect();
    assert_eq!(from_iter.len(), 1);
    assert!(from_iter[0].as_ref().unwrap_err().is_decode());

    let r = region(&conn, &unique("root"));
    r.set("ada", &old_account()).unwrap();
    let err = r.get::<New>("ada").unwrap_err();
    assert!(matches!(
        &err,
        Error::Decode { source, .. } if matches!(source.kind(), CodecErrorKind::OtherShape { .. })
    ));
    assert!(err.to_string().contains("[ada]"), "{err}");
}

/// What the new build gets from each cache, after the old build cached an account: a miss,
/// the function's new result, written over the old one (read back by the next call without
/// computing).
fn caches_recompute<New>(server: &RedisServer, new_value: New)
where
    New: Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static,
{
    let conn = server.connection();
    let name = unique("acct");
    let old = Memo::builder(name.as_str(), |_: u64| old_account())
        .connection(&conn)
        .build();
    assert_eq!(old.call(42).unwrap(), old_account());
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, v) = (calls.clone(), new_value.clone());
    let new = Memo::builder(name.as_str(), move |_: u64| {
        c.fetch_add(1, Ordering::SeqCst);
        v.clone()
    })
    .connection(&conn)
    .build();
    assert_eq!(new.call(42).unwrap(), new_value, "a miss, computed");
    assert_eq!(new.call(42).unwrap(), new_value, "then a hit");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "computed once, written over"
    );
    // The statistics are the function's, shared by both builds: the old build's call was a
    // miss and a computation; the new build's first call is another (not a hit), its second
    // a hit.
    let stats = new.stats().unwrap();
    assert_eq!(
        (stats.misses, stats.hits, stats.refreshes),
        (2, 1, 2),
        "another build's value counts as a miss, not a hit: {stats:?}"
    );
    assert_eq!(new.peek(42).unwrap(), Some(new_value.clone()));
    // And the old build now sees the new build's value as another shape: a miss for it too.
    assert_eq!(old.peek(42).unwrap(), None);

    let r = region(&conn, &unique("root"));
    assert_eq!(
        r.get_or_insert_with("ada", old_account).unwrap(),
        old_account()
    );
    let v = new_value.clone();
    assert_eq!(r.get_or_insert_with("ada", || v).unwrap(), new_value);
    assert_eq!(
        r.get::<New>("ada").unwrap(),
        Some(new_value.clone()),
        "written over"
    );

    // A memo in the region.
    let old = r.memo(name.as_str(), |_: u64| old_account()).build();
    assert_eq!(old.call(7).unwrap(), old_account());
    let (c, v) = (calls.clone(), new_value.clone());
    let new = r
        .memo(name.as_str(), move |_: u64| {
            c.fetch_add(1, Ordering::SeqCst);
            v.clone()
        })
        .build();
    assert_eq!(new.call(7).unwrap(), new_value);
    assert_eq!(new.call(7).unwrap(), new_value);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "computed once in the region"
    );
}

#[test]
fn reordered_fields_are_another_shape() {
    let server = RedisServer::start();
    plain_collections_refuse::<reordered_fields::Account>(&server);
    caches_recompute(
        &server,
        reordered_fields::Account {
            owner_id: 42,
            balance_cents: 1234,
            role: v1::Role::User,
        },
    );
}

#[test]
fn reordered_variants_are_another_shape() {
    let server = RedisServer::start();
    plain_collections_refuse::<reordered_variants::Account>(&server);
    caches_recompute(
        &server,
        reordered_variants::Account {
            balance_cents: 1234,
            owner_id: 42,
            role: reordered_variants::Role::User,
        },
    );
}

#[test]
fn an_added_field_is_another_shape() {
    let server = RedisServer::start();
    plain_collections_refuse::<added_field::Account>(&server);
    caches_recompute(
        &server,
        added_field::Account {
            balance_cents: 1234,
            owner_id: 42,
            role: v1::Role::User,
            email: Some("ada@example.com".into()),
        },
    );
}

/// A stale read of another build's value, while another caller holds the refresh lock, is
/// recomputed by the caller too: a miss in the statistics, not a stale hit.
#[test]
fn another_builds_value_read_stale_counts_as_a_miss() {
    let server = RedisServer::start();
    let conn = server.connection();
    let name = unique("stale");
    let ttl = Duration::from_secs(60);
    let old = Memo::builder(name.as_str(), |_: u64| old_account())
        .connection(&conn)
        .ttl(ttl)
        .build();
    old.call(42).unwrap();
    // Another caller holds the refresh lock, so this read does not take it.
    let mut raw = server.raw();
    let values: Vec<String> = redis::Commands::scan_match(&mut raw, format!("{{memo:{name}}}.v.*"))
        .unwrap()
        .collect::<redis::RedisResult<_>>()
        .unwrap();
    assert_eq!(values.len(), 1, "{values:?}");
    redis::cmd("SET")
        .arg(values[0].replacen(".v.", ".lock.", 1))
        .arg("another caller")
        .arg("PX")
        .arg(60_000)
        .exec(&mut raw)
        .unwrap();
    let new_value = added_field::Account {
        balance_cents: 1,
        owner_id: 2,
        role: v1::Role::Admin,
        email: None,
    };
    let v = new_value.clone();
    let new = Memo::builder(name.as_str(), move |_: u64| v.clone())
        .connection(&conn)
        .ttl(ttl)
        .refresh(Duration::from_millis(1))
        .build();
    std::thread::sleep(Duration::from_millis(5)); // stale for the new build
    assert_eq!(new.call(42).unwrap(), new_value);
    // Shared with the old build, whose call was the first miss.
    let stats = new.stats().unwrap();
    assert_eq!(
        (stats.misses, stats.stale_hits, stats.hits),
        (2, 0, 0),
        "{stats:?}"
    );
}

/// The common stale case: the read takes the refresh lock, finds another build's value, and
/// the caller computes and stores under the lock: a miss too, not a stale hit.
#[test]
fn another_builds_value_read_stale_with_the_lock_counts_as_a_miss() {
    let server = RedisServer::start();
    let conn = server.connection();
    let name = unique("stale-lock");
    let (ttl, refresh) = (Duration::from_secs(60), Duration::from_millis(50));
    let old = Memo::builder(name.as_str(), |x: u8| x.to_string())
        .connection(&conn)
        .ttl(ttl)
        .refresh(refresh)
        .build();
    old.call(1).unwrap();
    let new = Memo::builder(name.as_str(), |x: u8| u64::from(x) * 10)
        .connection(&conn)
        .ttl(ttl)
        .refresh(refresh)
        .build();
    std::thread::sleep(Duration::from_millis(150)); // stale
    assert_eq!(new.call(1).unwrap(), 10);
    let stats = new.stats().unwrap();
    assert_eq!(
        (stats.misses, stats.stale_hits, stats.refreshes),
        (2, 0, 2),
        "shared with the old build's first miss: {stats:?}"
    );
}

/// A call that found another build's value and whose function then failed, or whose result
/// `cache_if` turned down, is a miss too (with a failure, like any miss whose computation
/// fails), not a hit.
#[test]
fn another_builds_value_then_a_failure_or_a_refusal_counts_as_a_miss() {
    let server = RedisServer::start();
    let conn = server.connection();
    let name = unique("fails");
    let old = Memo::builder(name.as_str(), |x: u8| x.to_string())
        .connection(&conn)
        .build();
    old.call(1).unwrap();
    old.call(2).unwrap();
    let failing = Memo::try_builder(name.as_str(), |_: u8| -> Result<u64, Error> {
        Err(Error::InvalidKey {
            reason: "the backend is down".into(),
        })
    })
    .connection(&conn)
    .build();
    assert!(failing.call(1).is_err());
    let stats = failing.stats().unwrap();
    assert_eq!(
        (stats.misses, stats.hits, stats.failures),
        (3, 0, 1),
        "two misses of the old build, then this one: {stats:?}"
    );
    let refused = Memo::builder(name.as_str(), |x: u8| u64::from(x))
        .connection(&conn)
        .cache_if(|_| false)
        .build();
    assert_eq!(refused.call(2).unwrap(), 2);
    let stats = refused.stats().unwrap();
    assert_eq!((stats.misses, stats.hits), (4, 0), "{stats:?}");
}

#[test]
fn a_renamed_type_with_the_same_shape_reads_its_data() {
    let server = RedisServer::start();
    let conn = server.connection();
    let ledger = billing::Ledger {
        balance_cents: 1234,
        owner_id: 42,
        role: billing::Kind::User,
    };
    let old: RedisCache<v1::Account> = RedisCache::builder("acct").connection(&conn).build();
    old.set(&old_account()).unwrap();
    let new: RedisCache<billing::Ledger> = RedisCache::builder("acct").connection(&conn).build();
    assert_eq!(new.get().unwrap(), Some(ledger.clone()));

    let old: DictCache<String, v1::Account> =
        DictCache::builder("accounts").connection(&conn).build();
    old.insert("ada", &old_account()).unwrap();
    let new: DictCache<String, billing::Ledger> =
        DictCache::builder("accounts").connection(&conn).build();
    assert_eq!(new.get("ada").unwrap(), Some(ledger.clone()));

    let calls = Arc::new(AtomicUsize::new(0));
    let old = Memo::builder("acct", |_: u64| old_account())
        .connection(&conn)
        .build();
    old.call(42).unwrap();
    let c = calls.clone();
    let new = Memo::builder("acct", move |_: u64| {
        c.fetch_add(1, Ordering::SeqCst);
        billing::Ledger {
            balance_cents: 0,
            owner_id: 0,
            role: billing::Kind::Admin,
        }
    })
    .connection(&conn)
    .build();
    assert_eq!(
        new.call(42).unwrap(),
        ledger,
        "a hit on the old build's value"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let r = region(&conn, "renamed");
    r.set("ada", &old_account()).unwrap();
    assert_eq!(
        r.get::<billing::Ledger>("ada").unwrap(),
        Some(ledger.clone())
    );
    assert_eq!(
        r.get_or_insert_with("ada", || unreachable!("a hit"))
            .map(|l: billing::Ledger| l)
            .unwrap(),
        ledger
    );
}

/// A schema version bumped on the builder: the same shape, another fingerprint.
#[test]
fn a_bumped_schema_version_is_another_shape() {
    let server = RedisServer::start();
    let conn = server.connection();
    let old: RedisCache<u64> = RedisCache::builder("price")
        .connection(&conn)
        .schema_version(1)
        .build();
    old.set(&1234).unwrap();
    let new: RedisCache<u64> = RedisCache::builder("price")
        .connection(&conn)
        .schema_version(2)
        .build();
    let err = new.get().unwrap_err();
    let (expected, found) = (
        TypeTag::of::<u64>().with_schema_version(2).fingerprint(),
        TypeTag::of::<u64>().with_schema_version(1).fingerprint(),
    );
    assert!(
        matches!(&err, Error::Decode { key, source } if key == "price"
            && source.kind() == CodecErrorKind::OtherShape { expected, found }),
        "{err:?}"
    );
    // The version is in the stored header.
    let stored = raw_get(&server, "price").unwrap();
    assert_eq!(stored[2..6], found.to_be_bytes());

    // Dict values, and fields stored in the codec's encoding, carry the version; plain-text
    // fields do not.
    let old: DictCache<(u8, u8), u64> = DictCache::builder("prices")
        .connection(&conn)
        .schema_version(1)
        .build();
    old.insert(&(1, 2), &5).unwrap();
    let new: DictCache<(u8, u8), u64> = DictCache::builder("prices")
        .connection(&conn)
        .schema_version(2)
        .build();
    assert_eq!(new.get(&(1, 2)).unwrap(), None, "another field");
    assert!(new.keys().next().unwrap().unwrap_err().is_decode());
    let by_name: DictCache<String, u64> = DictCache::builder("by_name")
        .connection(&conn)
        .schema_version(2)
        .build();
    by_name.insert("ada", &5).unwrap();
    let fields: Vec<Vec<u8>> = redis::cmd("HKEYS")
        .arg("by_name")
        .query(&mut server.raw())
        .unwrap();
    assert_eq!(fields, [b"ada".to_vec()]);

    // A region's values: an error for `get`, a miss for `get_or_insert_with`.
    let versioned = |v: u32| -> Region {
        Region::builder("prices")
            .root("versioned")
            .connection(&conn)
            .reclaim(Reclaim::Manual)
            .schema_version(v)
            .build()
    };
    versioned(1).set("ada", &5u64).unwrap();
    let err = versioned(2).get::<u64>("ada").unwrap_err();
    assert!(
        matches!(&err, Error::Decode { source, .. } if source.kind() == CodecErrorKind::OtherShape {
            expected: TypeTag::of::<u64>().with_schema_version(2).fingerprint(),
            found: TypeTag::of::<u64>().with_schema_version(1).fingerprint(),
        }),
        "{err:?}"
    );
    assert_eq!(versioned(2).get_or_insert_with("ada", || 6u64).unwrap(), 6);
    assert_eq!(versioned(2).get::<u64>("ada").unwrap(), Some(6));

    // A memo: a miss, recomputed and written over.
    let calls = Arc::new(AtomicUsize::new(0));
    let old = Memo::builder("price", |id: u64| id * 100)
        .connection(&conn)
        .schema_version(1)
        .build();
    assert_eq!(old.call(7).unwrap(), 700);
    let c = calls.clone();
    let new = Memo::builder("price", move |id: u64| {
        c.fetch_add(1, Ordering::SeqCst);
        id * 100_000
    })
    .connection(&conn)
    .schema_version(2)
    .build();
    assert_eq!(new.call(7).unwrap(), 700_000);
    assert_eq!(new.call(7).unwrap(), 700_000);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Values written by redis-caches 0.1: the v1 header (version byte 1) and a fingerprint of
/// the type's name. Never read as v2: a typed error for collections, a miss for caches.
#[test]
fn format_v1_values_are_errors_for_collections_and_misses_for_caches() {
    let server = RedisServer::start();
    let conn = server.connection();
    let v1_u32: [u8; 7] = [0xCA, 0x01, 0xB1, 0x74, 0xF3, 0x05, 7];
    let old_format = |e: &Error| {
        matches!(e, Error::Decode { source, .. }
            if source.kind() == CodecErrorKind::OldFormat { version: 1 }
            && source.to_string().contains("written by stored-data format v1 (redis-caches 0.1)"))
    };

    raw_set(&server, "count", &v1_u32);
    let c: RedisCache<u32> = RedisCache::builder("count").connection(&conn).build();
    let err = c.get().unwrap_err();
    assert!(old_format(&err), "{err:?}");
    assert!(err.to_string().contains("count"), "{err}");

    let r = region(&conn, "v1");
    r.set("n", &1u32).unwrap(); // creates the region's hash
    let key = r.key().unwrap().unwrap();
    redis::cmd("HSET")
        .arg(&key)
        .arg("n")
        .arg(&v1_u32[..])
        .exec(&mut server.raw())
        .unwrap();
    assert!(old_format(&r.get::<u32>("n").unwrap_err()));
    assert_eq!(r.get_or_insert_with("n", || 8u32).unwrap(), 8, "a miss");
    assert_eq!(r.get::<u32>("n").unwrap(), Some(8), "written over");

    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let m = Memo::builder("count", move |x: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        x * 2
    })
    .connection(&conn)
    .build();
    assert_eq!(m.call(4).unwrap(), 8);
    let stored = keys_like(&server, "{memo:count}.v*");
    assert_eq!(stored.len(), 1, "{stored:?}");
    raw_set(&server, &stored[0], &v1_u32);
    assert_eq!(m.peek(4).unwrap(), None, "a miss for peek");
    assert_eq!(m.call(4).unwrap(), 8);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "computed again");
    assert_eq!(
        raw_get(&server, &stored[0]),
        Some(Postcard.encode(&8u32, &TypeTag::of::<u32>()).unwrap()),
        "written over in format v2"
    );
}

fn keys_like(server: &RedisServer, pattern: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut server.raw())
        .unwrap()
}

/// A collection marked as a cache (`OtherShape::Miss`) reads values of another shape as
/// missing, in every read of values, and writes over them; unmarked, the same values are
/// `Error::Decode`; damaged bytes stay an error either way.
#[test]
fn collections_marked_other_shape_miss_read_other_shapes_as_missing() {
    use redis_caches::OtherShape;
    use reordered_fields::Account as New;
    let server = RedisServer::start();
    let conn = Connection::open(&unique("miss"), &server.url()).unwrap();
    let old = old_account();
    let new = New {
        owner_id: 7,
        balance_cents: 70,
        role: v1::Role::Admin,
    };

    // RedisCache: get, get_many, get_or_insert_with.
    let writer: RedisCache<v1::Account> = RedisCache::builder("acct").connection(&conn).build();
    writer.set(&old).unwrap();
    let strict: RedisCache<New> = RedisCache::builder("acct").connection(&conn).build();
    assert_other_shape::<v1::Account, New>(strict.get().unwrap_err(), "acct");
    let cache: RedisCache<New> = RedisCache::builder("acct")
        .connection(&conn)
        .other_shape(OtherShape::Miss)
        .build();
    assert_eq!(cache.get().unwrap(), None);
    assert_eq!(RedisCache::get_many([&cache]).unwrap(), [None]);
    assert_eq!(cache.get_or_insert_with(|| new.clone()).unwrap(), new);
    assert_eq!(strict.get().unwrap(), Some(new.clone()), "written over");
    raw_set(&server, "acct", b"\x00garbage");
    assert!(
        cache.get().unwrap_err().is_decode(),
        "damaged bytes stay an error"
    );

    // DictCache: get, get_many, iteration, snapshot, old values, pop, get_or_insert_with.
    let writer: DictCache<String, v1::Account> =
        DictCache::builder("accts").connection(&conn).build();
    writer.set("a", &old).unwrap();
    writer.set("b", &old).unwrap();
    let strict: DictCache<String, New> = DictCache::builder("accts").connection(&conn).build();
    strict.set("c", &new).unwrap();
    assert!(strict.get("a").unwrap_err().is_decode());
    assert!(strict.iter().any(|e| e.is_err()));
    let cache: DictCache<String, New> = DictCache::builder("accts")
        .connection(&conn)
        .other_shape(OtherShape::Miss)
        .build();
    assert_eq!(cache.get("a").unwrap(), None);
    assert_eq!(
        cache.get_many(["a", "c"]).unwrap(),
        [None, Some(new.clone())]
    );
    let entries: Vec<_> = cache.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(entries, [("c".to_string(), new.clone())]);
    let values: Vec<_> = cache.values().collect::<Result<_, _>>().unwrap();
    assert_eq!(values, std::slice::from_ref(&new));
    assert_eq!(
        cache.keys().count(),
        3,
        "keys are not values: every field is listed"
    );
    assert_eq!(cache.to_hash_map().unwrap().len(), 1);
    assert_eq!(cache.get_or_insert_with("a", || new.clone()).unwrap(), new);
    assert_eq!(strict.get("a").unwrap(), Some(new.clone()), "written over");
    assert_eq!(
        cache.insert("b", &new).unwrap(),
        None,
        "the old value is missing"
    );
    writer.set("d", &old).unwrap();
    strict.remove("a").unwrap();
    strict.remove("b").unwrap();
    strict.remove("c").unwrap();
    assert_eq!(
        cache.pop_item().unwrap(),
        None,
        "the old entry popped and left out"
    );
    assert_eq!(strict.len().unwrap(), 0);

    // Region: get, iteration, old values.
    let r_old = region(&conn, "miss-tree");
    r_old.set("x", &old).unwrap();
    r_old.set("y", &old).unwrap();
    assert_other_shape::<v1::Account, New>(
        r_old.get::<New>("x").unwrap_err(),
        "{miss-tree}.accounts[x]",
    );
    let r = Region::builder("accounts")
        .root("miss-tree")
        .connection(&conn)
        .reclaim(Reclaim::Manual)
        .other_shape(OtherShape::Miss)
        .build();
    assert_eq!(r.get::<New>("x").unwrap(), None);
    assert_eq!(r.insert("x", &new).unwrap(), None);
    let entries: Vec<(String, New)> = r.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(entries, [("x".to_string(), new.clone())], "y is left out");
    assert_eq!(r.remove::<New>("y").unwrap(), None);
}
