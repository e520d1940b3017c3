//! Any bytes as a bzip2-compressed block file or ETL export: decompression within its
//! bounds, the early content check and the scan must return errors, never panic or exhaust
//! memory.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut cat = cointrail_chain::Catalog::new();
    if cat
        .add_bytes(std::path::Path::new("fuzz.bz2"), data.to_vec())
        .is_ok()
    {
        for e in &cat.entries {
            let _ = cat.load(e, bitcoin::Network::Bitcoin);
        }
    }
    let _ = cointrail_chain::blockfile::decompress_json_lines(std::path::Path::new("fuzz.json.bz2"), data);
});
