//! Unit tests of DSN parsing: no server needed.

use super::*;

fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parses_host_port_db_and_name() {
    let d = Dsn::parse("redis://cache:6380/2#sessions").unwrap();
    assert_eq!(
        d.target(),
        &Target::Tcp {
            host: "cache".into(),
            port: 6380
        }
    );
    assert_eq!(d.db(), 2);
    assert_eq!(d.name(), Some("sessions"));
    assert_eq!(d.timeout(), Some(defaults::TIMEOUT));
    assert_eq!(d.pool_size(), defaults::POOL_SIZE);
}

#[test]
fn default_port_and_db() {
    let d = Dsn::parse("redis://localhost").unwrap();
    assert_eq!(
        d.target(),
        &Target::Tcp {
            host: "localhost".into(),
            port: 6379
        }
    );
    assert_eq!(d.db(), 0);
    assert_eq!(d.name(), None);
}

#[test]
fn credentials_forms() {
    let d = Dsn::parse("redis://user:pa%40ss@h").unwrap();
    assert_eq!(d.username(), Some("user"));
    assert_eq!(d.password(), Some("pa@ss"));
    let d = Dsn::parse("redis://:only@h").unwrap();
    assert_eq!(d.username(), None);
    assert_eq!(d.password(), Some("only"));
}

#[test]
fn password_is_redacted_everywhere() {
    let d = Dsn::parse("redis://user:hunter2@h:1/0?timeout=2#n").unwrap();
    for shown in [d.to_string(), format!("{d:?}"), format!("{d:#?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
    let e = Dsn::parse("redis://user:hunter2@h/0?nope=1").unwrap_err();
    assert!(!e.to_string().contains("hunter2"));
    let e = Dsn::parse("redis://user:hunter2@h:notaport/0").unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(!format!("{e:?}").contains("hunter2"));
}

#[test]
fn unescaped_separators_in_passwords_are_not_echoed() {
    // A '/', '?' or '#' in a password ends the authority early: the URL then fails to
    // parse, or its path, query or fragment holds the rest of the password.
    for (dsn, rest) in [
        ("redis://user:ab/cd-hunter2@h:1/0", "hunter2"),
        ("redis://user:ab?cd-hunter2@h", "hunter2"),
        ("redis://user:ab#cd-hunter2@h", "hunter2"),
        ("redis://u:12/hunter2@h", "hunter2"),
        ("redis://u:12?timeout=hunter2@h", "hunter2"),
        ("redis://u:12?x=hunter2@h", "hunter2"),
    ] {
        let e = Dsn::parse(dsn).unwrap_err();
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains(rest), "{dsn}: {shown}");
        }
    }
}

#[test]
fn unix_sockets() {
    let d = Dsn::parse("redis+unix:///run/redis.sock?db=3").unwrap();
    assert_eq!(d.target(), &Target::Unix("/run/redis.sock".into()));
    assert_eq!(d.db(), 3);
    let d = Dsn::parse("unix:///tmp/r.sock#local").unwrap();
    assert_eq!(d.target(), &Target::Unix("/tmp/r.sock".into()));
    assert_eq!(d.name(), Some("local"));
    assert!(Dsn::parse("unix://").unwrap_err().is_config());
}

#[test]
fn options() {
    let d = Dsn::parse(
        "redis://h/0?pool_size=3&pool_timeout=250ms&connect_timeout=2&socket_timeout=0.5&prefix=app:&protocol=resp3",
    )
    .unwrap();
    assert_eq!(d.pool_size(), 3);
    assert_eq!(d.pool_timeout(), Duration::from_millis(250));
    assert_eq!(d.connect_timeout(), Duration::from_secs(2));
    assert_eq!(d.timeout(), Some(Duration::from_millis(500)));
    assert_eq!(d.prefix(), "app:");
    assert_eq!(d.protocol(), Protocol::Resp3);
    assert_eq!(Dsn::parse("redis://h?timeout=0").unwrap().timeout(), None);
}

#[test]
fn tls_options() {
    let d = Dsn::parse("rediss://h?tls_ca=/ca.pem&tls_insecure=true").unwrap();
    let tls = d.tls().unwrap();
    assert_eq!(
        tls.ca_file.as_deref(),
        Some(std::path::Path::new("/ca.pem"))
    );
    assert!(tls.insecure);
    assert!(!Dsn::parse("rediss://h").unwrap().tls().unwrap().insecure);
    let e = Dsn::parse("redis://h?tls_ca=/ca.pem").unwrap_err();
    assert!(e.to_string().contains("rediss"), "{e}");
    let e = Dsn::parse("rediss://h?tls_cert=/c.pem").unwrap_err();
    assert!(e.to_string().contains("together"), "{e}");
}

#[test]
fn bad_dsns_name_the_problem() {
    let cases = [
        ("mysql://h", "unknown scheme"),
        ("redis://h/x", "not a number"),
        ("redis://h/-1", "not a number"),
        ("redis://h?colour=blue", "unknown option"),
        ("redis://h?pool_size=0", "from 1 to 4096"),
        ("redis://h?pool_size=many", "from 1 to 4096"),
        ("redis://h?timeout=soon", "not a duration"),
        ("redis://h?timeout=-1", "not a duration"),
        ("redis://h?connect_timeout=0", "from 1ms to 3600s"),
        ("redis://h?protocol=resp9", "resp2 or resp3"),
        ("redis://h?timeout=1&timeout=2", "twice"),
        ("redis://h?timeout=1&socket_timeout=2", "twice"),
        ("redis://h?prefix={x}", "must not contain"),
        ("redis://h/1?db=2", "already given"),
        ("redis://h#", "empty"),
        ("not a url", "not a URL"),
        ("redis:///0", "no host"),
    ];
    for (dsn, expected) in cases {
        let e = Dsn::parse(dsn).unwrap_err();
        assert!(e.is_config(), "{dsn}: {e}");
        assert!(e.to_string().contains(expected), "{dsn}: {e}");
    }
}

fn node(host: &str, port: u16) -> Node {
    Node {
        host: host.into(),
        port,
    }
}

#[test]
fn cluster_host_lists() {
    let d = Dsn::parse("redis+cluster://h1:7000,h2:7001/?timeout=250ms#jobs").unwrap();
    assert_eq!(
        d.target(),
        &Target::Cluster(vec![node("h1", 7000), node("h2", 7001)])
    );
    assert_eq!(d.timeout(), Some(Duration::from_millis(250)));
    assert_eq!(d.name(), Some("jobs"));
    assert_eq!(d.db(), 0);
    assert!(d.tls().is_none());

    let d = Dsn::parse("redis+cluster://h1,[::1]:7001,[fe80::2],10.0.0.3:7002/0").unwrap();
    assert_eq!(
        d.target(),
        &Target::Cluster(vec![
            node("h1", 6379),
            node("::1", 7001),
            node("fe80::2", 6379),
            node("10.0.0.3", 7002)
        ])
    );
    let d = Dsn::parse("REDIS+CLUSTER://h1:7000").unwrap();
    assert!(matches!(d.target(), Target::Cluster(n) if n.len() == 1));
}

#[test]
fn cluster_tls_and_credentials() {
    let d = Dsn::parse("rediss+cluster://app:s3cret@h1:7000,h2:7001?tls_insecure=true").unwrap();
    assert!(d.tls().unwrap().insecure);
    assert_eq!(d.username(), Some("app"));
    assert_eq!(d.password(), Some("s3cret"));
    assert_eq!(
        d.to_string(),
        "rediss+cluster://app:***@h1:7000,h2:7001?tls_insecure=true"
    );
    let e = Dsn::parse("redis+cluster://h1:7000?tls_ca=/ca.pem").unwrap_err();
    assert!(e.to_string().contains("rediss"), "{e}");
}

#[test]
fn sentinel_service_and_db() {
    let d = Dsn::parse("redis+sentinel://s1:26379,s2:26380/mymaster/2?prefix=app:").unwrap();
    assert_eq!(
        d.target(),
        &Target::Sentinel {
            sentinels: vec![node("s1", 26379), node("s2", 26380)],
            service: "mymaster".into()
        }
    );
    assert_eq!(d.db(), 2);
    assert_eq!(d.prefix(), "app:");

    let d = Dsn::parse("redis+sentinel://s1,s2/mymaster").unwrap();
    assert_eq!(
        d.target(),
        &Target::Sentinel {
            sentinels: vec![node("s1", 26379), node("s2", 26379)],
            service: "mymaster".into()
        }
    );
    assert_eq!(d.db(), 0);
    assert_eq!(Dsn::parse("redis+sentinel://s1/m/").unwrap().db(), 0);
    assert_eq!(Dsn::parse("redis+sentinel://s1/m?db=4").unwrap().db(), 4);
    assert_eq!(
        Dsn::parse("redis+sentinel://s1/my%20master")
            .unwrap()
            .target(),
        &Target::Sentinel {
            sentinels: vec![node("s1", 26379)],
            service: "my master".into()
        }
    );
    let d = Dsn::parse("rediss+sentinel://:pw@s1:1,s2:2/m/1#ha").unwrap();
    assert!(d.tls().is_some());
    assert_eq!(d.name(), Some("ha"));
    assert_eq!(d.to_string(), "rediss+sentinel://:***@s1:1,s2:2/m/1#ha");
}

#[test]
fn bad_host_lists_name_the_problem() {
    let cases = [
        ("redis+cluster://", "no host"),
        ("redis+cluster:///0", "no host"),
        ("redis+cluster://h1,,h2", "empty host"),
        ("redis+cluster://h1:7000,:7001", "empty host"),
        ("redis+cluster://h1:port", "not a port number"),
        ("redis+cluster://h1:0", "not a port number"),
        ("redis+cluster://h1:70000", "not a port number"),
        ("redis+cluster://[::1", "closing"),
        ("redis+cluster://[::1]x", "after its"),
        ("redis+cluster://h1/2", "only database 0"),
        ("redis+cluster://h1?db=3", "only database 0"),
        ("redis+cluster://h1/x", "not a number"),
        ("redis+cluster://h1?colour=blue", "unknown option"),
        ("redis+sentinel://s1", "names no master"),
        ("redis+sentinel://s1/", "names no master"),
        ("redis+sentinel://s1/m/x", "not a number"),
        ("redis+sentinel://s1/m/1/2", "too many parts"),
        ("redis+sentinel://s1/m/1?db=2", "already given"),
        ("redis://h1:7000,h2:7001", "not a URL"),
        ("redis+nope://h1", "unknown scheme"),
    ];
    for (dsn, expected) in cases {
        let e = Dsn::parse(dsn).unwrap_err();
        assert!(e.is_config(), "{dsn}: {e}");
        assert!(e.to_string().contains(expected), "{dsn}: {e}");
    }
}

#[test]
fn host_list_errors_never_show_the_password() {
    for dsn in [
        "redis+cluster://u:hunter2@h1,,h2",
        "redis+cluster://u:hunter2@h1:x",
        "redis+sentinel://u:hunter2@s1",
        "redis+sentinel://:hunter2@s1/m?nope=1",
        "redis+cluster://:hunter2@h1/5",
    ] {
        let e = Dsn::parse(dsn).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{dsn}: {e}");
        assert!(!format!("{e:?}").contains("hunter2"), "{dsn}: {e:?}");
    }
    let d = Dsn::parse("redis+cluster://u:hunter2@h1:1,h2:2").unwrap();
    for shown in [d.to_string(), format!("{d:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("1").unwrap(), Duration::from_secs(1));
    assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
    assert!(parse_duration("").is_err());
    assert!(parse_duration("NaN").is_err());
    assert!(parse_duration("1e400").is_err());
}

#[test]
fn env_default_and_numbered() {
    let got = from_vars(vars(&[
        ("CACHES_DSN", "redis://a/0"),
        ("CACHES_DSN_1", "redis://b/0#sessions"),
        ("CACHES_DSN_2", "redis://c/0"),
        ("PATH", "/bin"),
    ]))
    .unwrap();
    let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["default", "sessions", "2"]);
}

#[test]
fn env_zero_start_and_alias() {
    let got = from_vars(vars(&[
        ("CACHES_DSN_0", "redis://a/0"),
        ("CACHES_DSN_1", "redis://b/0"),
        ("CACHES_DSN", "redis://c/0#main"),
    ]))
    .unwrap();
    let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["default", "main", "0", "1"]);
}

#[test]
fn env_errors_name_the_variable() {
    let gap = from_vars(vars(&[
        ("CACHES_DSN_1", "redis://a"),
        ("CACHES_DSN_3", "redis://c"),
    ]))
    .unwrap_err();
    assert!(gap.to_string().contains("CACHES_DSN_3"), "{gap}");
    assert!(gap.to_string().contains("CACHES_DSN_2 is missing"), "{gap}");

    let late = from_vars(vars(&[("CACHES_DSN_2", "redis://a")])).unwrap_err();
    assert!(late.to_string().contains("start at"), "{late}");

    let dup = from_vars(vars(&[
        ("CACHES_DSN_1", "redis://a#x"),
        ("CACHES_DSN_2", "redis://b#x"),
    ]))
    .unwrap_err();
    assert!(dup.to_string().contains("CACHES_DSN_2"), "{dup}");
    assert!(
        dup.to_string().contains("already used by CACHES_DSN_1"),
        "{dup}"
    );

    let dup_default = from_vars(vars(&[
        ("CACHES_DSN", "redis://a"),
        ("CACHES_DSN_1", "redis://b#default"),
    ]))
    .unwrap_err();
    assert!(
        dup_default.to_string().contains("\"default\""),
        "{dup_default}"
    );

    let suffix = from_vars(vars(&[("CACHES_DSN_X", "redis://a")])).unwrap_err();
    assert!(suffix.to_string().contains("CACHES_DSN_X"), "{suffix}");

    let bad = from_vars(vars(&[("CACHES_DSN_1", "redis://:pw@h?x=1")])).unwrap_err();
    assert!(bad.to_string().contains("CACHES_DSN_1"), "{bad}");
    assert!(!bad.to_string().contains("pw@"), "{bad}");
}

#[test]
fn env_empty_values_count_as_unset() {
    assert!(from_vars(vars(&[("CACHES_DSN", "")])).unwrap().is_empty());
}

/// Every text a parse can show: the DSN's `Display` and `Debug`, or the error's `Display`,
/// `Debug` and source chain.
fn shown_texts(result: &Result<Dsn>) -> Vec<String> {
    match result {
        Ok(d) => vec![
            d.to_string(),
            format!("{d:?}"),
            format!("{d:#?}"),
            format!("{:?} {:?}", d.target(), d.tls()),
            d.prefix().to_string(),
            d.name().unwrap_or_default().to_string(),
        ],
        Err(e) => {
            let mut texts = vec![e.to_string(), format!("{e:?}"), format!("{e:#?}")];
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                texts.push(format!("{s} {s:?}"));
                source = s.source();
            }
            texts
        }
    }
}

#[test]
fn a_password_cut_by_an_unescaped_separator_is_refused_unquoted() {
    // The password runs from after the user's ':' to the last '@'; an unescaped '/', '?' or
    // '#' in it ends the authority early, so that its tail would be read as the path, the
    // options or the connection name. `hunter2` marks the part that would leak.
    for dsn in [
        "redis://admin:6380#hunter2@host/0",
        "redis://admin:6380/hunter2@host/0",
        "redis://admin:6380?hunter2@host/0",
        "redis://:6380#hunter2@host",
        "redis://u:ab/cd-hunter2@h:1/0",
        "redis://u:12?timeout=hunter2@h",
        "redis://u:12?prefix=hunter2@h",
        "redis://u:1/0?prefix=x#hunter2@h",
        "redis://u:a@b/hunter2@h",
        "rediss://u:1#hunter2@h",
        "REDIS://u:1#hunter2@h",
        "redis://[::1]:1#hunter2@h",
        "redis+cluster://u:1#hunter2@h1,h2",
        "redis+cluster://u:1,h2/hunter2@h1",
        "rediss+cluster://:a?hunter2@h1:7000",
        "redis+sentinel://u:1/hunter2@s1/m",
        "redis+sentinel://:s1:1/m/hunter2@s1/m",
        "rediss+sentinel://:p#hunter2@s1/m/0",
        "unix://u:1#hunter2@/tmp/r.sock",
        "redis+unix://:1/hunter2@/tmp/r.sock",
        "redis:u:p#hunter2@h",
        "unix::p/hunter2@x",
        "  redis://admin:6380#hunter2@host/0  ",
    ] {
        let result = Dsn::parse(dsn);
        let Err(e) = &result else {
            panic!("{dsn} parsed")
        };
        assert!(e.is_config(), "{dsn}: {e:?}");
        assert!(e.to_string().contains("percent-encode"), "{dsn}: {e}");
        for text in shown_texts(&result) {
            assert!(!text.contains("hunter2"), "{dsn}: {text}");
        }
    }
}

#[test]
fn an_at_sign_where_no_password_can_be_is_kept() {
    // Without a ':' before it, an '@' after the host cannot end a `user:password`.
    let d = Dsn::parse("unix:///run/redis@main.sock").unwrap();
    assert_eq!(d.target(), &Target::Unix("/run/redis@main.sock".into()));
    let d = Dsn::parse("redis://h/0?prefix=team@app#ops@eu").unwrap();
    assert_eq!((d.prefix(), d.name()), ("team@app", Some("ops@eu")));
    // With a ':' before it, the same '@' could close `user:password` ("h/0?prefix=app" and
    // "#ops"), so it is refused.
    assert!(Dsn::parse("redis://h/0?prefix=app:#ops@eu").is_err());
    assert!(Dsn::parse("redis://h:1/0?prefix=team@app").is_err());
    // Percent-encoded, an '@' is welcome anywhere.
    let d = Dsn::parse("redis://:pw@h:1/0?prefix=team%40app:#ops%40eu").unwrap();
    assert_eq!((d.prefix(), d.name()), ("team@app:", Some("ops@eu")));
    // An '@' inside the authority belongs to the password: the credentials end at the last.
    let d = Dsn::parse("redis://u:a@b@h:1/2").unwrap();
    assert_eq!(d.password(), Some("a@b"));
    assert_eq!(d.db(), 2);
    // Escaped separators are the documented way to put them in a password.
    let d = Dsn::parse("redis://u:a%2Fb%3Fc%23d%40e%25f@h").unwrap();
    assert_eq!(d.password(), Some("a/b?c#d@e%f"));
    assert_eq!(d.to_string(), "redis://u:***@h");
    // A value with an '@' is still not quoted in errors, as a second line of defence.
    let e = Dsn::parse("redis://h?pool_size=a@b").unwrap_err();
    assert!(
        e.to_string()
            .contains("option \"pool_size\": the value (not shown"),
        "{e}"
    );
    let e = Dsn::parse("redis://h?a@b=1").unwrap_err();
    assert!(e.to_string().contains("option (not shown"), "{e}");
    let e = Dsn::parse("redis://h/a@b").unwrap_err();
    assert!(e.to_string().contains("database (not shown"), "{e}");
    // A `scheme:` without `//` and without '@' is left to the URL parser.
    assert!(refuse_split_userinfo("redis:h").is_ok());
    assert!(refuse_split_userinfo("no scheme at all").is_ok());
    assert!(refuse_split_userinfo("redis://u:p@h").is_ok());
    assert!(refuse_split_userinfo("redis://u:p@h/").is_ok());
    // The '@' right at the end of the authority is the credentials' own.
    assert!(refuse_split_userinfo("redis://u:p@").is_ok());
    assert!(refuse_split_userinfo("redis://u:p@/").is_ok());
    assert!(refuse_split_userinfo("redis://u:p/@").is_err());
    assert!(refuse_split_userinfo("redis:u:p@h").is_err());
}

#[test]
fn parsed_dsns_show_everything_but_the_password() {
    for (dsn, shown) in [
        ("redis://h", "redis://h"),
        ("redis://:pw@h", "redis://:***@h"),
        (
            "redis://u:pw@h:1/2?timeout=3#n",
            "redis://u:***@h:1/2?timeout=3#n",
        ),
        ("redis://u@h", "redis://u@h"),
        ("unix:///tmp/r.sock?db=1", "unix:///tmp/r.sock?db=1"),
        (
            "redis+cluster://u:pw@h1:1,[::1]:2/0?pool_size=2#c",
            "redis+cluster://u:***@h1:1,[::1]:2/0?pool_size=2#c",
        ),
        ("redis+cluster://h1", "redis+cluster://h1"),
        (
            "Rediss+Sentinel://:pw@s1,s2:3/m/4?timeout=0#s",
            "rediss+sentinel://:***@s1,s2:3/m/4?timeout=0#s",
        ),
    ] {
        let d = Dsn::parse(dsn).unwrap();
        assert_eq!(d.to_string(), shown, "{dsn}");
        assert_eq!(format!("{d:?}"), format!("Dsn({shown:?})"), "{dsn}");
        assert_eq!(dsn.parse::<Dsn>().unwrap(), d);
    }
}

#[test]
fn credentials_are_kept_apart_from_what_is_shown() {
    let d = Dsn::parse("redis://h").unwrap();
    assert!(!d.has_password());
    assert_eq!((d.username(), d.password()), (None, None));
    let d = Dsn::parse("redis://:@h").unwrap();
    assert!(!d.has_password());
    let d = Dsn::parse("redis://app%20one:p%20w@h").unwrap();
    assert_eq!(d.username(), Some("app one"));
    assert_eq!(d.password(), Some("p w"));
    assert!(d.has_password());
    for bad in ["redis://u:a%zz-hunter2@h", "redis://u:%FF%FEhunter2@h"] {
        let result = Dsn::parse(bad);
        assert!(result.as_ref().unwrap_err().to_string().contains("escape"));
        for text in shown_texts(&result) {
            assert!(!text.contains("hunter2"), "{bad}: {text}");
        }
    }
    let e = Dsn::parse("redis://a%zz:pw@h").unwrap_err();
    assert!(e.to_string().contains("escape"), "{e}");
    let e = Dsn::parse("redis://h#a%zz").unwrap_err();
    assert!(e.to_string().contains("escape"), "{e}");
}

#[test]
fn every_option_is_refused_outside_its_range() {
    let cases = [
        // r2d2 panics on a zero pool_timeout; tiny values round to zero.
        ("pool_timeout=0", "pool_timeout", "from 1ms to 3600s"),
        ("pool_timeout=0ms", "pool_timeout", "from 1ms to 3600s"),
        ("pool_timeout=0.0", "pool_timeout", "from 1ms to 3600s"),
        ("pool_timeout=-0", "pool_timeout", "not a duration"),
        ("pool_timeout=1e-10", "pool_timeout", "not a duration"),
        (
            "pool_timeout=0.0000000001",
            "pool_timeout",
            "from 1ms to 3600s",
        ),
        ("pool_timeout=0.0009", "pool_timeout", "from 1ms to 3600s"),
        ("pool_timeout=0.9ms", "pool_timeout", "from 1ms to 3600s"),
        // `Instant + Duration` overflows for these.
        ("pool_timeout=1e19", "pool_timeout", "not a duration"),
        (
            "pool_timeout=10000000000000000000",
            "pool_timeout",
            "from 1ms",
        ),
        (
            "pool_timeout=999999999999999999999999999999999999999999",
            "pool_timeout",
            "from 1ms",
        ),
        ("pool_timeout=3600.001", "pool_timeout", "from 1ms to 3600s"),
        (
            "pool_timeout=3600001ms",
            "pool_timeout",
            "from 1ms to 3600s",
        ),
        ("pool_timeout=inf", "pool_timeout", "not a duration"),
        ("pool_timeout=NaN", "pool_timeout", "not a duration"),
        ("pool_timeout=%2B1", "pool_timeout", "not a duration"),
        ("pool_timeout=1h", "pool_timeout", "not a duration"),
        ("pool_timeout=", "pool_timeout", "not a duration"),
        ("connect_timeout=0", "connect_timeout", "from 1ms to 3600s"),
        (
            "connect_timeout=0.0001",
            "connect_timeout",
            "from 1ms to 3600s",
        ),
        (
            "connect_timeout=3601",
            "connect_timeout",
            "from 1ms to 3600s",
        ),
        ("connect_timeout=-1", "connect_timeout", "not a duration"),
        // 0 disables the timeout, but a nonzero value below 1 ms would read as no timeout
        // at all, or as a timeout no reply can meet.
        (
            "timeout=0.0005",
            "timeout",
            "0 (no timeout) or from 1ms to 3600s",
        ),
        (
            "timeout=0.0000000001",
            "timeout",
            "0 (no timeout) or from 1ms",
        ),
        (
            "timeout=86400",
            "timeout",
            "0 (no timeout) or from 1ms to 3600s",
        ),
        (
            "socket_timeout=0.5ms",
            "socket_timeout",
            "from 1ms to 3600s",
        ),
        ("timeout=-0", "timeout", "not a duration"),
        // A pool of 4294967295 makes r2d2 allocate its slots (a terabyte) up front.
        ("pool_size=4294967295", "pool_size", "from 1 to 4096"),
        ("pool_size=4294967296", "pool_size", "from 1 to 4096"),
        ("pool_size=4097", "pool_size", "from 1 to 4096"),
        ("pool_size=0", "pool_size", "from 1 to 4096"),
        ("pool_size=-1", "pool_size", "from 1 to 4096"),
        ("pool_size=%2B2", "pool_size", "from 1 to 4096"),
        ("pool_size=2.0", "pool_size", "from 1 to 4096"),
        ("pool_size=", "pool_size", "from 1 to 4096"),
        ("db=2147483648", "db", "from 0 to 2147483647"),
        ("db=99999999999999999999999", "db", "from 0 to 2147483647"),
        ("db=-1", "db", "from 0 to 2147483647"),
        ("db=%2B1", "db", "from 0 to 2147483647"),
        ("db=", "db", "from 0 to 2147483647"),
        ("protocol=", "protocol", "resp2 or resp3"),
        ("protocol=resp4", "protocol", "resp2 or resp3"),
        ("prefix=a{b", "prefix", "must not contain"),
        ("prefix=a}b", "prefix", "must not contain"),
        ("near_cache=0", "near_cache", "from 1 to 100000000"),
        ("near_cache=100000001", "near_cache", "from 1 to 100000000"),
        ("near_cache=-1", "near_cache", "from 1 to 100000000"),
        ("near_cache=", "near_cache", "from 1 to 100000000"),
    ];
    for (option, name, expected) in cases {
        let dsn = format!("unix:///tmp/r.sock?{option}");
        let e = Dsn::parse_from(&dsn, "CACHES_DSN_4").unwrap_err();
        let text = e.to_string();
        assert!(e.is_config(), "{dsn}: {e:?}");
        assert!(text.contains("CACHES_DSN_4"), "{dsn}: {text}");
        assert!(text.contains(&format!("option {name:?}")), "{dsn}: {text}");
        assert!(text.contains(expected), "{dsn}: {text}");
    }
    for (dsn, expected) in [
        ("redis://h/2147483648", "from 0 to 2147483647"),
        ("redis://h/%2B1", "from 0 to 2147483647"),
        ("redis://h:0", "port 0"),
        ("redis+sentinel://s/m/2147483648", "from 0 to 2147483647"),
        ("redis+cluster://h/2147483648", "from 0 to 2147483647"),
        ("rediss://h?tls_ca=", "the path is empty"),
        ("rediss://h?tls_cert=&tls_key=/k", "the path is empty"),
        ("rediss://h?tls_key=", "the path is empty"),
    ] {
        let e = Dsn::parse(dsn).unwrap_err();
        assert!(e.to_string().contains(expected), "{dsn}: {e}");
    }
}

#[test]
fn every_option_is_accepted_up_to_its_bounds() {
    let parse = |q: &str| Dsn::parse(&format!("redis://h?{q}")).unwrap();
    assert_eq!(parse("pool_size=1").pool_size(), 1);
    assert_eq!(parse("pool_size=4096").pool_size(), 4096);
    assert_eq!(parse("pool_size=007").pool_size(), 7);
    for (q, expected) in [
        ("pool_timeout=1ms", Duration::from_millis(1)),
        ("pool_timeout=0.001", Duration::from_millis(1)),
        ("pool_timeout=3600", Duration::from_secs(3600)),
        ("pool_timeout=3600s", Duration::from_secs(3600)),
        ("pool_timeout=3600000ms", Duration::from_secs(3600)),
        ("pool_timeout=3600.000", Duration::from_secs(3600)),
    ] {
        assert_eq!(parse(q).pool_timeout(), expected, "{q}");
    }
    assert_eq!(
        parse("connect_timeout=1ms").connect_timeout(),
        Duration::from_millis(1)
    );
    assert_eq!(
        parse("connect_timeout=3600").connect_timeout(),
        Duration::from_secs(3600)
    );
    for zero in ["0", "0ms", "0s", "0.0", "000", ".0", "0."] {
        assert_eq!(parse(&format!("timeout={zero}")).timeout(), None, "{zero}");
    }
    assert_eq!(
        parse("timeout=1ms").timeout(),
        Some(Duration::from_millis(1))
    );
    assert_eq!(
        parse("socket_timeout=3600").timeout(),
        Some(Duration::from_secs(3600))
    );
    let max_db = Dsn::parse("unix:///s?db=2147483647").unwrap();
    assert_eq!(max_db.db(), 2147483647);
    assert_eq!(
        Dsn::parse("redis://h/2147483647").unwrap().db(),
        i32::MAX as i64
    );
    assert_eq!(Dsn::parse("redis://h/0").unwrap().db(), 0);
    assert_eq!(
        Dsn::parse("redis://h:65535").unwrap().target(),
        &Target::Tcp {
            host: "h".into(),
            port: 65535
        }
    );
    assert_eq!(
        Dsn::parse("redis://h:1").unwrap().target(),
        &Target::Tcp {
            host: "h".into(),
            port: 1
        }
    );
    // The documented constants are these bounds.
    assert_eq!(limits::POOL_SIZE, 1..=4096);
    assert_eq!(*limits::TIMEOUT.start(), Duration::from_millis(1));
    assert_eq!(*limits::POOL_TIMEOUT.end(), Duration::from_secs(3600));
    assert_eq!(*limits::CONNECT_TIMEOUT.end(), Duration::from_secs(3600));
    assert_eq!(limits::NEAR_CACHE, 1..=100_000_000);
    assert_eq!(
        Dsn::parse("unix:///r?near_cache=100000000")
            .unwrap()
            .near_cache(),
        Some(100_000_000)
    );
}

#[test]
fn the_defaults_are_the_documented_ones() {
    let d = Dsn::parse("redis://h").unwrap();
    assert_eq!(d.pool_size(), 16);
    assert_eq!(d.pool_timeout(), Duration::from_secs(2));
    assert_eq!(d.connect_timeout(), Duration::from_secs(1));
    assert_eq!(d.timeout(), Some(Duration::from_secs(1)));
    assert_eq!(d.prefix(), "");
    assert_eq!(d.protocol(), Protocol::Resp2);
    assert_eq!(d.tls(), None);
    assert_eq!(d.name(), None);
    for range_holds_default in [
        limits::POOL_SIZE.contains(&defaults::POOL_SIZE),
        limits::POOL_TIMEOUT.contains(&defaults::POOL_TIMEOUT),
        limits::CONNECT_TIMEOUT.contains(&defaults::CONNECT_TIMEOUT),
        limits::TIMEOUT.contains(&defaults::TIMEOUT),
    ] {
        assert!(range_holds_default);
    }
}

#[test]
fn protocol_spellings() {
    for (value, expected) in [
        ("resp2", Protocol::Resp2),
        ("RESP2", Protocol::Resp2),
        ("2", Protocol::Resp2),
        ("resp3", Protocol::Resp3),
        ("Resp3", Protocol::Resp3),
        ("3", Protocol::Resp3),
    ] {
        let d = Dsn::parse(&format!("redis://h?protocol={value}")).unwrap();
        assert_eq!(d.protocol(), expected, "{value}");
    }
    // RESP2 after RESP3 cannot be told from the default; check it overrides nothing else.
    let d = Dsn::parse("redis://h?protocol=resp2&timeout=2").unwrap();
    assert_eq!(d.timeout(), Some(Duration::from_secs(2)));
}

#[test]
fn tls_insecure_spellings() {
    for (value, insecure) in [
        ("true", true),
        ("TRUE", true),
        ("1", true),
        ("yes", true),
        ("on", true),
        ("false", false),
        ("False", false),
        ("0", false),
        ("no", false),
        ("off", false),
    ] {
        let d = Dsn::parse(&format!("rediss://h?tls_insecure={value}")).unwrap();
        assert_eq!(d.tls().unwrap().insecure, insecure, "{value}");
        let d = Dsn::parse(&format!("rediss+cluster://h?tls_insecure={value}")).unwrap();
        assert_eq!(d.tls().unwrap().insecure, insecure, "{value}");
    }
    let e = Dsn::parse("rediss://h?tls_insecure=maybe").unwrap_err();
    assert!(e.to_string().contains("true or false"), "{e}");
    let e = Dsn::parse("redis://h?tls_insecure=false").unwrap_err();
    assert!(e.to_string().contains("rediss"), "{e}");
    let d = Dsn::parse("rediss://h?tls_cert=/c.pem&tls_key=/k.pem").unwrap();
    let tls = d.tls().unwrap();
    assert_eq!(
        tls.cert_file.as_deref(),
        Some(std::path::Path::new("/c.pem"))
    );
    assert_eq!(
        tls.key_file.as_deref(),
        Some(std::path::Path::new("/k.pem"))
    );
    assert_eq!(tls.ca_file, None);
    assert!(!tls.insecure);
    let e = Dsn::parse("rediss://h?tls_key=/k.pem").unwrap_err();
    assert!(e.to_string().contains("together"), "{e}");
}

#[test]
fn duration_grammar() {
    let ok = |s: &str| parse_duration(s).unwrap();
    assert_eq!(ok("0"), Duration::ZERO);
    assert_eq!(ok("1"), Duration::from_secs(1));
    assert_eq!(ok("12"), Duration::from_secs(12));
    assert_eq!(ok("1.5"), Duration::from_millis(1500));
    assert_eq!(ok(".5"), Duration::from_millis(500));
    assert_eq!(ok("5."), Duration::from_secs(5));
    assert_eq!(ok("0.25"), Duration::from_millis(250));
    assert_eq!(ok("250ms"), Duration::from_millis(250));
    assert_eq!(ok("2.5ms"), Duration::from_micros(2500));
    assert_eq!(ok("2s"), Duration::from_secs(2));
    assert_eq!(ok("1.5s"), Duration::from_millis(1500));
    assert_eq!(ok(" 3 "), Duration::from_secs(3));
    assert_eq!(ok("1 ms"), Duration::from_millis(1));
    assert_eq!(ok("1.000000001"), Duration::new(1, 1));
    assert_eq!(ok("0.123456789"), Duration::from_nanos(123_456_789));
    // Beyond the nanosecond digits are dropped, but never down to zero.
    assert_eq!(ok("1.0000000009"), Duration::from_secs(1));
    assert_eq!(ok("0.0000000001"), Duration::from_nanos(1));
    assert_eq!(ok("0.0000000001ms"), Duration::from_nanos(1));
    assert_eq!(ok("0.000000"), Duration::ZERO);
    assert_eq!(ok("18446744073.709551615"), Duration::from_nanos(u64::MAX));
    assert_eq!(ok("18446744073.709551616"), Duration::MAX);
    assert_eq!(
        ok("99999999999999999999999999999999999999999999"),
        Duration::MAX
    );
    for bad in [
        "",
        " ",
        ".",
        "s",
        "ms",
        "-1",
        "-0",
        "+1",
        "1e3",
        "1e-10",
        "1E3",
        "inf",
        "NaN",
        "0x10",
        "1.2.3",
        "1..2",
        "1,5",
        "1 2",
        "1h",
        "1m",
        "1us",
        "١",
        "1.é",
        "1.12345678901é",
        "é",
    ] {
        let e = parse_duration(bad).unwrap_err();
        assert!(e.contains("is not a duration"), "{bad}: {e}");
    }
}

#[test]
fn digit_strings() {
    assert_eq!(digits_value(""), Some(0));
    assert_eq!(digits_value("0"), Some(0));
    assert_eq!(digits_value("42"), Some(42));
    assert_eq!(digits_value("4a"), None);
    assert_eq!(digits_value(&"9".repeat(60)), Some(u128::MAX));
    assert_eq!(parse_digits(""), None);
    assert_eq!(parse_digits("10"), Some(10));
    assert_eq!(parse_db("0"), Ok(0));
    assert_eq!(parse_db("15"), Ok(15));
    assert!(parse_db("").is_err());
}

#[test]
fn durations_show_in_the_dsn_units() {
    assert_eq!(show_duration(Duration::from_millis(1)), "1ms");
    assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
    assert_eq!(show_duration(Duration::from_secs(3600)), "3600s");
    assert_eq!(show_duration(Duration::ZERO), "0s");
}

#[test]
fn not_a_url_errors_hide_everything_up_to_the_last_at() {
    assert_eq!(redact_raw("redis://u:pw@h:x"), "redis://***@h:x");
    assert_eq!(redact_raw("redis://u:a@b@h:x"), "redis://***@h:x");
    assert_eq!(redact_raw("redis://h:x"), "redis://h:x");
    assert_eq!(redact_raw("redis:u:pw@h"), "(unparsable)");
    let e = Dsn::parse("redis://u:hunter2@h:notaport/0").unwrap_err();
    assert!(e.to_string().contains("not a URL"), "{e}");
    assert!(e.to_string().contains("***@h:notaport/0"), "{e}");
}

#[test]
fn single_host_forms() {
    for (dsn, host, port) in [
        ("redis://h", "h", 6379),
        ("redis://h:1", "h", 1),
        ("redis://Cache.Internal:6380", "Cache.Internal", 6380),
        ("redis://[::1]:7000/0", "::1", 7000),
        ("redis://[::1]", "::1", 6379),
        ("rediss://10.0.0.1", "10.0.0.1", 6379),
    ] {
        let d = Dsn::parse(dsn).unwrap();
        assert_eq!(
            d.target(),
            &Target::Tcp {
                host: host.into(),
                port
            },
            "{dsn}"
        );
    }
    assert!(Dsn::parse("rediss://h").unwrap().tls().is_some());
    assert!(Dsn::parse("redis://h").unwrap().tls().is_none());
    for dsn in ["redis://", "redis://:pw@", "redis:h", "redis:///0"] {
        let e = Dsn::parse(dsn).unwrap_err();
        assert!(
            e.to_string().contains("no host") || e.to_string().contains("not a URL"),
            "{dsn}: {e}"
        );
    }
}

#[test]
fn unix_socket_paths() {
    let d = Dsn::parse("redis+unix:///run/my%20redis.sock").unwrap();
    assert_eq!(d.target(), &Target::Unix("/run/my redis.sock".into()));
    assert!(d.tls().is_none());
    for dsn in ["unix://", "unix:///", "redis+unix:///"] {
        let e = Dsn::parse(dsn).unwrap_err();
        assert!(e.to_string().contains("no socket path"), "{dsn}: {e}");
    }
    let e = Dsn::parse("unix:///r%zz.sock").unwrap_err();
    assert!(e.to_string().contains("escape"), "{e}");
}

#[test]
fn host_list_details() {
    assert_eq!(
        parse_host_list(" h1 , h2:2 ", 9).unwrap(),
        [node("h1", 9), node("h2", 2)]
    );
    assert_eq!(parse_host_list("[::1]", 9).unwrap(), [node("::1", 9)]);
    assert_eq!(parse_host_list("h:65535", 9).unwrap(), [node("h", 65535)]);
    assert_eq!(parse_host_list("h:1", 9).unwrap(), [node("h", 1)]);
    assert!(parse_host_list("", 9).unwrap_err().contains("no host"));
    assert!(
        parse_host_list("[]:1", 9)
            .unwrap_err()
            .contains("empty host")
    );
    assert!(parse_host_list("h:", 9).unwrap_err().contains("not a port"));
    assert!(
        parse_host_list("[::1]:", 9)
            .unwrap_err()
            .contains("not a port")
    );
    assert_eq!(node("::1", 1).to_string(), "[::1]:1");
    assert_eq!(node("h", 2).to_string(), "h:2");
    // Sentinels default to 26379, cluster seeds to 6379.
    let d = Dsn::parse("redis+sentinel://s/m").unwrap();
    assert_eq!(
        d.target(),
        &Target::Sentinel {
            sentinels: vec![node("s", 26379)],
            service: "m".into()
        }
    );
    let d = Dsn::parse("redis+cluster://c").unwrap();
    assert_eq!(d.target(), &Target::Cluster(vec![node("c", 6379)]));
    let d = Dsn::parse("rediss+sentinel://s/m").unwrap();
    assert!(d.tls().is_some());
    let d = Dsn::parse("redis+sentinel://s/m").unwrap();
    assert!(d.tls().is_none());
    let e = Dsn::parse("redis+sentinel://s/m%zz").unwrap_err();
    assert!(e.to_string().contains("escape"), "{e}");
    let e = Dsn::parse("redis+sentinel://s/m/1/").unwrap_err();
    assert!(e.to_string().contains("too many parts"), "{e}");
    assert!(e.to_string().contains("\"/m/1/\""), "{e}");
    assert_eq!(Dsn::parse("redis+cluster://c/0").unwrap().db(), 0);
    assert_eq!(Dsn::parse("redis+cluster://c?db=0").unwrap().db(), 0);
}

#[test]
fn env_names_and_aliases() {
    // The default's own fragment "default" is no alias, and no duplicate.
    let got = from_vars(vars(&[("CACHES_DSN", "redis://a#default")])).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "default");
    // Starting at 0 is allowed; other variables are ignored; whitespace-only counts as unset.
    let got = from_vars(vars(&[
        ("CACHES_DSN_0", "redis://a"),
        ("CACHES_DSNX", "nonsense"),
        ("CACHES_DSN_1", "  "),
        ("OTHER", "redis://b"),
    ]))
    .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "0");
    assert_eq!(got[0].1, Dsn::parse("redis://a").unwrap());
    // A bad value names its variable, and an out-of-range option names the option.
    let e = from_vars(vars(&[
        ("CACHES_DSN", "redis://a"),
        ("CACHES_DSN_1", "redis://:pw-hunter2@b?pool_timeout=0"),
    ]))
    .unwrap_err();
    assert!(e.to_string().contains("CACHES_DSN_1"), "{e}");
    assert!(e.to_string().contains("pool_timeout"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = from_vars(vars(&[("CACHES_DSN", "redis://u:1#hunter2@b")])).unwrap_err();
    assert!(e.to_string().contains("CACHES_DSN"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    // The suffix must be a number that fits.
    let e = from_vars(vars(&[("CACHES_DSN_99999999999", "redis://a")])).unwrap_err();
    assert!(e.to_string().contains("must be a number"), "{e}");
    let e = from_vars(vars(&[("CACHES_DSN_", "redis://a")])).unwrap_err();
    assert!(e.to_string().contains("must be a number"), "{e}");
}

#[test]
fn duplicate_connection_names_never_show_a_password() {
    let e = from_vars(vars(&[
        ("CACHES_DSN_1", "redis://:hunter2@a#x"),
        ("CACHES_DSN_2", "redis://:hunter2@b#x"),
    ]))
    .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(
        text.contains("\"x\" is already used by CACHES_DSN_1"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    // The shape that once made a password's tail a connection name is now refused.
    let e = from_vars(vars(&[
        ("CACHES_DSN_1", "redis://admin:6380#hunter2@a"),
        ("CACHES_DSN_2", "redis://admin:6380#hunter2@b"),
    ]))
    .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(
        text.contains("CACHES_DSN_1") && text.contains("percent-encode"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}
