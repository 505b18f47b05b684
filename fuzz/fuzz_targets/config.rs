//! Fuzzes configuration loading: arbitrary text as a `prometheus.yml`, as the master and
//! `promshard check config` load it.
//!
//! Input: any bytes, taken as UTF-8 (lossily). Seeds in `fuzz/seeds/config/` are real files.
//!
//! Checked: never a panic, always a verdict; an error has a message; loading is deterministic
//! (the same text gives the same verdict twice); a config accepted once is accepted again when
//! loaded with an environment lookup that finds nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promshard_model::config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let first = Config::parse(&text);
    let second = Config::parse(&text);
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.scrape_configs.len(), b.scrape_configs.len());
            assert!(Config::parse_with_env(&text, |_| None).is_ok());
        }
        (Err(a), Err(b)) => {
            let (a, b) = (a.to_string(), b.to_string());
            assert!(!a.is_empty(), "an error without a message");
            assert_eq!(a, b, "two verdicts for one text");
        }
        _ => panic!("two verdicts for one text: {first:?} then {second:?}"),
    }
});
