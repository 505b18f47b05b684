//! Fuzzes one relabel rule (not necessarily a valid one) against one label set.
//!
//! Input: byte 0 picks the action, byte 1 the modulus, then NUL-separated fields:
//! `regex`, `replacement`, `target_label`, `separator`, `source_labels` (comma-separated),
//! then label name/value pairs. Seeds in `fuzz/seeds/relabel/` follow this layout.
//!
//! Checked: no panic; the result is sorted with unique names and no empty values; `process` and
//! `process_traced` agree; the filtering actions never change labels; `labeldrop`/`labelkeep`
//! only remove; a validated rule that writes `target_label` only adds valid label names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promshard_model::labels::{Labels, LabelsBuilder, is_valid_label_name};
use promshard_model::relabel::{Action, Regex, RelabelConfig, process, process_traced};

const ACTIONS: [Action; 11] = [
    Action::Replace,
    Action::Keep,
    Action::Drop,
    Action::KeepEqual,
    Action::DropEqual,
    Action::HashMod,
    Action::LabelMap,
    Action::LabelDrop,
    Action::LabelKeep,
    Action::Lowercase,
    Action::Uppercase,
];

fuzz_target!(|data: &[u8]| {
    let [action, modulus, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut fields = text.split('\0');
    let mut next = || fields.next().unwrap_or("").to_string();
    let (regex, replacement, target_label, separator, sources) =
        (next(), next(), next(), next(), next());
    let Ok(regex) = Regex::new(&regex) else {
        return;
    };
    let cfg = RelabelConfig {
        source_labels: sources
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        separator,
        target_label,
        regex,
        modulus: u64::from(*modulus),
        replacement,
        action: ACTIONS[usize::from(*action) % ACTIONS.len()],
        ..RelabelConfig::default()
    };
    let rest: Vec<String> = fields.map(String::from).collect();
    let input = Labels::from_pairs(
        rest.chunks(2)
            .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default())),
    );

    let rules = [cfg];
    let mut lb = LabelsBuilder::from(input.clone());
    let kept = process(&rules, &mut lb);
    let out = lb.labels();

    let names: Vec<&str> = out.iter().map(|l| l.name.as_str()).collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "not sorted or not unique: {out}"
    );
    assert!(
        out.iter().all(|l| !l.value.is_empty()),
        "empty value: {out}"
    );

    let mut lb2 = LabelsBuilder::from(input.clone());
    let (kept2, trace) = process_traced(&rules, &mut lb2);
    assert_eq!(
        (kept2, lb2.labels()),
        (kept, out.clone()),
        "process_traced disagrees"
    );
    assert_eq!(trace.len(), 1);
    assert_eq!((trace[0].kept, &trace[0].labels_after), (kept, &out));

    let cfg = &rules[0];
    match cfg.action {
        Action::Keep | Action::Drop | Action::KeepEqual | Action::DropEqual => {
            assert_eq!(out, input, "a filtering action changed labels");
        }
        Action::LabelDrop | Action::LabelKeep => {
            assert!(kept);
            assert!(
                out.iter()
                    .all(|l| input.get(&l.name) == Some(l.value.as_str())),
                "{out}"
            );
        }
        _ => assert!(kept, "only filtering actions drop"),
    }
    let writes_target = matches!(
        cfg.action,
        Action::Replace | Action::HashMod | Action::Lowercase | Action::Uppercase
    );
    if writes_target && cfg.validate().is_ok() {
        for l in out.iter().filter(|l| input.get(&l.name).is_none()) {
            assert!(
                is_valid_label_name(&l.name),
                "invalid name {:?} from {cfg:?}",
                l.name
            );
        }
    }
});
