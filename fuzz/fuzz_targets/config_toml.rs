//! The config loader on TOML text (`config::Config::parse`, what `run`, `check`, `demo` and
//! every reload call after reading the file). Nothing is read from disk at this stage. Checks
//! that errors are located sensibly and that validity does not depend on where the file is.
#![no_main]

use std::path::Path;

use hookgate::fuzz_api::parse_config;
use libfuzzer_sys::fuzz_target;

const PATH: &str = "/etc/hookgate/proxy.toml";

fuzz_target!(|data: &[u8]| {
    // The file is read with `read_to_string`: non-UTF-8 is a read error before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let got = parse_config(Path::new(PATH), text.to_owned());
    assert_eq!(
        got,
        parse_config(Path::new(PATH), text.to_owned()),
        "parsing is deterministic"
    );
    if let Err(e) = &got {
        // SPEC §2: every error names the file and, where known, a line of it.
        let mut expected = PATH.to_owned();
        if let Some(line) = e.line {
            let lines = text.lines().count().max(1);
            assert!(
                (1..=lines + 1).contains(&line),
                "line {line} of a {lines}-line file"
            );
            expected += &format!(":{line}");
        }
        if !e.key.is_empty() {
            expected += &format!(": {}", e.key);
        }
        assert!(
            !e.message.is_empty(),
            "error without a message: {}",
            e.display
        );
        assert_eq!(e.display, format!("{expected}: {}", e.message));
    }
    // Relative paths are resolved later against the file's directory; accepting or refusing
    // the text must not depend on it, and neither may what is wrong with it.
    let elsewhere = parse_config(Path::new("proxy.toml"), text.to_owned());
    match (&got, &elsewhere) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!((&a.key, a.line, &a.message), (&b.key, b.line, &b.message)),
        _ => {
            panic!("valid at {PATH} but not as proxy.toml, or the reverse: {got:?} / {elsewhere:?}")
        }
    }
});
