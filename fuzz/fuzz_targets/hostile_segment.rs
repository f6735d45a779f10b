//! libFuzzer target: arbitrary bytes drive a hostile peer that scribbles on
//! a live segment between operations of a daemon and its clients (the same
//! harness as the `tests/hostile.rs` proptest). A crash, hang or sanitizer
//! report is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/support/hostile.rs"]
mod hostile;

fuzz_target!(|data: &[u8]| {
    let _ = hostile::run(data);
});
