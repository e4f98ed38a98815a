//! Sharing data with the Python libraries this crate replaces, against a real server: Python
//! (`caches` 3.0.0, `pottery` 3.0.1, `region-cache` 0.3.8, run by `tests/python/interop.py`)
//! writes and Rust reads, and the other way round.
//!
//! The tests here cover what the codecs alone share (the `Raw` codec and a `caches` prefix,
//! the `Json` codec for `pottery`, the `Pickle` codec for pickled values); those in
//! `python_interop/layouts.rs` what the compatibility layouts (`Layout::PythonCaches`,
//! `Layout::Pottery`, `Layout::PythonRegionCache`) and the `PythonText` and `PythonJson`
//! codecs add. The differences they pin are listed in `docs/python-formats.md`.
//!
//! They need the Python libraries in a virtual environment, `./.venv` (or
//! `$PYTHON_INTEROP_VENV`): when it is missing, the first test creates it with
//! `bash scripts/python-venv.sh` (Python 3.10+ and PyPI needed), so `cargo test` alone sets
//! everything up; if that fails, the tests fail, naming the command.

mod support;

#[path = "python_interop/layouts.rs"]
mod layouts;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;

use redis_caches::codec::Raw;
use redis_caches::{Connection, DictCache, RedisCache, SentinelCache, SetCache, SortedSetCache};
use serde_json::{Value, json};
use support::RedisServer;

/// The Python interpreter of the test virtual environment, created on first use; fails
/// loudly when it cannot be.
fn python() -> PathBuf {
    static CREATED: std::sync::Once = std::sync::Once::new();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var_os("PYTHON_INTEROP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv"));
    let python = venv.join("bin").join("python");
    CREATED.call_once(|| {
        if !python.exists() {
            let status = Command::new("bash")
                .arg(root.join("scripts").join("python-venv.sh"))
                .current_dir(&root)
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "`bash scripts/python-venv.sh` failed: the cross-language tests need Python 3.10+                  and PyPI to install caches, pottery and region-cache"
            );
        }
    });
    assert!(
        python.exists(),
        "{} not found: the cross-language tests need caches, pottery and region-cache in a \
         virtual environment. Create it with `bash scripts/python-venv.sh` (from {}).",
        python.display(),
        root.display()
    );
    python
}

/// Runs one `interop.py` operation; its JSON reply (`{"ok": ..., ...}`).
fn python_op(server: &RedisServer, op: &str, args: Value) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/interop.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(server.port().to_string())
        .arg(op)
        .arg(args.to_string())
        .output()
        .expect("run tests/python/interop.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "interop.py {op} failed ({}): {stdout}{}\nIs the venv complete? Run `bash scripts/python-venv.sh`.",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("interop.py {op}: {e}: {stdout}"))
}

/// The result of an operation that must succeed in Python.
fn py(server: &RedisServer, op: &str, args: Value) -> Value {
    let reply = python_op(server, op, args);
    assert_eq!(reply["ok"], json!(true), "interop.py {op}: {reply}");
    reply["result"].clone()
}

/// The Python exception an operation must raise (`KeyError`, ...).
fn py_error(server: &RedisServer, op: &str, args: Value) -> String {
    let reply = python_op(server, op, args);
    assert_eq!(
        reply["ok"],
        json!(false),
        "interop.py {op} succeeded: {reply}"
    );
    reply["error"].as_str().unwrap_or_default().to_string()
}

/// How interop.py shows Python bytes.
fn py_bytes(bytes: &[u8]) -> Value {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    json!({ "$bytes": hex })
}

/// A `caches` class's data with `serialize=False`, read through the `Raw` codec: the key is
/// the class name as prefix, then the parts.
fn caches_raw<T>(conn: &Connection, class: &str, key: &[&str]) -> RedisCache<T, Raw> {
    RedisCache::builder(key.to_vec())
        .connection(conn)
        .prefix(class)
        .codec(Raw)
        .build()
}

#[test]
fn caches_keys_are_the_class_name_then_the_parts() {
    let server = RedisServer::start();
    assert_eq!(
        py(
            &server,
            "caches.key",
            json!({"key": ["a", "b"], "class": "dict"})
        ),
        json!("DictCache.a.b")
    );
    // Falsy parts vanish in Python, so these two keys collide there.
    assert_eq!(
        py(&server, "caches.key", json!({"key": ["a", 0, "b"]})),
        json!("Cache.a.b")
    );
    assert_eq!(
        py(&server, "caches.key", json!({"key": "x", "prefix": "pp"})),
        json!("pp.x")
    );
}

#[test]
fn caches_raw_strings_and_counters_are_shared_both_ways() {
    let server = RedisServer::start();
    let conn = server.connection();

    py(
        &server,
        "caches.cache.set",
        json!({"key": ["greeting", "en"], "value": "hello", "serialize": false}),
    );
    let greeting: RedisCache<String, Raw> = caches_raw(&conn, "Cache", &["greeting", "en"]);
    assert_eq!(greeting.get().unwrap().as_deref(), Some("hello"));

    // A counter Python increments and Rust increments further: both use INCRBY.
    assert_eq!(
        py(
            &server,
            "caches.cache.incr",
            json!({"key": "hits", "by": 5})
        ),
        json!(5)
    );
    let hits: RedisCache<i64, Raw> = caches_raw(&conn, "Cache", &["hits"]);
    assert_eq!(hits.get().unwrap(), Some(5));
    assert_eq!(hits.incr(3).unwrap(), 8);
    // serialize=False hands Python the raw bytes.
    assert_eq!(
        py(
            &server,
            "caches.cache.get",
            json!({"key": "hits", "serialize": false})
        ),
        py_bytes(b"8")
    );
    assert_eq!(
        py(
            &server,
            "caches.cache.incr",
            json!({"key": "hits", "by": -1})
        ),
        json!(7)
    );
}

#[test]
fn caches_raw_floats_differ_in_text_but_not_in_value() {
    let server = RedisServer::start();
    let conn = server.connection();
    // Python writes str(2.0) = "2.0"; Rust writes 2.0 as "2".
    py(
        &server,
        "caches.cache.set",
        json!({"key": "ratio", "value": 2.0, "serialize": false}),
    );
    let ratio: RedisCache<f64, Raw> = caches_raw(&conn, "Cache", &["ratio"]);
    assert_eq!(ratio.get().unwrap(), Some(2.0));
    ratio.set(&2.0).unwrap();
    assert_eq!(
        py(
            &server,
            "caches.cache.get",
            json!({"key": "ratio", "serialize": false})
        ),
        py_bytes(b"2")
    );
    // The text "2" is also an integer: Python's increment now succeeds where "2.0" fails.
    assert_eq!(
        py(
            &server,
            "caches.cache.incr",
            json!({"key": "ratio", "by": 1})
        ),
        json!(3)
    );
}

#[test]
fn caches_raw_dicts_are_shared_both_ways() {
    let server = RedisServer::start();
    let conn = server.connection();
    py(
        &server,
        "caches.dict.set",
        json!({"key": "prefs", "items": [["lang", "en"], ["size", 12]], "serialize": false}),
    );
    let prefs: DictCache<String, String, Raw> = DictCache::builder("prefs")
        .connection(&conn)
        .prefix("DictCache")
        .codec(Raw)
        .build();
    assert_eq!(prefs.get("lang").unwrap().as_deref(), Some("en"));
    assert_eq!(prefs.get("size").unwrap().as_deref(), Some("12"));

    prefs.set("theme", "dark").unwrap();
    let items = py(
        &server,
        "caches.dict.items",
        json!({"key": "prefs", "serialize": false}),
    );
    let items: HashMap<String, Value> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv[0].as_str().unwrap().to_string(), kv[1].clone()))
        .collect();
    assert_eq!(items["theme"], py_bytes(b"dark"));
    assert_eq!(items.len(), 3);
}

#[test]
fn the_default_codec_finds_caches_fields_and_refuses_their_raw_values() {
    // Fields of strings are plain text whatever the codec, so a postcard handle finds the
    // field "lang" that Python wrote; its value has no postcard header, which is a typed
    // error (never a misread), and a `Raw` handle reads it.
    let server = RedisServer::start();
    let conn = server.connection();
    py(
        &server,
        "caches.dict.set",
        json!({"key": "prefs", "items": [["lang", "en"]], "serialize": false}),
    );
    let prefs: DictCache<String, String> = DictCache::builder("prefs")
        .connection(&conn)
        .prefix("DictCache")
        .build();
    match prefs.get("lang") {
        Err(redis_caches::Error::Decode { key, source }) => {
            assert!(key.ends_with("prefs[\"lang\"]"), "{key}");
            assert_eq!(source.kind(), redis_caches::codec::CodecErrorKind::Foreign);
        }
        other => panic!("{other:?}"),
    }
    let keys: Vec<String> = prefs.keys().collect::<Result<_, _>>().unwrap();
    assert_eq!(keys, ["lang"]);
    let raw: DictCache<String, String, Raw> = DictCache::builder("prefs")
        .connection(&conn)
        .prefix("DictCache")
        .codec(Raw)
        .build();
    assert_eq!(raw.get("lang").unwrap().as_deref(), Some("en"));
}

#[test]
fn caches_raw_sets_are_shared_both_ways() {
    let server = RedisServer::start();
    let conn = server.connection();
    py(
        &server,
        "caches.set.add",
        json!({"key": "tags", "members": ["red", "blue"], "serialize": false}),
    );
    let tags: SetCache<String, Raw> = SetCache::builder("tags")
        .connection(&conn)
        .prefix("SetCache")
        .codec(Raw)
        .build();
    assert_eq!(
        tags.to_hash_set().unwrap(),
        HashSet::from(["red".to_string(), "blue".to_string()])
    );
    tags.insert("green").unwrap();
    assert_eq!(
        py(
            &server,
            "caches.set.contains",
            json!({"key": "tags", "member": "green", "serialize": false})
        ),
        json!(true)
    );
}

#[test]
fn caches_sorted_set_scores_are_whole_numbers_in_python() {
    let server = RedisServer::start();
    let conn = server.connection();
    let board: SortedSetCache<String, Raw> = SortedSetCache::builder("board")
        .connection(&conn)
        .prefix("SortedSetCache")
        .codec(Raw)
        .build();

    // Python truncates the score before writing it: 1.7 is stored as 1.
    py(
        &server,
        "caches.zset.add",
        json!({"key": "board", "items": [[1.7, "ann"]], "serialize": false}),
    );
    assert_eq!(board.score("ann").unwrap(), Some(1.0));

    // Rust stores 2.5 exactly; Python's iteration truncates it to 2 (and its pop does not).
    board.insert("bob", 2.5).unwrap();
    assert_eq!(board.score("bob").unwrap(), Some(2.5));
    assert_eq!(
        py(
            &server,
            "caches.zset.items",
            json!({"key": "board", "serialize": false})
        ),
        json!([[1, py_bytes(b"ann")], [2, py_bytes(b"bob")]])
    );
    assert_eq!(
        py(
            &server,
            "caches.zset.pop",
            json!({"key": "board", "serialize": false, "desc": true})
        ),
        json!([2.5, py_bytes(b"bob")])
    );

    // An infinite score, which Rust accepts, breaks Python's iteration of the whole set.
    board.insert("inf", f64::INFINITY).unwrap();
    assert_eq!(
        py_error(
            &server,
            "caches.zset.items",
            json!({"key": "board", "serialize": false})
        ),
        "OverflowError"
    );
}

#[test]
fn caches_sentinel_gates_are_shared_both_ways() {
    let server = RedisServer::start();
    let conn = server.connection();
    let gate = |key: &str| -> SentinelCache {
        SentinelCache::builder(key)
            .connection(&conn)
            .prefix("SentinelCache")
            .build()
    };
    // Python's first check is False and sets the gate; Rust then cannot claim it.
    assert_eq!(
        py(&server, "caches.sentinel.check", json!({"key": "py-first"})),
        json!(false)
    );
    assert!(!gate("py-first").claim().unwrap());
    // Rust claims first; Python's check then passes.
    assert!(gate("rust-first").claim().unwrap());
    assert_eq!(
        py(
            &server,
            "caches.sentinel.check",
            json!({"key": "rust-first"})
        ),
        json!(true)
    );
}

#[cfg(feature = "pickle")]
mod pickled {
    use super::*;
    use redis_caches::codec::{Codec, Pickle, TypeTag};
    use serde::{Deserialize, Serialize};
    use support::redis_helpers::chain;

    #[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
    struct Profile {
        name: String,
        age: u32,
        tags: Vec<String>,
        score: Option<f64>,
    }

    fn profile_json() -> Value {
        json!({"name": "Ann", "age": 41, "tags": ["a", "b"], "score": null})
    }

    fn profile() -> Profile {
        Profile {
            name: "Ann".into(),
            age: 41,
            tags: vec!["a".into(), "b".into()],
            score: None,
        }
    }

    #[test]
    fn caches_pickled_values_read_through_the_pickle_codec() {
        let server = RedisServer::start();
        let conn = server.connection();
        // serialize=True, the caches default: pickle protocol 5.
        py(
            &server,
            "caches.cache.set",
            json!({"key": ["user", "ann"], "value": profile_json()}),
        );
        let user: RedisCache<Profile, Pickle> = RedisCache::builder(["user", "ann"])
            .connection(&conn)
            .prefix("Cache")
            .codec(Pickle)
            .build();
        assert_eq!(user.get().unwrap(), Some(profile()));

        // Writing is refused, before anything is sent.
        let e = user.set(&profile()).unwrap_err();
        assert!(chain(&e).contains("read-only"), "{}", chain(&e));
        assert_eq!(user.get().unwrap(), Some(profile()));
    }

    #[test]
    fn caches_pickled_set_members_read_through_the_pickle_codec() {
        let server = RedisServer::start();
        let conn = server.connection();
        py(
            &server,
            "caches.set.add",
            json!({"key": "seen", "members": ["x", "y"]}),
        );
        let seen: SetCache<String, Pickle> = SetCache::builder("seen")
            .connection(&conn)
            .prefix("SetCache")
            .codec(Pickle)
            .build();
        let members: HashSet<String> = seen.iter().map(Result::unwrap).collect();
        assert_eq!(members, HashSet::from(["x".to_string(), "y".to_string()]));
        // A lookup must encode the member, which this codec refuses.
        let e = seen.contains("x").unwrap_err();
        assert!(matches!(e, redis_caches::Error::Encode { .. }), "{e}");
    }

    #[test]
    fn a_python_object_is_a_decode_error_not_data() {
        let server = RedisServer::start();
        let conn = server.connection();
        // A tuple is plain data; caches stores it pickled like any value.
        py(
            &server,
            "caches.cache.set",
            json!({"key": "pair", "value": {"$tuple": [1, "one"]}}),
        );
        let pair: RedisCache<(i64, String), Pickle> = RedisCache::builder("pair")
            .connection(&conn)
            .prefix("Cache")
            .codec(Pickle)
            .build();
        assert_eq!(pair.get().unwrap(), Some((1, "one".to_string())));

        // A pickled datetime (a Python object, written by CPython) where Rust expects data.
        let datetime: &[u8] = include_bytes!("fixtures/pickle/datetime_p5.pickle");
        redis::cmd("SET")
            .arg("Cache.pair")
            .arg(datetime)
            .exec(&mut server.raw())
            .unwrap();
        let e = pair.get().unwrap_err();
        assert!(e.is_decode(), "{e}");
        assert!(chain(&e).contains("datetime.datetime"), "{}", chain(&e));
    }

    #[test]
    fn region_cache_values_are_pickle_protocol_4() {
        let server = RedisServer::start();
        py(
            &server,
            "region.set",
            json!({"region": "users.ann", "items": [["profile", profile_json()]]}),
        );
        // The region layout (`root.users.ann`, `::child_caches` links) is not readable by
        // `Region` yet; the value bytes are.
        let mut raw = server.raw();
        let bytes: Vec<u8> = redis::cmd("HGET")
            .arg("root.users.ann")
            .arg("profile")
            .query(&mut raw)
            .unwrap();
        assert_eq!(&bytes[..2], b"\x80\x04");
        let decoded: Profile = Pickle.decode(&bytes, &TypeTag::of::<Profile>()).unwrap();
        assert_eq!(decoded, profile());
    }
}

#[cfg(feature = "json")]
mod pottery_json {
    use super::*;
    use redis_caches::codec::Json;

    fn pottery_dict<V>(conn: &Connection, key: &str) -> DictCache<String, V, Json> {
        DictCache::builder(key).connection(conn).codec(Json).build()
    }

    #[test]
    fn pottery_dicts_with_ascii_keys_are_shared_through_the_json_codec() {
        let server = RedisServer::start();
        let conn = server.connection();
        // pottery keys are used as given: no prefix.
        py(
            &server,
            "pottery.dict.set",
            json!({"key": "prefs", "items": [["size", 12], ["tags", ["a", "b"]]]}),
        );
        let prefs: DictCache<String, Value, Json> = pottery_dict(&conn, "prefs");
        assert_eq!(prefs.get("size").unwrap(), Some(json!(12)));
        assert_eq!(prefs.get("tags").unwrap(), Some(json!(["a", "b"])));

        // Rust's compact JSON (`[1,2]`) is read by Python's json.loads.
        prefs.set("list", &json!([1, 2])).unwrap();
        let items = py(&server, "pottery.dict.items", json!({"key": "prefs"}));
        assert!(
            items.as_array().unwrap().contains(&json!(["list", [1, 2]])),
            "{items}"
        );
    }

    #[test]
    fn pottery_non_ascii_keys_are_escaped_by_python_only() {
        let server = RedisServer::start();
        let conn = server.connection();
        // Python writes the field "\"\\u00e9t\u00e9\"" (ensure_ascii); serde_json writes the
        // UTF-8 text, so the lookup misses. The pottery layout must escape like Python.
        py(
            &server,
            "pottery.dict.set",
            json!({"key": "seasons", "items": [["\u{e9}t\u{e9}", 1]]}),
        );
        let seasons: DictCache<String, i64, Json> = pottery_dict(&conn, "seasons");
        assert_eq!(seasons.get("\u{e9}t\u{e9}").unwrap(), None);
        assert_eq!(seasons.len().unwrap(), 1);
    }

    #[test]
    fn pottery_counters_and_sets_with_ascii_members_are_shared() {
        let server = RedisServer::start();
        let conn = server.connection();
        py(
            &server,
            "pottery.counter.update",
            json!({"key": "words", "counts": {"apple": 2}}),
        );
        let words: DictCache<String, i64, Json> = pottery_dict(&conn, "words");
        assert_eq!(words.get("apple").unwrap(), Some(2));
        words.set("pear", &5).unwrap();
        let counts = py(&server, "pottery.counter.items", json!({"key": "words"}));
        let counts: HashMap<String, i64> = counts
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv[0].as_str().unwrap().into(), kv[1].as_i64().unwrap()))
            .collect();
        assert_eq!(
            counts,
            HashMap::from([("apple".into(), 2), ("pear".into(), 5)])
        );

        py(
            &server,
            "pottery.set.add",
            json!({"key": "colors", "members": ["red", 3]}),
        );
        let colors: SetCache<Value, Json> = SetCache::builder("colors")
            .connection(&conn)
            .codec(Json)
            .build();
        assert!(colors.contains(&json!("red")).unwrap());
        assert!(colors.contains(&json!(3)).unwrap());
    }
}
