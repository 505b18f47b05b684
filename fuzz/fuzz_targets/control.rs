//! Fuzzes the worker's side of the control stream: arbitrary bytes decoded as a sequence of
//! `MasterMessage`s and applied to one `AssignmentState`, as the worker applies what the master
//! sends (chunked snapshots, deltas, leases, cuts).
//!
//! Input: a sequence of frames, each a 2-byte little-endian length and that many bytes of
//! protobuf. Frames that do not decode are skipped, as a corrupt frame would be refused by the
//! gRPC layer before it reached the worker.
//!
//! Checked: no panic; an error leaves the state usable (the next message is applied to it); a
//! completed snapshot holds exactly the targets it listed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use promshard_proto::control::MasterMessage;
use promshard_proto::control::master_message::Msg;
use promshard_worker::assignment::AssignmentState;

fuzz_target!(|data: &[u8]| {
    let mut state = AssignmentState::default();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        let frame = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[(2 + len).min(rest.len())..];
        let Ok(msg) = MasterMessage::decode(frame) else {
            continue;
        };
        let last_chunk = match &msg.msg {
            Some(Msg::Snapshot(s)) if s.last_chunk => {
                Some((s.generation, s.targets.iter().map(|t| t.id.clone()).collect::<Vec<_>>()))
            }
            _ => None,
        };
        let result = state.apply(msg);
        if let (Ok(Some(applied)), Some((generation, ids))) = (&result, last_chunk) {
            assert_eq!(applied.generation, generation);
            assert_eq!(state.current.generation, generation);
            for id in ids {
                assert!(state.current.targets.contains_key(&id), "snapshot target {id:?} lost");
            }
        }
    }
});
