//! Hostile peer: arbitrary bytes written anywhere in a live segment, between
//! operations of a daemon and its clients, produce errors, never a panic or
//! a hang. (`fuzz/` runs the same harness under libFuzzer.)

mod support;

use proptest::prelude::*;
use support::hostile;

/// Scripts per run: 1500, or `MEMLINK_HOSTILE_CASES` (the Windows run under
/// Wine, where every segment costs file-system round trips, sets fewer).
fn cases() -> u32 {
    std::env::var("MEMLINK_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_scribbles_never_crash_either_side(script in proptest::collection::vec(any::<u8>(), 0..1500)) {
        hostile::run(&script);
    }
}

/// The harness must actually reach the states it is meant to test: corrupt
/// rings found, channels poisoned, and ordinary traffic flowing.
#[test]
fn the_harness_reaches_corruption_and_poison() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut total = hostile::Outcomes::default();
    for _ in 0..300 {
        let script: Vec<u8> = (0..rng.random_range(0..1500)).map(|_| rng.random()).collect();
        let o = hostile::run(&script);
        total.ok += o.ok;
        total.corrupted += o.corrupted;
        total.poisoned += o.poisoned;
        total.other += o.other;
    }
    println!("{total:?}");
    assert!(total.ok > 1000, "{total:?}");
    assert!(total.corrupted > 0, "no corruption was ever detected: {total:?}");
    assert!(total.poisoned > 0, "no channel was ever poisoned: {total:?}");
}
