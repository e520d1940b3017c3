//! Any bytes as blockchain-etl JSON lines: errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cointrail_chain::etl::read_etl_bytes(&[(std::path::PathBuf::from("fuzz"), data.to_vec())]);
});
