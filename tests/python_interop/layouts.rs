//! The compatibility layouts (`Layout::PythonCaches`, `Layout::Pottery`,
//! `Layout::PythonRegionCache`) and the Python text codecs, against Python itself: Python
//! writes and Rust reads, Rust writes and Python reads, for each layout and type.

use super::*;
use redis_caches::Layout;
use redis_caches::codec::PythonText;
use redis_caches::codec::python::float_repr;

/// Doubles that exercise every branch of Python's repr: the positional/exponent boundaries
/// (1e-4 and 1e16) and their neighbours, whole numbers around 2^53, short decimals, the
/// extremes, and pseudo-random bit patterns.
fn interesting_doubles() -> Vec<f64> {
    let mut out = vec![
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        5e-324,
        f64::EPSILON,
    ];
    for e in -330..=310 {
        let x = 10f64.powi(e);
        if x.is_finite() && x != 0.0 {
            out.extend([x, x.next_up(), x.next_down(), -x, 1.5 * x, 9.999 * x]);
        }
    }
    let two53 = 2f64.powi(53);
    for d in -3..=3 {
        out.push(two53 + f64::from(d));
    }
    for k in 1..=400 {
        out.push(f64::from(k) / 7.0);
        out.push(f64::from(k) * 0.1);
        out.push(f64::from(k) * 1e14 + 0.5);
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    while out.len() < 12_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let x = f64::from_bits(state);
        if !x.is_nan() {
            out.push(x);
        }
        // Where the last digit can be a tie between two shortest candidates (ulp 0.25).
        out.push(2f64.powi(50) + (state >> 12) as f64 * 0.25);
    }
    out
}

#[test]
fn python_float_text_matches_python_repr() {
    let server = RedisServer::start();
    let doubles = interesting_doubles();
    let mut checked = 0;
    for chunk in doubles.chunks(3000) {
        let bits: Vec<u64> = chunk.iter().map(|x| x.to_bits()).collect();
        let reprs = py(&server, "float.repr", json!({ "bits": bits }));
        let reprs = reprs.as_array().unwrap();
        assert_eq!(reprs.len(), chunk.len());
        for (x, expected) in chunk.iter().zip(reprs) {
            assert_eq!(
                float_repr(*x),
                expected.as_str().unwrap(),
                "bits {:#x}",
                x.to_bits()
            );
            checked += 1;
        }
    }
    assert!(checked >= 12_000, "{checked}");
}

fn caches<T: redis_caches::Collection>(
    builder: redis_caches::Builder<T>,
    conn: &Connection,
) -> redis_caches::Builder<T> {
    builder.connection(conn).layout(Layout::PythonCaches)
}

#[test]
fn caches_layout_names_keys_as_python() {
    let server = RedisServer::start();
    let conn = server.connection();
    // Python drops the falsy part 0 and does not escape the dot: both sides use `Cache.a.b.c`.
    py(
        &server,
        "caches.cache.set",
        json!({"key": ["a", 0, "b.c"], "value": "x", "serialize": false}),
    );
    let c: RedisCache<String, PythonText> = caches(RedisCache::builder(("a", 0, "b.c")), &conn)
        .codec(PythonText)
        .build();
    assert!(format!("{c:?}").contains("\"Cache.a.b.c\""), "{c:?}");
    assert_eq!(c.get().unwrap().as_deref(), Some("x"));
    // The class's `prefix` attribute is the builder's prefix.
    c.set("y").unwrap();
    let pp: RedisCache<String, PythonText> = caches(RedisCache::builder("x"), &conn)
        .prefix("pp")
        .codec(PythonText)
        .build();
    pp.set("from rust").unwrap();
    assert_eq!(
        py(
            &server,
            "caches.cache.get",
            json!({"key": "x", "prefix": "pp", "serialize": false})
        ),
        py_bytes(b"from rust")
    );
    // Every collection type takes its Python class name.
    for (class, debug) in [
        (
            "dict",
            format!(
                "{:?}",
                caches(DictCache::<String, String>::builder("k"), &conn).build()
            ),
        ),
        (
            "set",
            format!(
                "{:?}",
                caches(SetCache::<String>::builder("k"), &conn).build()
            ),
        ),
        (
            "zset",
            format!(
                "{:?}",
                caches(SortedSetCache::<String>::builder("k"), &conn).build()
            ),
        ),
        (
            "sentinel",
            format!("{:?}", caches(SentinelCache::builder("k"), &conn).build()),
        ),
    ] {
        let key = py(&server, "caches.key", json!({"key": "k", "class": class}));
        assert!(debug.contains(&format!("{key}")), "{debug} vs {key}");
    }
}

#[test]
fn caches_layout_values_are_shared_both_ways() {
    let server = RedisServer::start();
    let conn = server.connection();
    py(
        &server,
        "caches.cache.set",
        json!({"key": "ratio", "value": 2.0, "serialize": false}),
    );
    let ratio: RedisCache<f64, PythonText> = caches(RedisCache::builder("ratio"), &conn)
        .codec(PythonText)
        .build();
    assert_eq!(ratio.get().unwrap(), Some(2.0));
    for (x, text) in [
        (2.0, "2.0"),
        (1e16, "1e+16"),
        (1e-5, "1e-05"),
        (f64::INFINITY, "inf"),
    ] {
        ratio.set(&x).unwrap();
        assert_eq!(
            py(
                &server,
                "caches.cache.get",
                json!({"key": "ratio", "serialize": false})
            ),
            py_bytes(text.as_bytes())
        );
    }
    // Counters: INCRBY on both sides.
    let hits: RedisCache<i64, PythonText> = caches(RedisCache::builder("hits"), &conn)
        .codec(PythonText)
        .build();
    hits.set(&5).unwrap();
    assert_eq!(
        py(
            &server,
            "caches.cache.incr",
            json!({"key": "hits", "by": 2})
        ),
        json!(7)
    );
    assert_eq!(hits.incr(1).unwrap(), 8);
}

#[test]
fn caches_layout_dicts_are_shared_both_ways() {
    let server = RedisServer::start();
    let conn = server.connection();
    // Fields named by floats: Python writes `2.0` and `1e+16`.
    py(
        &server,
        "caches.dict.set",
        json!({"key": "f", "items": [[2.0, "two"], [1e16, "big"]], "serialize": false}),
    );
    let by_float: DictCache<f64, String, PythonText> = caches(DictCache::builder("f"), &conn)
        .codec(PythonText)
        .build();
    assert_eq!(by_float.get(&2.0).unwrap().as_deref(), Some("two"));
    assert_eq!(by_float.get(&1e16).unwrap().as_deref(), Some("big"));
    by_float.set(&1e-5, "tiny").unwrap();
    assert_eq!(
        py(
            &server,
            "caches.dict.get",
            json!({"key": "f", "field": 1e-5, "serialize": false})
        ),
        py_bytes(b"tiny")
    );
    let mut keys: Vec<String> = py(&server, "caches.dict.keys", json!({"key": "f"}))
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    keys.sort();
    assert_eq!(keys, ["1e+16", "1e-05", "2.0"]);

    // String and integer fields, text values.
    py(
        &server,
        "caches.dict.set",
        json!({"key": "prefs", "items": [["lang", "en"], [7, "seven"]], "serialize": false}),
    );
    let prefs: DictCache<String, String, PythonText> = caches(DictCache::builder("prefs"), &conn)
        .codec(PythonText)
        .build();
    assert_eq!(prefs.get("lang").unwrap().as_deref(), Some("en"));
    assert_eq!(prefs.get("7").unwrap().as_deref(), Some("seven"));
    prefs.set("thème", "sombre").unwrap();
    assert_eq!(
        py(
            &server,
            "caches.dict.get",
            json!({"key": "prefs", "field": "thème", "serialize": false})
        ),
        py_bytes("sombre".as_bytes())
    );
    let by_int: DictCache<i64, String, PythonText> = caches(DictCache::builder("prefs"), &conn)
        .codec(PythonText)
        .build();
    assert_eq!(by_int.get(&7).unwrap().as_deref(), Some("seven"));
}

#[test]
fn caches_layout_sets_are_shared_both_ways() {
    let server = RedisServer::start();
    let conn = server.connection();
    py(
        &server,
        "caches.set.add",
        json!({"key": "nums", "members": [2.5, 1e16, 3.0], "serialize": false}),
    );
    let nums: SetCache<f64, PythonText> = caches(SetCache::builder("nums"), &conn)
        .codec(PythonText)
        .build();
    assert!(nums.contains(&1e16).unwrap());
    assert!(nums.contains(&3.0).unwrap());
    nums.insert(&4.0).unwrap();
    assert_eq!(
        py(
            &server,
            "caches.set.contains",
            json!({"key": "nums", "member": 4.0, "serialize": false})
        ),
        json!(true)
    );
    assert_eq!(nums.len().unwrap(), 4);

    py(
        &server,
        "caches.set.add",
        json!({"key": "tags", "members": ["red", "é"], "serialize": false}),
    );
    let tags: SetCache<String, PythonText> = caches(SetCache::builder("tags"), &conn)
        .codec(PythonText)
        .build();
    assert!(tags.contains("é").unwrap());
    tags.insert("vert").unwrap();
    assert_eq!(
        py(
            &server,
            "caches.set.contains",
            json!({"key": "tags", "member": "vert", "serialize": false})
        ),
        json!(true)
    );
}

#[test]
fn caches_layout_sorted_sets_take_whole_scores_only() {
    let server = RedisServer::start();
    let conn = server.connection();
    let board: SortedSetCache<String, PythonText> = caches(SortedSetCache::builder("board"), &conn)
        .codec(PythonText)
        .build();
    py(
        &server,
        "caches.zset.add",
        json!({"key": "board", "items": [[1.7, "ann"]], "serialize": false}),
    );
    assert_eq!(board.score("ann").unwrap(), Some(1.0));
    board.insert("bob", 2.0).unwrap();
    // Scores Python would truncate, or fail on, are refused before anything is sent.
    for bad in [2.5, f64::INFINITY, f64::NEG_INFINITY] {
        let e = board.insert("eve", bad).unwrap_err();
        assert!(matches!(e, redis_caches::Error::Encode { .. }), "{e}");
    }
    assert!(board.incr_score("bob", 0.5).is_err());
    assert_eq!(board.score("eve").unwrap(), None);
    assert_eq!(board.incr_score("bob", 1.0).unwrap(), 3.0);
    assert_eq!(
        py(
            &server,
            "caches.zset.items",
            json!({"key": "board", "serialize": false})
        ),
        json!([[1, py_bytes(b"ann")], [3, py_bytes(b"bob")]])
    );
}

#[test]
fn caches_layout_sentinels_are_shared_both_ways() {
    let server = RedisServer::start();
    let conn = server.connection();
    let gate = |key: &str| caches(SentinelCache::builder(key), &conn).build();
    assert_eq!(
        py(&server, "caches.sentinel.check", json!({"key": "py-first"})),
        json!(false)
    );
    assert!(!gate("py-first").claim().unwrap());
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
#[test]
fn caches_layout_reads_pickled_dict_values() {
    use redis_caches::codec::Pickle;
    let server = RedisServer::start();
    let conn = server.connection();
    // serialize=True: values pickled, fields plain text; unreadable without the layout.
    py(
        &server,
        "caches.dict.set",
        json!({"key": "users", "items": [["ann", {"age": 41}], [7, [1, 2]]]}),
    );
    let users: DictCache<String, HashMap<String, i64>, Pickle> =
        caches(DictCache::builder("users"), &conn)
            .codec(Pickle)
            .build();
    assert_eq!(
        users.get("ann").unwrap(),
        Some(HashMap::from([("age".into(), 41)]))
    );
    let lists: DictCache<i64, Vec<i64>, Pickle> = caches(DictCache::builder("users"), &conn)
        .codec(Pickle)
        .build();
    assert_eq!(lists.get(&7).unwrap(), Some(vec![1, 2]));
    // Writing stays refused, before anything is sent.
    assert!(users.set("bob", &HashMap::new()).is_err());
    assert_eq!(users.len().unwrap(), 2);
    // Pickled set members are read; a lookup would have to pickle, which is refused.
    py(
        &server,
        "caches.set.add",
        json!({"key": "seen", "members": ["x", 2]}),
    );
    let seen: SetCache<Value, Pickle> = caches(SetCache::builder("seen"), &conn)
        .codec(Pickle)
        .build();
    let mut members: Vec<Value> = seen.iter().map(Result::unwrap).collect();
    members.sort_by_key(|v| v.to_string());
    assert_eq!(members, [json!("x"), json!(2)]);
    assert!(matches!(
        seen.contains(&json!("x")),
        Err(redis_caches::Error::Encode { .. })
    ));
}

#[cfg(feature = "json")]
mod pottery {
    use super::*;
    use redis_caches::codec::PythonJson;

    fn pottery<T: redis_caches::Collection>(
        builder: redis_caches::Builder<T>,
        conn: &Connection,
    ) -> redis_caches::Builder<T> {
        builder.connection(conn).layout(Layout::Pottery)
    }

    /// Strings over the whole of Unicode (surrogate pairs included), control characters,
    /// quotes and backslashes, numbers, nested lists and maps.
    fn interesting_values() -> Vec<Value> {
        let mut out = vec![
            json!("a"),
            json!("é"),
            json!("😀"),
            json!("\u{7f}\u{80}\u{ffff}\u{10ffff}"),
            json!("\u{1}\n\"\\/\u{8}\u{c}\r\t"),
            json!(2),
            json!(-2),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(2.0),
            json!(1e16),
            json!(1e-5),
            json!(-0.0),
            json!(0.1),
            json!(true),
            json!(null),
            json!([]),
            json!({}),
            json!([1, "é", {"b": 1, "a": [2.5, null]}]),
            json!({"é": 1, "z": 2, "A": {"y": [], "x": {}}, "": 0}),
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let s: String = (0..(next() % 12))
                .filter_map(|_| char::from_u32((next() % 0x11_0000) as u32))
                .collect();
            let k: String = (0..(next() % 4))
                .filter_map(|_| char::from_u32((next() % 0x800) as u32 + 0x20))
                .collect();
            let f = f64::from_bits(next());
            let f = if f.is_finite() { json!(f) } else { json!(0.5) };
            out.push(json!(s.clone()));
            out.push(json!({ k: [s, f, next() as i64] }));
        }
        out
    }

    #[test]
    fn python_json_text_matches_json_dumps() {
        let server = RedisServer::start();
        let values = interesting_values();
        let tag = redis_caches::codec::TypeTag::of::<Value>();
        for chunk in values.chunks(200) {
            let dumped = py(&server, "json.dumps", json!({ "values": chunk }));
            for (value, expected) in chunk.iter().zip(dumped.as_array().unwrap()) {
                let ours = redis_caches::codec::Codec::encode(&PythonJson, value, &tag).unwrap();
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    expected.as_str().unwrap(),
                    "{value}"
                );
            }
        }
    }

    #[test]
    fn pottery_maps_with_integer_keys_are_ordered_differently_as_documented() {
        let server = RedisServer::start();
        let map = std::collections::BTreeMap::from([(9, 1), (10, 2)]);
        let tag = redis_caches::codec::TypeTag::of::<std::collections::BTreeMap<i32, i32>>();
        let ours = redis_caches::codec::Codec::encode(&PythonJson, &map, &tag).unwrap();
        assert_eq!(ours, br#"{"10": 2, "9": 1}"#);
        let python = py(
            &server,
            "json.dumps",
            json!({"values": [{"$dict": [[9, 1], [10, 2]]}]}),
        );
        assert_eq!(python, json!([r#"{"9": 1, "10": 2}"#]));
    }

    #[test]
    fn pottery_dicts_are_shared_both_ways() {
        let server = RedisServer::start();
        let conn = server.connection();
        let nested = json!({"b": 1, "a": [2.0, "é", 1e16]});
        py(
            &server,
            "pottery.dict.set",
            json!({"key": "pd", "items": [["été", 1], ["py", nested.clone()]]}),
        );
        let pd: DictCache<String, Value, PythonJson> = pottery(DictCache::builder("pd"), &conn)
            .codec(PythonJson)
            .build();
        assert_eq!(pd.get("été").unwrap(), Some(json!(1)));
        assert_eq!(pd.get("py").unwrap(), Some(nested.clone()));
        pd.set("rust", &nested).unwrap();
        pd.set("ünï", &json!("ç")).unwrap();
        assert_eq!(
            py(
                &server,
                "pottery.dict.get",
                json!({"key": "pd", "field": "ünï"})
            ),
            json!("ç")
        );
        // Byte for byte what Python writes for the same value.
        let hget = |field: &str| -> Vec<u8> {
            redis::cmd("HGET")
                .arg("pd")
                .arg(field)
                .query(&mut server.raw())
                .unwrap()
        };
        assert_eq!(hget("\"rust\""), hget("\"py\""));
        // pottery tells the int key 2 from the str key "2"; so do the field types.
        py(
            &server,
            "pottery.dict.set",
            json!({"key": "ints", "items": [[2, "two"], ["2", "text two"]]}),
        );
        let ints: DictCache<i64, String, PythonJson> = pottery(DictCache::builder("ints"), &conn)
            .codec(PythonJson)
            .build();
        let texts: DictCache<String, String, PythonJson> =
            pottery(DictCache::builder("ints"), &conn)
                .codec(PythonJson)
                .build();
        assert_eq!(ints.get(&2).unwrap().as_deref(), Some("two"));
        assert_eq!(texts.get("2").unwrap().as_deref(), Some("text two"));
    }

    #[test]
    fn pottery_values_rust_cannot_hold_are_decode_errors() {
        let server = RedisServer::start();
        let conn = server.connection();
        // Python writes NaN and Infinity (not JSON) and integers of any size.
        py(
            &server,
            "pottery.dict.set",
            json!({"key": "odd", "items": [
                ["nan", {"$float": "nan"}],
                ["inf", {"$float": "-inf"}],
                ["big", {"$int": "1180591620717411303424"}],
                ["fine", 1],
            ]}),
        );
        let odd: DictCache<String, Value, PythonJson> = pottery(DictCache::builder("odd"), &conn)
            .codec(PythonJson)
            .build();
        for field in ["nan", "inf", "big"] {
            let e = odd.get(field).unwrap_err();
            assert!(e.is_decode(), "{field}: {e}");
        }
        assert_eq!(odd.get("fine").unwrap(), Some(json!(1)));
        // Rust refuses to write them, before anything is sent.
        let floats: DictCache<String, f64, PythonJson> = pottery(DictCache::builder("odd"), &conn)
            .codec(PythonJson)
            .build();
        assert!(matches!(
            floats.set("x", &f64::NAN),
            Err(redis_caches::Error::Encode { .. })
        ));
        assert_eq!(floats.len().unwrap(), 4);
    }

    #[test]
    fn pottery_sets_are_shared_both_ways() {
        let server = RedisServer::start();
        let conn = server.connection();
        py(
            &server,
            "pottery.set.add",
            json!({"key": "ps", "members": ["é", 1e16, 3, null, {"$tuple": [1, "a"]}]}),
        );
        let ps: SetCache<Value, PythonJson> = pottery(SetCache::builder("ps"), &conn)
            .codec(PythonJson)
            .build();
        for member in [
            json!("é"),
            json!(1e16),
            json!(3),
            json!(null),
            json!([1, "a"]),
        ] {
            assert!(ps.contains(&member).unwrap(), "{member}");
        }
        ps.insert(&json!("ñ")).unwrap();
        ps.insert(&json!(2.5)).unwrap();
        for member in [json!("ñ"), json!(2.5)] {
            assert_eq!(
                py(
                    &server,
                    "pottery.set.contains",
                    json!({"key": "ps", "member": member})
                ),
                json!(true)
            );
        }
        assert_eq!(ps.len().unwrap(), 7);
    }

    #[test]
    fn pottery_counters_are_shared_both_ways() {
        let server = RedisServer::start();
        let conn = server.connection();
        py(
            &server,
            "pottery.counter.update",
            json!({"key": "pc", "counts": {"é": 2, "a": 1}}),
        );
        let pc: DictCache<String, i64, PythonJson> = pottery(DictCache::builder("pc"), &conn)
            .codec(PythonJson)
            .build();
        assert_eq!(pc.get("é").unwrap(), Some(2));
        pc.set("ü", &5).unwrap();
        assert_eq!(
            py(
                &server,
                "pottery.counter.incr",
                json!({"key": "pc", "field": "ü", "by": 1})
            ),
            json!(6)
        );
        assert_eq!(pc.get("ü").unwrap(), Some(6));
        // HINCRBY on the JSON-encoded field: atomic, and Python reads the count.
        assert_eq!(pc.incr("é", 3).unwrap(), 5);
        assert_eq!(
            py(
                &server,
                "pottery.counter.incr",
                json!({"key": "pc", "field": "é", "by": 1})
            ),
            json!(6)
        );
        let counts = py(&server, "pottery.counter.items", json!({"key": "pc"}));
        assert_eq!(counts.as_array().unwrap().len(), 3, "{counts}");
    }
}

#[cfg(all(feature = "pickle", feature = "json"))]
mod region_cache {
    use super::*;
    use redis_caches::codec::{Json, Pickle};

    #[test]
    fn region_cache_layout_reads_pickled_regions() {
        let server = RedisServer::start();
        let conn = server.connection();
        py(
            &server,
            "region.set",
            json!({"region": "users.ann", "items": [["age", 41], ["name", "Ann"]]}),
        );
        let ann: DictCache<String, Value, Pickle> = DictCache::builder("users.ann")
            .connection(&conn)
            .layout(Layout::PythonRegionCache)
            .codec(Pickle)
            .build();
        assert!(format!("{ann:?}").contains("\"root.users.ann\""), "{ann:?}");
        assert_eq!(ann.get("age").unwrap(), Some(json!(41)));
        // Iteration skips region-cache's marker field; `len` counts it, as Python's does.
        let mut keys: Vec<String> = ann.keys().map(Result::unwrap).collect();
        keys.sort();
        assert_eq!(keys, ["age", "name"]);
        assert_eq!(ann.to_hash_map().unwrap().len(), 2);
        assert_eq!(ann.len().unwrap(), 3);
        assert_eq!(
            py(&server, "region.len", json!({"region": "users.ann"})),
            json!(3)
        );
        assert!(
            ann.set("x", &json!(1)).is_err(),
            "pickle regions are read-only"
        );
    }

    #[test]
    fn region_cache_json_regions_are_shared_both_ways() {
        let server = RedisServer::start();
        let conn = server.connection();
        let region = json!({"region": "carts.bob", "serializer": "json", "root": "shop"});
        py(
            &server,
            "region.set",
            json!({"region": "carts.bob", "serializer": "json", "root": "shop",
                   "items": [["n", 2], ["items", ["x", "é"]]]}),
        );
        let bob: DictCache<String, Value, Json> = DictCache::builder(["carts", "bob"])
            .connection(&conn)
            .layout(Layout::PythonRegionCache)
            .prefix("shop")
            .codec(Json)
            .build();
        assert_eq!(bob.get("items").unwrap(), Some(json!(["x", "é"])));
        bob.set("total", &json!(12.5)).unwrap();
        let mut args = region.clone();
        args["field"] = json!("total");
        assert_eq!(py(&server, "region.get", args), json!(12.5));
        let items = py(&server, "region.items", region);
        assert_eq!(items.as_array().unwrap().len(), 3, "{items}");
    }
}

#[test]
fn a_region_refuses_a_layout_before_sending_anything() {
    let server = RedisServer::start();
    let conn = server.connection();
    let region: redis_caches::Region = redis_caches::Region::builder("users")
        .connection(&conn)
        .layout(Layout::PythonRegionCache)
        .build();
    let e = region.set("k", &1u8).unwrap_err();
    assert!(e.is_config(), "{e}");
    assert!(e.to_string().contains("region \"users\""), "{e}");
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut server.raw())
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

/// region-cache's marker is bookkeeping, never an entry: `pop_item` neither returns nor
/// deletes it, even when its text decodes as a value (`PythonText`).
#[test]
fn pop_item_leaves_region_caches_marker_alone() {
    let server = RedisServer::start();
    let conn = server.connection();
    let dict: DictCache<String, String, PythonText> = DictCache::builder(["carts", "ann"])
        .connection(&conn)
        .layout(Layout::PythonRegionCache)
        .prefix("shop")
        .codec(PythonText)
        .build();
    dict.set("a", "1").unwrap();
    let mut raw = server.raw();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut raw).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let marker = "__cache_region_created_at__";
    let _: () = redis::cmd("HSET")
        .arg(&keys[0])
        .arg(marker)
        .arg("2026-11-29T19:23:58.823578")
        .query(&mut raw)
        .unwrap();
    for _ in 0..20 {
        // Whatever HRANDFIELD picks first, the entry comes out and the marker stays.
        dict.set("a", "1").unwrap();
        assert_eq!(dict.pop_item().unwrap(), Some(("a".into(), "1".into())));
        assert_eq!(dict.pop_item().unwrap(), None);
        let kept: bool = redis::cmd("HEXISTS")
            .arg(&keys[0])
            .arg(marker)
            .query(&mut raw)
            .unwrap();
        assert!(kept);
    }
}
